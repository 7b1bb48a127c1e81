"""`make simulate` (SIM_ARGS="..."): `python -m tools.simulator --help`."""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
import time
from pathlib import Path

from tools.simulator.display import make_progress
from tools.simulator.platforms import ROOT, AttachedPlatform, EmbeddedPlatform, PostgresPlatform
from tools.simulator.scenario import ScenarioConfig
from tools.simulator.simulate import SimConfig, run_simulation


def say(msg: str) -> None:
    print(f"[sim] {msg}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.simulator",
                                description="Double-11 simulation through the platform's real APIs (docs/simulator.md)")
    p.add_argument("--merchants", type=int, default=12, help="merchants, cycling through the 4 fulfilment modes "
                   "and 3 qualities (default 12)")
    p.add_argument("--orders", type=int, default=1500, help="service orders applied for over the run (default 1500)")
    p.add_argument("--days", type=float, default=10.0, help="simulated days from 11-11 00:00 Beijing (default 10)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="simulated seconds per real second (default 0: as fast as the platform answers)")
    p.add_argument("--seed", type=int, default=11, help="the scenario's seed: same seed, same scenario (default 11)")
    p.add_argument("--step-minutes", type=float, default=60.0, help="simulated minutes per step (default 60)")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                   help="the platform started for the run: embedded SQLite (default) or PostgreSQL "
                        "(the run-prod-like topology; PostgreSQL at 127.0.0.1:5432)")
    p.add_argument("--attach", metavar="ORDERS_URL", help="drive a running platform instead (its orders URL; the "
                   "other services at the next four ports) — needs --bootstrap and --operator-file")
    p.add_argument("--bootstrap", help="the running platform's broker (host:port)")
    p.add_argument("--operator-file", type=Path, help="JSON with a platform operator's client_id and client_secret")
    p.add_argument("--tag", default="", help="prefix of every id the run creates (default d11s<seed>; give a new "
                   "one to run the same seed twice on one platform)")
    p.add_argument("--out", type=Path, help="report directory (default var/simulator/<time>)")
    p.add_argument("--display", choices=("auto", "rich", "plain", "none"), default="auto",
                   help="live progress: a table on a terminal, plain lines otherwise (default auto)")
    p.add_argument("--concurrency", type=int, default=8, help="API calls at once (default 8)")
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases and the data directory")
    return p.parse_args(argv)


async def _cancellable(coro):
    """Run ``coro`` as a task that SIGTERM and SIGINT cancel: its ``finally`` blocks (the
    event tap, the HTTP client) run, then the caller's stop the platform."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main(argv: list[str] | None = None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    out = a.out or ROOT / "var" / "simulator" / time.strftime("%Y%m%d-%H%M%S")
    data_dir = out / "platform"
    if a.attach:
        if not (a.bootstrap and a.operator_file):
            print("--attach needs --bootstrap and --operator-file", file=sys.stderr)
            return 2
        platform = AttachedPlatform(a.attach, a.bootstrap, a.operator_file)
    elif a.db == "postgres":
        platform = PostgresPlatform(data_dir, db_prefix=f"sim_{secrets.token_hex(3)}", log=say, keep=a.keep)
    else:
        platform = EmbeddedPlatform(data_dir, log=say)
    scenario = ScenarioConfig(seed=a.seed, merchants=a.merchants, orders=a.orders, days=a.days,
                              tick_s=a.step_minutes * 60, tag=a.tag)
    config = SimConfig(scenario=scenario, speed=a.speed, concurrency=a.concurrency)

    def stop(signum, _frame):
        raise SystemExit(128 + signum)  # unwinds into `finally`: the platform is stopped

    signal.signal(signal.SIGTERM, stop)
    progress = None
    code, summary = 1, {}
    try:
        say(f"starting the platform ({'attached' if a.attach else a.db})")
        platform.start()
        progress = make_progress(a.display)
        figures = asyncio.run(_cancellable(run_simulation(config, platform, log=say, progress=progress, out_dir=out)))
        if progress is not None:
            progress.close()
            progress = None
        summary = {"report": str(out / "report.html"), "figures": str(out / "figures.json"),
                   "orders": figures["orders"]["opened"], "actions": figures["run"]["actions"],
                   "actions_per_s": figures["run"]["actions_per_s"],
                   "deadlines_fired": figures["deadlines"]["fired_total"],
                   "penalties_cny": figures["penalties"]["total_cny"], "by_state": figures["orders"]["by_state"],
                   "real_seconds": figures["run"]["real_seconds"], "workload_errors": figures["run"]["workload_errors"],
                   "plan_digest": figures["scenario"]["plan_digest"]}
        code = 0
    except asyncio.CancelledError:
        say("interrupted")
    finally:
        if progress is not None:
            progress.close()
        say("stopping the platform")
        platform.stop()
    print(json.dumps(summary), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
