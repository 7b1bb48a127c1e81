"""Whole-platform benchmark (`make bench-platform`): the five services on PostgreSQL and the
embedded broker on this machine (deploy/run_prod_like.py's topology, one process per
service), the Double-11 workload (tools/workload) driving a mixed load at a fixed rate,
then, in the same run, the orders-only benchmark (bench_orders.measure) as the ceiling of
the front door.

1. The platform starts on free ports with databases of its own (`bench_platform_<hex>_*`).
2. A driver process (this file with ``--drive``) onboards the marketplace (merchants of every
   mode, staff, catalogues, routing enrollment) and plays it open-loop at BENCH_RATE order
   actions per second (``Workload.pace``): applications and every next step of the open
   orders (claims, audits, shipments, receipts, decisions, exchanges, confirmations, ratings,
   arbitration…) plus routing consultations, the virtual clock moving BENCH_VIRTUAL_PER_S
   seconds per real second so deadlines fire steadily; orders' states follow the
   orders.events stream. BENCH_WARMUP_S first, then BENCH_SECONDS measured; 5 s before the
   window opens every database is analyzed (``analyze``: the planner statistics of a running
   platform, which autovacuum would otherwise give a new database only after a minute or more).
3. This process watches the broker (tools/simulator/tap.py): every consumer group's committed
   offsets every 0.2 s and every order and deadline event. Measured over the window:
   - ``actions_per_s``: order actions the platform acknowledged (200/201) per second;
   - ``lag_p99_s`` per consumer: the age of the oldest message a group has not committed,
     p99 over the samples (timers: sla-timer.orders; kpi: kpi.facts; notifier: the worse of
     notifier.orders and notifier.sla; orders: orders.deadlines);
   - ``e2e_p50_s`` / ``e2e_p99_s`` per downstream service: from an action's answer to the
     first sample at which the service's group had committed past the action's event
     (resolution 0.2 s);
   - ``firing_lateness_p99_s``: a deadline's sla.deadline_fired message on the broker minus
     the real time its due time was reached on the virtual clock;
   - ``lost``: acknowledged actions whose event never reached orders.events, plus events a
     downstream group never committed, after the load stopped and everything drained.
   CPU per process (services, PostgreSQL, broker, driver) over the window says where the time
   goes; BENCH_PROFILE_SECONDS=N samples each service and the driver with py-spy for N
   seconds mid-window and prints the hottest functions (raw stacks kept in the data directory).
4. The platform stops (databases dropped); bench_orders.measure runs the orders-only
   lifecycle load for BENCH_ORDERS_ONLY_S: ``orders_only_ops_per_s``; ``ratio`` =
   actions_per_s / orders_only_ops_per_s.

Last line: JSON. Environment: BENCH_SECONDS (300), BENCH_RATE (500), BENCH_WARMUP_S (30),
BENCH_VIRTUAL_PER_S (600), BENCH_MERCHANTS (12), BENCH_SEED (1), BENCH_DRIVER_CONCURRENCY
(48), BENCH_ORDERS_ONLY_S (30), BENCH_PROFILE_SECONDS (0), BENCH_DATA_DIR, BENCH_KEEP (0),
BENCH_PG (the PostgreSQL server, as benchdb.py: by default its Unix socket)."""
from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchdb import PG_SERVER  # noqa: E402
from shared.db import postgres_url  # noqa: E402

E = os.environ
SECONDS = float(E.get("BENCH_SECONDS", "300"))
RATE = float(E.get("BENCH_RATE", "500"))
WARMUP_S = float(E.get("BENCH_WARMUP_S", "30"))
VIRTUAL_PER_S = float(E.get("BENCH_VIRTUAL_PER_S", "600"))
MERCHANTS = int(E.get("BENCH_MERCHANTS", "12"))
SEED = int(E.get("BENCH_SEED", "1"))
CONCURRENCY = int(E.get("BENCH_DRIVER_CONCURRENCY", "48"))
ORDERS_ONLY_S = float(E.get("BENCH_ORDERS_ONLY_S", "30"))
PROFILE_S = float(E.get("BENCH_PROFILE_SECONDS", "0"))
TARGET_RATE, TARGET_LAG_S = 500.0, 2.0
ANALYZE_BEFORE_S = 5.0  # the databases are analyzed this long before the window opens
# the project's packages, as py-spy names their files (the start-up frames every stack has are left out)
OWN_CODE = ("orders/", "sla_timer/", "kpi/", "notifier/", "consultation_routing/", "shared/", "console/",
            "tools/")


