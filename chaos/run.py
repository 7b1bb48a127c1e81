"""`make chaos`: the production-like platform under a workload while replicas and the broker
are SIGKILLed, then invariants across services.

1. Starts the topology of `make run-prod-like` (deploy/run_prod_like.py: PostgreSQL
   database per service, two replicas of orders and sla-timer behind one address each,
   the embedded broker, virtual clock) on free ports with databases of its own.
2. Onboards the workload's marketplace (tools/workload) and plays it: applications,
   audits, shipments, receipts, decisions, confirmations, ratings, arbitration, routing
   calls, virtual-clock jumps that make deadlines fire.
3. Meanwhile, every few seconds (seeded), SIGKILLs one random replica or the broker and
   starts it again 0.5-3 s later. The embedded broker comes back EMPTY: topics and
   committed offsets are gone; services re-create topics, relays resend, consumers rewind.
   Once, it publishes two poison messages (not an envelope; an unknown event type) and
   waits until every consumer of their topics parked them (no broker kill meanwhile).
4. After CHAOS_SECONDS, stops the workload and the kills, waits for quiescence (every
   replica ready, every outbox empty, every consumer group caught up) and checks the
   invariants (chaos/invariants.py) through the services' APIs.

Progress lines while it runs; the last line is one JSON object: orders, actions, kills,
lost, duplicated, invariant_violations, duration_s and more. Exit status 0 when lost,
duplicated and invariant_violations are all 0.

Environment: CHAOS_SECONDS (1200), CHAOS_SEED (1), CHAOS_KILL_EVERY_S (5: mean seconds
between kills), CHAOS_MERCHANTS (8), CHAOS_ORDERS_PER_ROUND (3), CHAOS_ROUND_MIN_S (1.5),
CHAOS_DATA_DIR (a new temporary directory: logs of every process), CHAOS_KEEP (1: keep
the databases and the directory; a failed run always keeps them), CHAOS_QUIESCE_TIMEOUT_S (180), CHAOS_TARGETS (all;
`services`: every replica but not the broker; or a list such as `orders-1,kpi`),
CHAOS_CLOCK_SCALE (1: multiplies the virtual-clock steps of the workload's rounds).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from run_prod_like import BROKER, PlatformConfig, ProdLikePlatform  # noqa: E402

from chaos.invariants import Checker, Report  # noqa: E402
from tools.workload import Api, Config, Workload  # noqa: E402
from tools.workload.api import ApiError, Unavailable  # noqa: E402

# consumer groups and the topics they read (for the lag; a group is `<service>.<purpose>`)
GROUPS = {
    "orders.deadlines": ["sla.events"], "orders.qualification": ["kpi.events"],
    "sla-timer.orders": ["orders.events"], "kpi.facts": ["orders.events", "sla.events", "routing.events"],
    "notifier.orders": ["orders.events"], "notifier.sla": ["sla.events"],
    "consultation-routing.catalogue": ["catalogue.events"], "consultation-routing.qualification": ["kpi.events"],
}
TOPIC_CONSUMERS = {"orders.events": ["sla-timer", "kpi", "notifier"], "sla.events": ["orders", "kpi", "notifier"]}
SERVICES = ("orders", "consultation-routing", "sla-timer", "kpi", "notifier")


def say(msg: str) -> None:
    print(f"[chaos] {msg}", flush=True)


def free_base_port(span: int = 20) -> int:
    """A base port with ``span`` free ports after it (the platform's public and replica ports)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - span)  # below the ephemeral range (32768-)
        ok = True
        for p in range(base, base + span):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


@dataclass
class Settings:
    seconds: float = 1200.0
    seed: int = 1
    kill_every_s: float = 5.0
    merchants: int = 8
    orders_per_round: int = 3
    round_min_s: float = 1.5
    data_dir: Path | None = None
    keep: bool = False
    quiesce_timeout_s: float = 180.0
    targets: str = "all"  # all | services (no broker kills) | a comma-separated list of instances
    clock_scale: float = 1.0

    @classmethod
    def from_env(cls) -> "Settings":
        e = os.environ
        return cls(seconds=float(e.get("CHAOS_SECONDS", "1200")), seed=int(e.get("CHAOS_SEED", "1")),
                   kill_every_s=float(e.get("CHAOS_KILL_EVERY_S", "5")),
                   merchants=int(e.get("CHAOS_MERCHANTS", "8")),
                   orders_per_round=int(e.get("CHAOS_ORDERS_PER_ROUND", "3")),
                   round_min_s=float(e.get("CHAOS_ROUND_MIN_S", "1.5")),
                   data_dir=Path(e["CHAOS_DATA_DIR"]) if e.get("CHAOS_DATA_DIR") else None,
                   keep=e.get("CHAOS_KEEP", "") in ("1", "true", "yes"),
                   quiesce_timeout_s=float(e.get("CHAOS_QUIESCE_TIMEOUT_S", "180")),
                   targets=e.get("CHAOS_TARGETS", "all"),
                   clock_scale=float(e.get("CHAOS_CLOCK_SCALE", "1")))


@dataclass
class ChaosState:
    kills: Counter = field(default_factory=Counter)
    poisons: list[dict] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


class ChaosRun:
    def __init__(self, s: Settings) -> None:
        self.s = s
        self.rng = random.Random(f"chaos/{s.seed}")
        self.data_dir = s.data_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
        base = free_base_port()
        self.platform = ProdLikePlatform(PlatformConfig(
            base_port=base, kafka_port=base + 19, data_dir=self.data_dir,
            db_prefix=f"chaos_{secrets.token_hex(3)}", seed_demo=False), log=lambda m: say(f"platform: {m}"))
        self.state = ChaosState()
        self.api: Api | None = None
        self.workload: Workload | None = None
        self.started = time.monotonic()

    # ------------------------------------------------------------------ chaos
    async def kill_loop(self, stop: asyncio.Event, hold_broker: asyncio.Event) -> None:
        if self.s.targets == "all":
            victims = list(self.platform.instances)
        elif self.s.targets == "services":
            victims = [n for n in self.platform.instances if n != BROKER]
        else:
            victims = [n.strip() for n in self.s.targets.split(",") if n.strip() in self.platform.instances]
        weights = [1.0 if n != BROKER else 0.6 for n in victims]
        while not stop.is_set():
            wait = self.rng.uniform(0.5, 1.5) * self.s.kill_every_s
            try:
                await asyncio.wait_for(stop.wait(), wait)
                return
            except asyncio.TimeoutError:
                pass
            victim = self.rng.choices(victims, weights)[0]
            if victim == BROKER and hold_broker.is_set():
                others = [v for v in victims if v != BROKER]
                if not others:
                    continue
                victim = self.rng.choice(others)
            down = self.rng.uniform(0.5, 3.0)
            await asyncio.to_thread(self.platform.kill, victim)
            self.state.kills[victim] += 1
            self.state.history.append(f"{time.monotonic() - self.started:.0f}s {victim}")
            await asyncio.sleep(down)
            await asyncio.to_thread(self.platform.restart, victim)

    async def poison(self, stop: asyncio.Event, hold_broker: asyncio.Event, after_s: float) -> None:
        """Two messages nobody can apply, published straight to the broker; every consumer
        of their topic must park them (and go on with the rest)."""
        try:
            await asyncio.wait_for(stop.wait(), after_s)
            return
        except asyncio.TimeoutError:
            pass
        from aiokafka import AIOKafkaProducer

        hold_broker.set()
        try:
            marker = f"chaos-poison-{secrets.token_hex(4)}"
            messages = [
                {"topic": "orders.events", "marker": f"{marker}-a", "key": b"poison-a",
                 "value": f"not an envelope {marker}-a".encode()},
                {"topic": "sla.events", "marker": f"{marker}-b", "key": b"poison-b",
                 "value": json.dumps({"id": "00000000-0000-4000-8000-000000000001", "type": f"{marker}-b.unknown",
                                      "schema_version": 1, "occurred_at": "2026-01-01T00:00:00+00:00",
                                      "producer": "chaos", "key": "poison-b", "data": {}}).encode()},
            ]
            for _ in range(30):  # the broker may be restarting
                if not self.platform.running(BROKER):
                    await asyncio.sleep(1)
                    continue
                producer = AIOKafkaProducer(bootstrap_servers=self.platform.bootstrap, enable_idempotence=False)
                try:
                    await producer.start()
                    for m in messages:
                        await producer.send_and_wait(m["topic"], m["value"], key=m["key"])
                    break
                except Exception as exc:  # noqa: BLE001 - try again
                    say(f"poison not published yet: {exc!r}")
                    await asyncio.sleep(1)
                finally:
                    await producer.stop()
            for m in messages:
                self.state.poisons.append({"topic": m["topic"], "marker": m["marker"],
                                           "consumers": TOPIC_CONSUMERS[m["topic"]]})
            say(f"poisoned orders.events and sla.events ({marker}); no broker kill until they are parked")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not stop.is_set():
                parked = await self.parked()
                if all(any(p["marker"] in it["payload"] for it in parked.get(svc, []))
                       for p in self.state.poisons for svc in p["consumers"]):
                    say("poison parked by every consumer")
                    break
                await asyncio.sleep(2)
        finally:
            hold_broker.clear()

    async def parked(self) -> dict[str, list[dict]]:
        out = {}
        for svc in SERVICES:
            try:
                body = await self.api.ok(svc, "GET", "/admin/dead-letters", as_=self.op, params={"limit": 500})
                out[svc] = body["items"]
            except (Unavailable, ApiError):
                out[svc] = []
        return out

    # ------------------------------------------------------------------ progress
    async def progress(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 10)
                return
            except asyncio.TimeoutError:
                pass
            w = self.workload.summary()
            retries = sum(v for k, v in self.api.stats.items() if k.startswith("retry:"))
            say(f"t={time.monotonic() - self.started:.0f}s kills={sum(self.state.kills.values())} "
                f"({self.state.history[-1] if self.state.history else '-'}) rounds={w['rounds']} orders={w['orders']} "
                f"actions={w['actions']} consultations={w['consultations']} virtual_days={w['virtual_days']} "
                f"retries={retries} errors={w['errors']}")

    # ------------------------------------------------------------------ quiescence
    async def consumer_lag(self) -> dict[str, int]:
        """Messages each consumer group has not committed yet (end offset - committed offset)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        lag = {}
        for group, topics in GROUPS.items():
            # a consumer that never subscribes: it only reads the group's committed offsets
            c = AIOKafkaConsumer(bootstrap_servers=self.platform.bootstrap, group_id=group, enable_auto_commit=False,
                                 request_timeout_ms=5000)
            await c.start()
            try:
                await c._client.force_metadata_update()
                tps = [TopicPartition(t, p) for t in topics for p in (c.partitions_for_topic(t) or set())]
                ends = await c.end_offsets(tps) if tps else {}
                total = 0
                for tp, end in ends.items():
                    done = await c.committed(tp)
                    total += max(0, end - (done or 0))
                lag[group] = total
            finally:
                await c.stop()
        return lag

    async def clocks_behind(self, target: float) -> dict[str, float]:
        """Replicas whose virtual clock offset is still short of ``target``."""
        token = await self.api.token(self.op)
        behind = {}
        for name, inst in self.platform.instances.items():
            if inst.service == BROKER:
                continue
            r = await self.api.get_url(f"http://127.0.0.1:{inst.port}/admin/clock",
                                       headers={"Authorization": f"Bearer {token}"})
            offset = float(r.json()["offset_seconds"])
            if offset < target - 1:
                behind[name] = round(target - offset)
        return behind

    async def quiesce(self) -> dict:
        """Every replica back and ready, every outbox empty and every consumer group at the end
        of its topics, twice in a row 3 s apart."""
        for name in self.platform.instances:
            if not self.platform.running(name):
                await asyncio.to_thread(self.platform.restart, name)
        await asyncio.to_thread(self.platform.wait_ready, self.s.quiesce_timeout_s)
        deadline = time.monotonic() + self.s.quiesce_timeout_s
        calm, last = 0, {}
        target = self.api.clock.offset_s  # the last clock jump the workload made
        while time.monotonic() < deadline:
            try:
                behind = await self.clocks_behind(target)
                if behind:  # a replica has not applied the last jump yet: its deadlines are still to fire
                    last = {"clock_behind": behind}
                    calm = 0
                    await asyncio.sleep(1)
                    continue
                outbox = {svc: (await self.api.ok(svc, "GET", "/admin/outbox", as_=self.op))["pending"]
                          for svc in SERVICES}
                lag = await self.consumer_lag()
            except Exception as exc:  # noqa: BLE001 - not quiet yet
                last = {"error": repr(exc)}
                calm = 0
                await asyncio.sleep(2)
                continue
            last = {"outbox": outbox, "lag": lag}
            calm = calm + 1 if not any(outbox.values()) and not any(lag.values()) else 0
            if calm >= 2:
                return last
            await asyncio.sleep(3)
        say(f"not quiet after {self.s.quiesce_timeout_s:.0f}s: {last}")
        return last

    # ------------------------------------------------------------------ checks
    async def check(self) -> Report:
        checker = Checker(self.api, self.op)
        await checker.prepare()
        rep = Report()
        w = self.workload
        acked: dict[str, list[tuple[int, str]]] = {}
        for a in w.acked:
            acked.setdefault(a.order_id, []).append((a.version, a.kind))
        results = await asyncio.gather(*(checker.collect(oid) for oid in w.tracks), return_exceptions=True)
        datas = []
        for oid, o in zip(w.tracks, results):
            if isinstance(o, Exception):  # after quiescence every read must work
                rep.add("invariant", "order_unreadable", oid, repr(o)[:300])
            else:
                datas.append(o)
        for o in datas:
            checker.check_order(o, rep, acked.get(o.id, []), w.tracks[o.id].plan.goods_amount)
        rep.checked_orders = len(datas)
        penalties = (await self.api.ok("kpi", "GET", "/v1/penalties", as_=self.op))["lines"]
        billing = (await self.api.ok("kpi", "GET", "/v1/billing", as_=self.op))["lines"]
        checker.check_ledgers(datas, penalties, billing, {m.id for m in w.shops}, w.consultations, rep)
        checker.check_parked(await self.parked(), self.state.poisons, rep)
        return rep

    # ------------------------------------------------------------------ the run
    async def play(self) -> dict:
        s = self.s
        self.api = Api(self.platform.urls)
        self.op = self.platform.operator["client_id"]
        self.api.add_client(self.op, self.platform.operator["client_secret"])
        self.workload = Workload(self.api, self.op, Config(
            seed=s.seed, merchants=s.merchants, orders_per_round=s.orders_per_round, round_min_s=s.round_min_s,
            clock_scale=s.clock_scale),
            log=say)
        await self.workload.setup()
        stop_chaos, stop_all, hold_broker = asyncio.Event(), asyncio.Event(), asyncio.Event()
        say(f"chaos for {s.seconds:.0f}s: a kill every ~{s.kill_every_s:.0f}s ({s.targets}: "
            f"{', '.join(self.platform.instances)})")
        chaos_started = time.monotonic()
        tasks = [asyncio.create_task(self.workload.run(stop_chaos)),
                 asyncio.create_task(self.kill_loop(stop_chaos, hold_broker)),
                 asyncio.create_task(self.poison(stop_chaos, hold_broker, s.seconds / 3)),
                 asyncio.create_task(self.progress(stop_all))]
        await asyncio.sleep(s.seconds)
        stop_chaos.set()
        say("chaos over: letting the last round finish")
        await asyncio.gather(*tasks[:3])
        chaos_s = time.monotonic() - chaos_started
        say("waiting for quiescence")
        quiet = await self.quiesce()
        stop_all.set()
        await tasks[3]
        say(f"quiet: {quiet}; checking invariants")
        rep = await self.check()
        return {"rep": rep, "chaos_s": chaos_s, "quiet": quiet}

    def run(self) -> int:
        out: dict = {}
        code = 1
        try:
            self.platform.start()
            result = asyncio.run(self._play_and_close())
            rep: Report = result["rep"]
            w = self.workload
            for v in rep.violations[:40]:
                print(v.line(), flush=True)
            if len(rep.violations) > 40:
                print(f"... {len(rep.violations) - 40} more in {self.data_dir / 'chaos-report.json'}", flush=True)
            (self.data_dir / "chaos-report.json").write_text(json.dumps(
                {"violations": [v.__dict__ for v in rep.violations], "api_stats": dict(self.api.stats),
                 "workload_stats": dict(w.stats), "workload_errors": w.errors, "kills": self.state.history,
                 "supervisor": [m for _t, m in self.platform.events]}, indent=1, default=str))
            out = {
                "orders": len(w.tracks), "actions": w.stats["actions"], "kills": sum(self.state.kills.values()),
                "lost": rep.count("lost"), "duplicated": rep.count("duplicated"),
                "invariant_violations": rep.count("invariant"),
                "duration_s": round(time.monotonic() - self.started, 1), "chaos_s": round(result["chaos_s"], 1),
                "kills_by_target": dict(self.state.kills), "rounds": w.rounds,
                "virtual_days": round(w.stats["virtual_seconds"] / 86400, 1),
                "consultations": w.stats["consultations"], "timers": rep.timers, "timers_fired": rep.fired,
                "messages": rep.messages, "poisoned": len(self.state.poisons), "parked_poison": rep.parked_poison,
                "workload_errors": w.stats["errors"], "violations_by_kind": rep.by_kind(),
                "unexpected_exits": len(self.platform.events),
                "retries": sum(v for k, v in self.api.stats.items() if k.startswith("retry:")),
                "quiet": result["quiet"], "seed": self.s.seed, "targets": self.s.targets,
                "data_dir": str(self.data_dir),
            }
            code = 0 if not (out["lost"] or out["duplicated"] or out["invariant_violations"]) else 1
        except Exception as exc:  # noqa: BLE001 - reported in the last line, like the figures
            import traceback

            traceback.print_exc()
            out = {"error": repr(exc), "orders": 0, "actions": 0, "kills": sum(self.state.kills.values()),
                   "lost": None, "duplicated": None, "invariant_violations": None,
                   "duration_s": round(time.monotonic() - self.started, 1), "data_dir": str(self.data_dir)}
        finally:
            say("stopping the platform")
            self.platform.stop()
            # A failed run keeps its databases and logs so the finding can be diagnosed.
            if code == 0 and not self.s.keep:
                self.platform.drop_databases()
                if self.s.data_dir is None:
                    shutil.rmtree(self.data_dir, ignore_errors=True)
            elif code != 0:
                say(f"kept the databases and logs for diagnosis: {self.data_dir}")
        print(json.dumps(out), flush=True)
        return code

    async def _play_and_close(self) -> dict:
        try:
            return await self.play()
        finally:
            if self.api is not None:
                await self.api.close()


def main() -> int:
    def stop(signum, _frame):
        # unwinds the run so its `finally` stops every process it started (they run in
        # sessions of their own and would outlive us)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    return ChaosRun(Settings.from_env()).run()


if __name__ == "__main__":
    sys.exit(main())
