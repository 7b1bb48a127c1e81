"""SLA timer benchmark (`make bench-timers`): one sla-timer process (``sla-timer serve``)
against PostgreSQL and the embedded Kafka-compatible broker, over the real path.

1. Pending load: 1,000,000 pending timers. BENCH_EVENTS ``service_order.created``
   events are produced to ``orders.events`` and consumed by the service (5 timers per
   order, stored in batches by the idempotent consumer); the rest of the million is
   bulk-loaded beforehand with COPY (due 30-60 days ahead) so the run stays bounded -
   those rows only make the table and its pending timers' index the size the targets
   name. One warm-up order goes first, and the clock starts once its timers are stored:
   the service's consumer has then joined its group (a one-time wait at start: the
   embedded broker holds a new group's join for half the session timeout, ~5 s, Apache
   Kafka for group.initial.rebalance.delay.ms, 3 s). ``schedule_per_s`` = timers stored
   per second on the real path, from the first of the BENCH_EVENTS events produced to
   the last timer committed (envelopes serialised beforehand, so the figure is the
   consumer's, not the benchmark's JSON encoding); ``schedule_per_s_incl_start`` counts
   from the warm-up event produced instead, group join included.
2. Firing: a backlog of BENCH_FIRE due timers is committed with COPY while the service
   runs; ``fire_per_s`` = due timers turned into ``sla.deadline_fired`` events ON THE
   BROKER per second (counted from the high watermarks of ``sla.events``, from the
   COPY commit to the last event). ``claim_per_s`` (claimed + outbox row committed) and
   ``publish_per_s`` (relay) show which side bounds it.
3. Lateness: timers due over the next few seconds at a steady rate; lateness =
   the event's publish (broker ack) time - due_at, p99 (``fire_lateness_p99_s`` =
   fired_at - due_at, the claim alone).
4. Baseline at 20,000 timers: our backlog drain to the broker vs APScheduler 3.x
   (BackgroundScheduler, SQLAlchemyJobStore on the same PostgreSQL, date triggers,
   a no-op job).

Last line: JSON. Environment: BENCH_PG (the PostgreSQL server, as benchdb.py), BENCH_PENDING (1000000),
BENCH_EVENTS (orders scheduled on the real path, 20000), BENCH_FIRE (100000),
BENCH_BASELINE (20000), BENCH_FIRE_BATCH (timers claimed per transaction, 5000).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx

from benchdb import PG_SERVER, drop_db, log, make_db, rss_mb, scalar
from shared.db import postgres_url

ROOT = Path(__file__).resolve().parent.parent
PENDING = int(os.environ.get("BENCH_PENDING", "1000000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
FIRE = int(os.environ.get("BENCH_FIRE", "100000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "20000"))
FIRE_BATCH = os.environ.get("BENCH_FIRE_BATCH", "5000")
LATENESS_N, LATENESS_SPAN_S = 20000, 4.0
# BENCH_PROFILE=/path/to/py-spy: sample the timer process during each phase (raw stacks
# written to BENCH_PROFILE_DIR, default /tmp); BENCH_PROFILE_PHASES limits the phases.
PROFILE = os.environ.get("BENCH_PROFILE")
PROFILE_DIR = Path(os.environ.get("BENCH_PROFILE_DIR", "/tmp"))
TIMER_COLS = ["id", "order_id", "rule", "action", "details", "state", "due_at", "order_version", "order_state",
              "created_at"]


# Events the outbox holds: one per plain row, one per line of a bundle row.
OUTBOX_EVENTS = ("SELECT COALESCE(sum(CASE WHEN event_type = 'outbox.bundle' THEN "
                 "1 + length(payload) - length(replace(payload, E'\\n', '')) ELSE 1 END), 0) FROM outbox")


def timer_rows(n: int, due: callable, rule: str = "bench") -> list[tuple]:
    now = datetime.now(timezone.utc)
    return [(str(uuid.uuid4()), f"o-{i % 100_000}", rule, "escalate", "{}", "pending", due(i), 1, "pending_audit", now)
            for i in range(n)]


async def copy_timers(dsn: str, rows: list[tuple]) -> None:
    c = await asyncpg.connect(dsn)
    try:
        for k in range(0, len(rows), 200_000):
            await c.copy_records_to_table("timers", records=rows[k:k + 200_000], columns=TIMER_COLS)
    finally:
        await c.close()


async def wait_for(check, timeout: float, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = await check()
        if v:
            return v
        await asyncio.sleep(interval)
    raise TimeoutError("benchmark step did not finish in time")


def cpu_by_process(named: dict[int, str]) -> dict[str, float]:
    """CPU seconds used so far by this machine's processes, grouped by command name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        name = named.get(int(d.name)) or stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / tick
    return out