def log(msg: str) -> None:
    print(f"[bench-platform] {msg}", flush=True)


# ------------------------------------------------------------------ the driver process
async def drive(cfg: dict) -> None:
    """Onboard, then pace the workload; write what was acknowledged and the clock's history."""
    from shared.gc_tuning import freeze_startup_objects, tune_collector
    from shared.topics import ORDER_EVENTS
    from tools.simulator.tap import EventTap, parse_ts
    from tools.workload import Api, Config, Workload

    tune_collector()  # the load generator shares the machine it measures: no CPU wasted on collections

    api = Api(cfg["urls"], max_connections=cfg["concurrency"] * 2, retry_for_s=30)
    op = cfg["operator"]["client_id"]
    api.add_client(op, cfg["operator"]["client_secret"])
    w = Workload(api, op, Config(seed=cfg["seed"], merchants=cfg["merchants"], concurrency=cfg["concurrency"],
                                 refresh="events", tag=f"bp{cfg['seed']}"), log=lambda m: print(f"[driver] {m}"))

    def on_event(topic: str, env: dict, _ts: float) -> None:
        d = env["data"]
        if env.get("type") == "service_order.transitioned":
            w.observe(d["order_id"], d["to_state"], d["version"], parse_ts(d["occurred_at"]))

    stop_tap, stop = asyncio.Event(), asyncio.Event()
    tap = EventTap(cfg["bootstrap"], (ORDER_EVENTS,), on_event=on_event)
    tap_task = asyncio.create_task(tap.run(stop_tap))
    await w.setup()
    freeze_startup_objects()  # the onboarded marketplace lives as long as the run (shared.gc_tuning)
    await api.read_clock(op)
    clock0 = (time.time(), api.clock.offset_s)
    started = time.time()
    print(json.dumps({"ready": started}), flush=True)
    pace = asyncio.create_task(w.pace(stop, rate=cfg["rate"], virtual_per_s=cfg["virtual_per_s"],
                                      consultations_per_s=cfg["rate"] * 0.05))
    window = (started + cfg["warmup_s"], started + cfg["warmup_s"] + cfg["seconds"])
    seen = done = 0  # acknowledgements counted so far (the list only grows: each looked at once)
    while time.time() < window[1]:
        await asyncio.sleep(min(5.0, max(0.0, window[1] - time.time())))
        done += sum(1 for a in w.acked[seen:] if a.at >= window[0])
        seen = len(w.acked)
        print(json.dumps({"t": round(time.time() - started, 1), "acked": len(w.acked), "in_window": done,
                          "tracks": len(w.tracks), "errors": w.stats["errors"]}), flush=True)
    stop.set()
    await pace
    stop_tap.set()
    await tap_task
    await api.close()
    Path(cfg["out"]).write_text(json.dumps({
        "acks": [(a.order_id, a.version, a.kind, a.at) for a in w.acked], "clock": [clock0, *w.clock_history],
        "window": window, "stats": dict(w.stats), "errors": w.errors[:20],
        "api_stats": {k: v for k, v in api.stats.items() if not k.startswith("status:2")}}))


# ------------------------------------------------------------------ CPU and profiles
def _stat(pid: int) -> tuple[int, str, float] | None:
    """(session id, command, CPU seconds) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    f = raw.rsplit(")", 1)[1].split()
    return int(f[3]), comm, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_owner(owners: dict[int, str]) -> Counter:
    """CPU seconds so far of every process in the given sessions (a service and its helper
    processes), of PostgreSQL's processes and of this process."""
    out: Counter = Counter()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is None:
            continue
        sid, comm, cpu = st
        if int(entry) in owners:
            out[owners[int(entry)]] += cpu
        elif sid in owners:
            out[owners[sid]] += cpu
        elif comm == "postgres":
            out["postgresql"] += cpu
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["bench (tap, lag probe)"] += ru.ru_utime + ru.ru_stime
    return out


