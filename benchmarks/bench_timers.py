"""SLA timer benchmark (`make bench-timers`): one sla-timer process (``sla-timer serve``)
against PostgreSQL and the embedded Kafka-compatible broker, over the real path.

1. Pending load: 1,000,000 pending timers. A sample is scheduled over the real path
   (``service_order.created`` events produced to ``orders.events``, consumed by the
   service, timers stored: 5 timers per order); the rest is bulk-loaded with COPY
   (due 30-60 days ahead) so the run stays bounded. ``schedule_per_s`` = timers stored
   per second on the real path.
2. Firing: a backlog of due timers (inserted with COPY while the service runs) is
   claimed in batches, marked fired and written to the outbox in one transaction,
   and published on ``sla.events``. ``fire_per_s`` = due timers fired per second
   (claimed + outbox row committed); the publish rate is printed too.
3. Lateness: timers due over the next few seconds at a steady rate; lateness =
   fired_at - due_at, p99.
4. Baseline at 20,000 timers: our backlog drain vs APScheduler 3.x
   (BackgroundScheduler, SQLAlchemyJobStore on the same PostgreSQL, date triggers).

Last line: JSON. Environment: BENCH_PG_DSN (admin DSN), BENCH_PENDING (1000000),
BENCH_EVENTS (orders scheduled on the real path, 10000), BENCH_FIRE (100000),
BENCH_BASELINE (20000).
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

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
PENDING = int(os.environ.get("BENCH_PENDING", "1000000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
FIRE = int(os.environ.get("BENCH_FIRE", "100000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "20000"))
LATENESS_N, LATENESS_SPAN_S = 20000, 4.0
TIMER_COLS = ["id", "order_id", "rule", "action", "details", "state", "due_at", "order_version", "order_state",
              "created_at"]


def log(msg: str) -> None:
    print(msg, flush=True)


async def make_db(name: str) -> tuple[str, str]:
    db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(ADMIN_DSN)
    try:
        await c.execute(f'CREATE DATABASE "{db}"')
    finally:
        await c.close()
    return db, f"postgresql://{PG_HOST}/{db}"


async def drop_db(db: str) -> None:
    c = await asyncpg.connect(ADMIN_DSN)
    try:
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await c.close()


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


async def scalar(dsn: str, sql: str, *args):
    c = await asyncpg.connect(dsn)
    try:
        return await c.fetchval(sql, *args)
    finally:
        await c.close()


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def wait_for(check, timeout: float, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = await check()
        if v:
            return v
        await asyncio.sleep(interval)
    raise TimeoutError("benchmark step did not finish in time")


async def produce_created(bootstrap: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer

    sys.path.insert(0, str(ROOT / "shared" / "src"))
    import shared.contracts  # noqa: F401
    from shared.events import make_envelope

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await p.start()
    try:
        now = datetime.now(timezone.utc)
        futs = []
        for i in range(n):
            oid = str(uuid.uuid4())
            env = make_envelope(type_="service_order.created", key=oid, producer="bench", occurred_at=now, data={
                "order_id": oid, "number": f"B{i}", "version": 1, "state": "pending_claim", "merchant_id": "m-1",
                "customer_id": "c-1", "customer_phone": "13800138000", "customer_level": "regular",
                "sales_order_id": f"so-{i}", "sku": "sku-1", "category": "phones", "quantity": 1,
                "amount_paid": "199.00", "service_type": "return", "problem_type": "other",
                "delivered_at": now, "created_at": now})
            futs.append(await p.send("orders.events", env.model_dump_json().encode(), key=oid.encode()))
        await p.flush()
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def bench_ours(bootstrap: str, dsn: str, url: str) -> dict:
    env = {**os.environ, "SLA_TIMER_DATABASE_URL": url, "SLA_TIMER_KAFKA_BOOTSTRAP": bootstrap,
           "SLA_TIMER_PORT": "18103", "SLA_TIMER_ENVIRONMENT": "test", "SLA_TIMER_FIRE_BATCH_SIZE": "2000",
           "SLA_TIMER_LOG_LEVEL": "WARNING", "SLA_TIMER_OUTBOX_POLL_INTERVAL_S": "0.1"}
    # Migrations first, then the bulk of the pending timers (far in the future).
    subprocess.run([sys.executable, "-m", "sla_timer", "migrate"], env=env, check=True, capture_output=True)
    bulk = max(0, PENDING - 5 * EVENTS)
    t = time.perf_counter()
    far = datetime.now(timezone.utc) + timedelta(days=30)
    await copy_timers(dsn, timer_rows(bulk, lambda i: far + timedelta(seconds=i * 2.5)))
    await scalar(dsn, "ANALYZE timers")
    log(f"bulk-loaded {bulk:,} pending timers (COPY) in {time.perf_counter() - t:.1f}s")

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

        # 1. schedule over the real path
        t = time.perf_counter()
        await produce_created(bootstrap, EVENTS)
        produced = time.perf_counter() - t
        target = bulk + 5 * EVENTS

        async def scheduled():
            return await scalar(dsn, "SELECT count(*) FROM timers") >= target
        await wait_for(scheduled, 900, 0.2)
        sched_s = time.perf_counter() - t
        out["schedule_per_s"] = 5 * EVENTS / sched_s
        out["pending"] = await scalar(dsn, "SELECT count(*) FROM timers WHERE state = 'pending'")
        log(f"scheduled {5 * EVENTS:,} timers from {EVENTS:,} created events via Kafka in {sched_s:.1f}s "
            f"(produce {produced:.1f}s): {out['schedule_per_s']:,.0f} timers/s; pending now {out['pending']:,}")

        # 2. firing a backlog
        async def drain(n: int, rule: str) -> tuple[float, float]:
            past = datetime.now(timezone.utc) - timedelta(seconds=1)
            rows = timer_rows(n, lambda i: past, rule)
            c = await asyncpg.connect(dsn)
            try:
                await c.execute("SELECT 1")
                t0 = datetime.now(timezone.utc)
                await c.copy_records_to_table("timers", records=rows, columns=TIMER_COLS)
            finally:
                await c.close()

            async def fired():
                return await scalar(dsn, "SELECT count(*) FROM timers WHERE rule = $1 AND state = 'fired'", rule) >= n
            await wait_for(fired, 600, 0.05)
            last = await scalar(dsn, "SELECT max(fired_at) FROM timers WHERE rule = $1", rule)

            async def published():
                return await scalar(dsn, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
            await wait_for(published, 600, 0.1)
            last_pub = await scalar(dsn, "SELECT max(published_at) FROM outbox")
            return n / max(1e-6, (last - t0).total_seconds()), n / max(1e-6, (last_pub - t0).total_seconds())

        out["fire_per_s"], out["publish_per_s"] = await drain(FIRE, "bench_fire")
        log(f"fired a backlog of {FIRE:,} due timers: {out['fire_per_s']:,.0f}/s fired (claimed + outbox), "
            f"{out['publish_per_s']:,.0f}/s end-to-end to the broker")

        # 3. lateness at a steady rate
        start = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        step = LATENESS_SPAN_S / LATENESS_N
        await copy_timers(dsn, timer_rows(LATENESS_N, lambda i: start + timedelta(seconds=i * step), "bench_late"))

        async def late_fired():
            return await scalar(dsn, "SELECT count(*) FROM timers WHERE rule = 'bench_late' AND state = 'fired'") \
                >= LATENESS_N
        await wait_for(late_fired, 120, 0.1)
        c = await asyncpg.connect(dsn)
        try:
            lat = sorted(r[0] for r in await c.fetch(
                "SELECT extract(epoch FROM fired_at - due_at) FROM timers WHERE rule = 'bench_late'"))
        finally:
            await c.close()
        out["lateness_p50_s"] = float(lat[len(lat) // 2])
        out["lateness_p99_s"] = float(lat[int(len(lat) * 0.99)])
        log(f"lateness over {LATENESS_N:,} timers due at {LATENESS_N / LATENESS_SPAN_S:,.0f}/s: "
            f"p50 {out['lateness_p50_s']:.3f}s, p99 {out['lateness_p99_s']:.3f}s")

        # 4. the baseline size
        out["fire_per_s_baseline_size"], _ = await drain(BASELINE, "bench_base")
        log(f"fired {BASELINE:,} due timers: {out['fire_per_s_baseline_size']:,.0f}/s")
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
    store = SQLAlchemyJobStore(url=f"postgresql+psycopg://{PG_HOST}/{db}")
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
    db, dsn = await make_db("sla")
    aps_db, _ = await make_db("aps")
    try:
        ours = await bench_ours(broker.bootstrap, dsn, f"postgresql+asyncpg://{PG_HOST}/{db}")
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