class Profile:
    """py-spy on the timer process for one phase (no-op without BENCH_PROFILE)."""

    def __init__(self, pid: int, phase: str) -> None:
        self.pid, self.phase, self.proc = pid, phase, None
        self.named = {pid: "sla-timer", os.getpid(): "bench"}

    def __enter__(self) -> "Profile":
        self.cpu0, self.t0 = cpu_by_process(self.named), time.perf_counter()
        if PROFILE:
            out = PROFILE_DIR / f"timers-{self.phase}.txt"
            self.proc = subprocess.Popen([PROFILE, "record", "--pid", str(self.pid), "--nonblocking", "--rate", "200",
                                          "--format", "raw", "--output", str(out)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # attached before the phase starts
        return self

    def __exit__(self, *exc) -> None:
        wall, cpu = time.perf_counter() - self.t0, cpu_by_process(self.named)
        used = sorted(((cpu[k] - self.cpu0.get(k, 0.0), k) for k in cpu), reverse=True)[:6]
        log(f"  cpu during {self.phase} ({wall:.1f}s wall): " + ", ".join(f"{k} {v:.1f}s" for v, k in used if v > 0.05))
        if self.proc is not None:
            self.proc.send_signal(2)
            self.proc.wait(timeout=30)


def created_events(n: int) -> list[tuple[bytes, bytes]]:
    sys.path.insert(0, str(ROOT / "shared" / "src"))
    import shared.contracts  # noqa: F401
    from shared.events import make_envelope

    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        oid = str(uuid.uuid4())
        env = make_envelope(type_="service_order.created", key=oid, producer="bench", occurred_at=now, data={
            "order_id": oid, "number": f"B{i}", "version": 1, "state": "pending_claim", "merchant_id": "m-1",
            "customer_id": "c-1", "customer_phone": "13800138000", "customer_level": "regular",
            "sales_order_id": f"so-{i}", "sku": "sku-1", "category": "phones", "quantity": 1,
            "amount_paid": "199.00", "service_type": "return", "problem_type": "other",
            "delivered_at": now, "created_at": now})
        out.append((oid.encode(), env.to_bytes()))
    return out


async def produce(bootstrap: str, events: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await p.start()
    try:
        futs = [await p.send("orders.events", value, key=key) for key, value in events]
        await p.flush()
        await asyncio.gather(*futs)
    finally:
        await p.stop()


class TopicCount:
    """Events that reached a topic, counted by reading them back from the broker (the
    embedded broker's ListOffsets can lag, so offsets alone would under-count)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic, self.n = bootstrap, topic, 0

    async def __aenter__(self) -> "TopicCount":
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from shared.kafka import TopicSpec, ensure_topics

        # The service creates its topics when it first produces; same partitions as its default.
        await ensure_topics(self.bootstrap, [TopicSpec(self.topic)], default_partitions=6)
        self.c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                  auto_offset_reset="earliest", fetch_max_bytes=16 * 1024 * 1024,
                                  max_partition_fetch_bytes=4 * 1024 * 1024)
        await self.c.start()
        parts = None
        for _ in range(100):
            parts = self.c.partitions_for_topic(self.topic)
            if parts:
                break
            await self.c._client.force_metadata_update()
            await asyncio.sleep(0.1)
        self.c.assign([TopicPartition(self.topic, p) for p in sorted(parts or [])])
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            got = await self.c.getmany(timeout_ms=200, max_records=10_000)
            self.n += sum(len(v) for v in got.values())

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.c.stop()

    async def count(self) -> int:
        return self.n


async def bench_ours(bootstrap: str, dsn: str, url: str) -> dict:
    from shared.outbox import row_messages

    env = {**os.environ, "SLA_TIMER_DATABASE_URL": url, "SLA_TIMER_KAFKA_BOOTSTRAP": bootstrap,
           "SLA_TIMER_PORT": "18103", "SLA_TIMER_ENVIRONMENT": "test", "SLA_TIMER_FIRE_BATCH_SIZE": FIRE_BATCH,
           "SLA_TIMER_LOG_LEVEL": "WARNING", "SLA_TIMER_OUTBOX_POLL_INTERVAL_S": "0.1"}
    # Migrations first, then the bulk of the pending timers (far in the future).
    subprocess.run([sys.executable, "-m", "sla_timer", "migrate"], env=env, check=True, capture_output=True)
    bulk = max(0, PENDING - 5 * (EVENTS + 1))  # + the warm-up order
    t = time.perf_counter()
    far = datetime.now(timezone.utc) + timedelta(days=30)
    await copy_timers(dsn, timer_rows(bulk, lambda i: far + timedelta(seconds=i * 2.5)))
    await scalar(dsn, "ANALYZE timers")
    log(f"bulk-loaded {bulk:,} pending timers (COPY) in {time.perf_counter() - t:.1f}s")
    warmup, *events = created_events(EVENTS + 1)

    proc = subprocess.Popen([sys.executable, "-m", "sla_timer", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict = {}
    try:
        async with httpx.AsyncClient(base_url="http://127.0.0.1:18103") as http:
            async def up():
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.HTTPError:
                    return False
            await wait_for(up, 60, 0.2)

        # 1. schedule over the real path: Kafka -> consumer -> timers (inbox row per event,
        # committed with its timers, so counting the inbox counts committed orders cheaply).
        def applied(n: int):
            async def check():
                return await scalar(dsn, "SELECT count(*) FROM processed_events") >= n
            return check

        t_start = time.perf_counter()
        await produce(bootstrap, [warmup])
        await wait_for(applied(1), 120, 0.05)
        join_s = time.perf_counter() - t_start
        with Profile(proc.pid, "schedule"):
            t = time.perf_counter()
            producing = asyncio.create_task(produce(bootstrap, events))
            await wait_for(applied(EVENTS + 1), 900, 0.05)
            sched_s = time.perf_counter() - t
        await producing
        stored = await scalar(dsn, "SELECT count(*) FROM timers")
        assert stored == bulk + 5 * (EVENTS + 1), f"expected {bulk + 5 * (EVENTS + 1)} timers, found {stored}"
        out["schedule_per_s"] = 5 * EVENTS / sched_s
        out["schedule_per_s_incl_start"] = 5 * (EVENTS + 1) / (time.perf_counter() - t_start)
        out["pending"] = await scalar(dsn, "SELECT count(*) FROM timers WHERE state = 'pending'")
        log(f"warm-up order applied {join_s:.2f}s after it was produced (the consumer's group join)")
        log(f"scheduled {5 * EVENTS:,} timers from {EVENTS:,} created events via Kafka in {sched_s:.2f}s: "
            f"{out['schedule_per_s']:,.0f} timers/s ({out['schedule_per_s_incl_start']:,.0f}/s counting the "
            f"warm-up and group join); pending now {out['pending']:,}")

        async with TopicCount(bootstrap, "sla.events") as on_broker:
            # 2. firing a backlog: due timers -> deadline events on the broker
            async def drain(n: int, rule: str) -> tuple[float, float, float]:
                past = datetime.now(timezone.utc) - timedelta(seconds=1)
                rows = timer_rows(n, lambda i: past, rule)
                # Every earlier deadline event is on the topic already (each step waits for
                # them), and nothing else produces to it: the events in the outbox are the
                # baseline (a bundle row holds one event per line).
                before = await scalar(dsn, OUTBOX_EVENTS)
                c = await asyncpg.connect(dsn)
                try:
                    await c.copy_records_to_table("timers", records=rows, columns=TIMER_COLS)
                    t0 = datetime.now(timezone.utc)  # committed: the service may see them from now
                finally:
                    await c.close()
                p0 = time.perf_counter()

                async def arrived():
                    return await on_broker.count() - before >= n
                await wait_for(arrived, 600, 0.02)
                broker_s = time.perf_counter() - p0
                assert await scalar(dsn, "SELECT count(*) FROM timers WHERE rule = $1 AND state = 'fired'", rule) == n
                last = await scalar(dsn, "SELECT max(fired_at) FROM timers WHERE rule = $1", rule)
                last_pub = await scalar(dsn, "SELECT max(published_at) FROM outbox")
                return (n / broker_s, n / max(1e-6, (last - t0).total_seconds()),
                        n / max(1e-6, (last_pub - t0).total_seconds()))

            with Profile(proc.pid, "fire"):
                out["fire_per_s"], out["claim_per_s"], out["publish_per_s"] = await drain(FIRE, "bench_fire")
            log(f"fired a backlog of {FIRE:,} due timers: {out['fire_per_s']:,.0f}/s as events on the broker "
                f"(claimed + outbox committed {out['claim_per_s']:,.0f}/s, relay acked {out['publish_per_s']:,.0f}/s)")

            # 3. lateness at a steady rate, to the broker ack
            start = datetime.now(timezone.utc) + timedelta(seconds=1.5)
            step = LATENESS_SPAN_S / LATENESS_N
            await copy_timers(dsn, timer_rows(LATENESS_N, lambda i: start + timedelta(seconds=i * step),
                                              "bench_late"))

            async def late_published():
                return await scalar(dsn, "SELECT count(*) FROM timers WHERE rule = 'bench_late' AND state = 'fired'") \
                    >= LATENESS_N and await scalar(dsn, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
            await wait_for(late_published, 120, 0.1)
            c = await asyncpg.connect(dsn)
            try:
                timers = await c.fetch("SELECT id, due_at, fired_at FROM timers WHERE rule = 'bench_late'")
                published = {}  # event id -> when the relay had the broker's ack of its row
                for row in await c.fetch("SELECT event_type, key, payload, published_at FROM outbox "
                                         "WHERE created_at >= $1", start - timedelta(seconds=5)):
                    for _key, value in row_messages(row["event_type"], row["key"], row["payload"]):
                        published[json.loads(value)["id"]] = row["published_at"]
            finally:
                await c.close()
            lat = sorted((published[str(uuid.uuid3(uuid.NAMESPACE_URL, f"sla-timer/{r['id']}"))] - r["due_at"])
                         .total_seconds() for r in timers)
            fire_lat = sorted((r["fired_at"] - r["due_at"]).total_seconds() for r in timers)
            out["lateness_p50_s"] = lat[len(lat) // 2]
            out["lateness_p99_s"] = lat[int(len(lat) * 0.99)]
            out["fire_lateness_p99_s"] = fire_lat[int(len(fire_lat) * 0.99)]
            log(f"lateness over {LATENESS_N:,} timers due at {LATENESS_N / LATENESS_SPAN_S:,.0f}/s (due -> on the "
                f"broker): p50 {out['lateness_p50_s']:.3f}s, p99 {out['lateness_p99_s']:.3f}s "
                f"(due -> claimed p99 {out['fire_lateness_p99_s']:.3f}s)")

            # 4. the baseline size
            out["fire_per_s_baseline_size"], _, _ = await drain(BASELINE, "bench_base")
            log(f"fired {BASELINE:,} due timers: {out['fire_per_s_baseline_size']:,.0f}/s to the broker")
        rss, hwm = rss_mb(proc.pid)
        out["rss_mb"], out["rss_peak_mb"] = rss, hwm
        log(f"timer process memory: RSS {rss:.0f} MB, peak {hwm:.0f} MB")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


# APScheduler needs an importable job function.
_done = 0
_done_lock = threading.Lock()
_all_done = threading.Event()


def _tick(n: int) -> None:
    global _done
    with _done_lock:
        _done += 1
        if _done >= n:
            _all_done.set()


def bench_apscheduler(db: str) -> dict:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    import logging
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    store = SQLAlchemyJobStore(url=postgres_url(PG_SERVER, db, "postgresql+psycopg"))
    sched = BackgroundScheduler(jobstores={"default": store}, executors={"default": ThreadPoolExecutor(20)},
                                job_defaults={"misfire_grace_time": None, "coalesce": False}, timezone="UTC")
    sched.start(paused=True)
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    t = time.perf_counter()
    for i in range(BASELINE):
        sched.add_job(_tick, "date", run_date=due, args=[BASELINE], id=f"j{i}")
    add_s = time.perf_counter() - t
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
    t = time.perf_counter()
    sched.resume()
    _all_done.wait(timeout=1800)
    fire_s = time.perf_counter() - t
    sched.shutdown(wait=False)
    return {"apscheduler_schedule_per_s": BASELINE / add_s, "apscheduler_fire_per_s": _done / fire_s}


async def main() -> None:
    sys.path.insert(0, str(ROOT / "shared" / "src"))
    from shared.broker import EmbeddedBroker

    broker = EmbeddedBroker()
    broker.start()
    db, dsn, url = await make_db("sla")
    aps_db, _, _ = await make_db("aps")
    try:
        ours = await bench_ours(broker.bootstrap, dsn, url)
        log(f"APScheduler 3.x baseline: {BASELINE:,} date jobs in SQLAlchemyJobStore on PostgreSQL ...")
        aps = await asyncio.to_thread(bench_apscheduler, aps_db)
        log(f"APScheduler: schedule {aps['apscheduler_schedule_per_s']:,.0f} jobs/s, "
            f"fire {aps['apscheduler_fire_per_s']:,.0f} jobs/s")
    finally:
        broker.stop()
        await drop_db(db)
        await drop_db(aps_db)
    ratio = ours["fire_per_s_baseline_size"] / aps["apscheduler_fire_per_s"]
    log(f"ours at {BASELINE:,}: {ours['fire_per_s_baseline_size']:,.0f} fired/s vs APScheduler "
        f"{aps['apscheduler_fire_per_s']:,.0f}/s: {ratio:.1f}x")
    targets = {"schedule_per_s": ours["schedule_per_s"] >= 10_000, "fire_per_s": ours["fire_per_s"] >= 10_000,
               "lateness_p99_s": ours["lateness_p99_s"] < 1.0, "rss_mb": ours["rss_peak_mb"] < 500,
               "ratio_vs_apscheduler": ratio >= 10}
    log("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items()))
    result = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in {**ours, **aps}.items()}
    result["ratio_vs_apscheduler"] = round(ratio, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