def profile(pids: dict[str, int], seconds: float, out_dir: Path) -> dict[str, list[tuple[str, float]]]:
    """py-spy on every service at once for ``seconds``, sampling only threads that hold the
    GIL (time spent waiting for I/O is not work): per service, the functions with the most
    samples on top of the stack (self time) and the project's functions with the most
    samples anywhere in the stack (inclusive), as shares of the service's samples."""
    spy = Path(sys.executable).parent / "py-spy"
    procs = {}
    for name, pid in pids.items():
        raw = out_dir / f"profile-{name}.txt"
        procs[name] = (subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                                         "--rate", "50", "--format", "raw", "--subprocesses", "--nonblocking",
                                         "--gil", "--output", str(raw)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), raw)
    tops = {}
    for name, (p, raw) in procs.items():
        _out, err = p.communicate(timeout=seconds + 60)
        if p.returncode != 0 or not raw.exists():
            tops[name] = [(f"py-spy failed: {err.decode(errors='replace')[-200:]}", 0.0)]
            continue
        leaf: Counter = Counter()
        own: Counter = Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [f for f in stack.split(";") if not f.startswith("process ")]
            if not frames:
                continue
            total += int(n)
            leaf[frames[-1]] += int(n)
            for f in set(frames):
                where = f.rpartition("(")[2]
                if where.startswith(OWN_CODE) and not where.startswith(("shared/cli.py", "shared/runtime.py")) \
                        and "__main__.py" not in where:
                    own[f] += int(n)
        tops[name] = ([(f"self {frame}", round(c / total, 3)) for frame, c in leaf.most_common(4)]
                      + [(f"in {frame}", round(c / total, 3)) for frame, c in own.most_common(3)]) if total else []
    return tops


# ------------------------------------------------------------------ the run
async def analyze(db_prefix: str) -> float:
    """ANALYZE every database of the platform: the window starts with the planner statistics of
    a platform that has been running. Autovacuum's analyze visits a database at most once a
    minute, and a database the benchmark created has none before that first visit: the tables
    the warm-up filled in seconds would be planned as empty (whole-table scans for the
    consumers' ``IN`` lists, the wrong index for others). Returns the seconds it took."""
    import asyncpg

    started = time.time()
    server = await asyncpg.connect(postgres_url(PG_SERVER, "postgres", "postgresql"))
    try:
        names = [r[0] for r in await server.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                                   db_prefix + "\\_%")]
    finally:
        await server.close()
    for name in names:
        conn = await asyncpg.connect(postgres_url(PG_SERVER, name, "postgresql"))
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
    return time.time() - started


async def observe(platform, driver: subprocess.Popen, data_dir: Path, db_prefix: str) -> dict:
    from tools.simulator.tap import EventTap, LagProbe
    from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

    fired: dict[str, tuple[str, float]] = {}  # event id -> (due_at ISO, broker time of its first copy)

    def on_event(topic: str, env: dict, ts: float) -> None:
        if env.get("type") == "sla.deadline_fired" and env["id"] not in fired:
            fired[env["id"]] = (env["data"]["due_at"], ts)

    stop = asyncio.Event()
    tap = EventTap(platform.bootstrap, (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS), on_event=on_event)
    probe = LagProbe(platform.bootstrap, tap, every_s=0.2)
    tasks = [asyncio.create_task(tap.run(stop)), asyncio.create_task(probe.run(stop))]
    owners = {pid: name for name, pid in platform.pids().items()}
    owners[driver.pid] = "driver"
    cpu0 = cpu1 = None
    window = None
    tops: dict = {}
    loop = asyncio.get_running_loop()
    line_queue: asyncio.Queue = asyncio.Queue()

    def reader() -> None:
        for line in driver.stdout:
            loop.call_soon_threadsafe(line_queue.put_nowait, line)
        loop.call_soon_threadsafe(line_queue.put_nowait, None)

    loop.run_in_executor(None, reader)
    prof_task = None
    while True:
        line = await line_queue.get()
        if line is None:
            break
        line = line.strip()
        if not line.startswith("{"):
            print(line, flush=True)
            continue
        msg = json.loads(line)
        if "ready" in msg:
            window = (msg["ready"] + WARMUP_S, msg["ready"] + WARMUP_S + SECONDS)
            log(f"load on: {RATE:.0f} actions/s offered, {WARMUP_S:.0f} s warm-up, {SECONDS:.0f} s measured")

            async def at_window() -> None:
                nonlocal cpu0, cpu1, tops
                await asyncio.sleep(max(0.0, window[0] - time.time() - ANALYZE_BEFORE_S))
                log(f"planner statistics: every database analyzed in {await analyze(db_prefix):.1f} s")
                await asyncio.sleep(max(0.0, window[0] - time.time()))
                cpu0 = (time.time(), cpu_by_owner(owners))
                if PROFILE_S > 0:
                    await asyncio.sleep(max(0.0, SECONDS / 2 - PROFILE_S / 2))
                    services = {n: pid for n, pid in platform.pids().items() if n != "broker"}  # Python only
                    services["driver"] = driver.pid
                    tops = await asyncio.to_thread(profile, services, PROFILE_S, data_dir)
                await asyncio.sleep(max(0.0, window[1] - time.time()))
                cpu1 = (time.time(), cpu_by_owner(owners))

            prof_task = asyncio.create_task(at_window())
        else:
            lags = " ".join(f"{s}={probe.lag_now(s):.2f}s" for s in ("timers", "kpi", "notifier", "orders"))
            log(f"t={msg['t']}s acked={msg['acked']} measured={msg['in_window']} orders={msg['tracks']} "
                f"errors={msg['errors']} lag {lags}")
    driver.wait()
    if prof_task is not None:
        await prof_task
    # drain: every acknowledged action's event on the topic and every group caught up
    result = json.loads(Path(data_dir / "driver.json").read_text())
    acks = result["acks"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        missing = sum(1 for oid, v, _k, _at in acks if (oid, v) not in tap.order_events)
        if not missing and probe.caught_up():
            break
        await asyncio.sleep(1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"tap": tap, "probe": probe, "fired": fired, "driver": result, "cpu": (cpu0, cpu1), "tops": tops}


def figures(obs: dict) -> dict:
    from shared.topics import ORDER_EVENTS
    from tools.simulator.tap import DOWNSTREAM, LAG_OF, due_wall_time, parse_ts, quantile

    tap, probe, d = obs["tap"], obs["probe"], obs["driver"]
    w0, w1 = d["window"]
    acks = d["acks"]
    in_window = [a for a in acks if w0 <= a[3] < w1]
    actions_per_s = len(in_window) / (w1 - w0)
    kinds = Counter(a[2] if not a[2].startswith(("audit.", "process.")) else a[2].split(".")[0] for a in in_window)
    lag = {svc: quantile(probe.lag_samples(svc, w0, w1), 0.99) for svc in LAG_OF}
    lag_max = {svc: max(probe.lag_samples(svc, w0, w1), default=None) for svc in LAG_OF}
    e2e: dict[str, list[float]] = {svc: [] for svc in DOWNSTREAM}
    lost = {"no_event": 0, **{f"not_consumed:{svc}": 0 for svc in DOWNSTREAM}}
    for oid, v, _kind, at in acks:
        where = tap.order_events.get((oid, v))
        if where is None:
            lost["no_event"] += 1
            continue
        for svc, group in DOWNSTREAM.items():
            t = probe.committed_at(group, ORDER_EVENTS, where[0], where[1])
            if t is None:
                lost[f"not_consumed:{svc}"] += 1
            elif w0 <= at < w1:
                e2e[svc].append(max(0.0, t - at))
    history = [tuple(x) for x in d["clock"]]
    lateness = []
    for due_iso, ts in obs["fired"].values():
        due_wall = due_wall_time(parse_ts(due_iso), history)
        if w0 <= due_wall < w1:
            lateness.append(ts - due_wall)
    cpu = {}
    (t0, c0), (t1, c1) = obs["cpu"] if obs["cpu"][0] and obs["cpu"][1] else ((0, Counter()), (1, Counter()))
    for k in sorted(set(c0) | set(c1)):
        cpu[k] = round((c1.get(k, 0) - c0.get(k, 0)) / max(1e-6, t1 - t0), 3)
    return {
        "actions_per_s": round(actions_per_s, 1), "offered_rate": RATE, "actions": len(in_window),
        "action_mix": dict(kinds.most_common()),
        "lag_p99_s": {k: _r(v) for k, v in lag.items()}, "lag_max_s": {k: _r(v) for k, v in lag_max.items()},
        "e2e_p50_s": {k: _r(quantile(v, 0.5)) for k, v in e2e.items()},
        "e2e_p99_s": {k: _r(quantile(v, 0.99)) for k, v in e2e.items()},
        "firing_lateness_p50_s": _r(quantile(lateness, 0.5)), "firing_lateness_p99_s": _r(quantile(lateness, 0.99)),
        "deadlines_fired": len(lateness), "lost": sum(lost.values()), "lost_by_kind": lost,
        "cpu_cores": cpu,
        # CPU per acknowledged action, by process: which part of the platform a change made cheaper
        # (a run's machine speed moves every process alike; a change moves some)
        "cpu_ms_per_action": round(sum(cpu.values()) / actions_per_s * 1000, 3) if actions_per_s else None,
        "cpu_ms_per_action_by_process": {k: round(v / actions_per_s * 1000, 3) for k, v in cpu.items()}
        if actions_per_s else {},
        "workload_errors": d["stats"].get("errors", 0), "first_errors": d["errors"][:3],
        "refusals": {k: v for k, v in d["stats"].items() if k.startswith("refused:")},
        "retries": {k: v for k, v in d["api_stats"].items() if k.startswith("retry:")},
        "orders": len({a[0] for a in acks}), "consultations": d["stats"].get("consultations", 0),
        "virtual_hours": round(d["stats"].get("virtual_seconds", 0) / 3600, 1),
    }


def _r(v):
    return None if v is None else round(v, 3)


def main() -> int:
    from tools.simulator.platforms import PostgresPlatform

    import bench_orders

    data_dir = Path(E["BENCH_DATA_DIR"]) if E.get("BENCH_DATA_DIR") else Path(tempfile.mkdtemp(prefix="bench-platform-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    keep = E.get("BENCH_KEEP", "") in ("1", "true", "yes")
    db_prefix = f"bench_platform_{secrets.token_hex(3)}"
    platform = PostgresPlatform(data_dir, db_prefix=db_prefix, replicas={}, log=log,
                                pg=PG_SERVER, keep=keep)
    load_before = os.getloadavg()[0]
    driver = None
    try:
        platform.start()
        cfg = {"urls": platform.urls, "bootstrap": platform.bootstrap, "operator": platform.operator,
               "seed": SEED, "merchants": MERCHANTS, "concurrency": CONCURRENCY, "rate": RATE,
               "virtual_per_s": VIRTUAL_PER_S, "warmup_s": WARMUP_S, "seconds": SECONDS,
               "out": str(data_dir / "driver.json")}
        driver = subprocess.Popen([sys.executable, __file__, "--drive", json.dumps(cfg)], stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT)
        from shared.gc_tuning import tune_collector

        tune_collector()  # the tap keeps every order event: fewer collections walking it (shared.gc_tuning)
        obs = asyncio.run(observe(platform, driver, data_dir, db_prefix))
        if driver.returncode != 0:
            raise RuntimeError(f"the driver failed (exit {driver.returncode})")
        out = figures(obs)
        load_during = os.getloadavg()[0]
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        log("stopping the platform")
        platform.stop()
    log(f"orders-only ceiling: bench_orders lifecycle load for {ORDERS_ONLY_S:.0f} s")
    orders_only, _ceiling, _pending = bench_orders.measure(ORDERS_ONLY_S, with_ceiling=False)
    out["orders_only_ops_per_s"] = round(orders_only["rps"], 1)
    out["ratio"] = round(out["actions_per_s"] / orders_only["rps"], 3) if orders_only["rps"] else None
    lags_ok = all(v is not None and v < TARGET_LAG_S for k, v in out["lag_p99_s"].items() if k != "orders")
    out["meets_targets"] = out["actions_per_s"] >= TARGET_RATE and lags_ok and out["lost"] == 0
    out.update({"seconds": SECONDS, "warmup_s": WARMUP_S, "virtual_per_s": VIRTUAL_PER_S, "merchants": MERCHANTS,
                "load_average_1m_before": round(load_before, 2), "load_average_1m_end": round(load_during, 2),
                "cpu_count": os.cpu_count(), "postgres": PG_SERVER.split("@")[-1]})
    log(f"sustained {out['actions_per_s']} order actions/s (offered {RATE:.0f}); lag p99 {out['lag_p99_s']}; "
        f"e2e p50 {out['e2e_p50_s']} p99 {out['e2e_p99_s']}; firing lateness p99 {out['firing_lateness_p99_s']} s "
        f"over {out['deadlines_fired']} deadlines; lost {out['lost']}")
    log(f"where the time goes (CPU cores over the window): {out['cpu_cores']}")
    for name, top in obs["tops"].items():
        log(f"profile {name}: " + "; ".join(f"{share:.0%} {frame}" for frame, share in top))
    log(f"orders-only (front door alone): {out['orders_only_ops_per_s']} ops/s; ratio {out['ratio']}; targets: "
        f">= {TARGET_RATE:.0f} actions/s with timers, kpi and notifier lag p99 < {TARGET_LAG_S:.0f} s and nothing lost: "
        f"{'met' if out['meets_targets'] else 'NOT met'}")
    if not keep and not E.get("BENCH_DATA_DIR"):
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--drive":
        import uvloop

        uvloop.install()
        asyncio.run(drive(json.loads(sys.argv[2])))
    else:
        sys.exit(main())
