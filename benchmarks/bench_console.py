"""Operators' console benchmark (`make bench-console`): the overview page with 100,000
service orders of 10,000 merchants, answered by one `console serve` process.

1. Read model: BENCH_ORDERS orders (created over the last 7 days, one merchant in
   BENCH_MERCHANTS each) and their transitions (0-4 each: about a third end closed,
   rejected, completed...) are applied with the console's own consumer code
   (``console.adapters.readmodel.apply_events``, batches of 2,000 events in one transaction,
   as its consumer does) to a fresh database: SQLite by default (the embedded default),
   PostgreSQL with BENCH_DB=postgres.
2. The console process starts on that database (an embedded broker beside it: its consumer
   joins and finds nothing new); a platform operator's session is made in its table.
3. Page loads: BENCH_WARMUP then BENCH_REQUESTS sequential `GET /overview` (the whole HTML
   page: six figures, three charts, three tables) over one keep-alive connection, and as
   many `GET /overview?part=live` (what the page fetches every few seconds).

Last line: JSON with p50/p95/p99 of both, and ``meets_target`` (overview p95 <= 300 ms).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "100000"))
MERCHANTS = int(os.environ.get("BENCH_MERCHANTS", "10000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))
DB_KIND = os.environ.get("BENCH_DB", "sqlite")
TARGET_P95_MS = 300.0
BATCH = 2000
MODES = ("pop_self_service", "platform", "customer_contact", "full_manufacturer")
# (action, to_state) paths an order may have taken so far
PATHS = [
    [],
    [("claim", "pending_audit")],
    [("claim", "pending_audit"), ("audit.approve_return", "awaiting_return_shipment")],
    [("claim", "pending_audit"), ("audit.approve_return", "awaiting_return_shipment"),
     ("fill_shipment", "awaiting_receipt")],
    [("claim", "pending_audit"), ("audit.reject", "rejected")],
    [("claim", "pending_audit"), ("audit.resend_without_return", "provisionally_completed"),
     ("confirm", "completed")],
    [("claim", "pending_audit"), ("audit.approve_return", "awaiting_return_shipment"),
     ("fill_shipment", "awaiting_receipt"), ("arbitration.request", "arbitration")],
    [("abandon", "abandoned")],
]


def log(msg: str) -> None:
    print(msg, flush=True)


def events(now: datetime):
    """The envelopes of every order's events, each order's in its order. Data are the
    contracts' structs built from Python values (``registry.data_from_builtins``): what the
    consumer hands the read model after decoding, without a JSON round trip per event here."""
    import shared.contracts  # noqa: F401 - registers event types
    from shared.events import Envelope, registry

    def make_envelope(*, type_: str, key: str, producer: str, occurred_at: datetime, data: dict) -> Envelope:
        return Envelope(type=type_, key=key, producer=producer, occurred_at=occurred_at,
                        data=registry.data_from_builtins(type_, 1, data))

    rng = random.Random(7)
    for n in range(ORDERS):
        oid = str(uuid.uuid4())
        merchant = f"m-{n % MERCHANTS:05d}"
        mode = MODES[n % len(MODES)]
        created = now - timedelta(seconds=rng.uniform(60, 7 * 86400))
        snap = {"merchant_id": merchant, "customer_id": f"c-{n}", "customer_phone": "13800138000",
                "customer_level": "regular", "sales_order_id": f"so-{n}", "sku": "sku-1", "category": "phones",
                "quantity": 1, "amount_paid": "199.00", "service_type": "return", "problem_type": "quality",
                "created_at": created, "mode": mode}
        number = f"SO{n:08d}"
        yield make_envelope(type_="service_order.created", key=oid, producer="orders", occurred_at=created,
                            data={**snap, "order_id": oid, "number": number, "version": 1,
                                  "state": "pending_claim", "delivered_at": created - timedelta(days=2)})
        at, state = created, "pending_claim"
        for version, (action, to_state) in enumerate(rng.choice(PATHS), start=2):
            at = min(now, at + timedelta(seconds=rng.uniform(60, 86400)))
            yield make_envelope(type_="service_order.transitioned", key=oid, producer="orders", occurred_at=at,
                                data={"order_id": oid, "number": number, "version": version, "action": action,
                                      "from_state": state, "to_state": to_state, "actor_role": "merchant_main",
                                      "actor_id": "u-1", "occurred_at": at, "order": snap,
                                      "details": {}})
            state = to_state


async def populate(url: str, now: datetime) -> dict:
    from console.adapters import readmodel as store
    from console.adapters.sessions import SessionStore
    from console.app import MIGRATIONS
    from shared.db import create_engine, session_factory
    from shared.migrations import upgrade

    await upgrade(MIGRATIONS, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    started, applied, batch = time.perf_counter(), 0, []

    async def flush() -> None:
        async with sessions() as s, s.begin():
            await store.apply_events(s, [(e, e.data) for e in batch])

    for env in events(now):
        batch.append(env)
        if len(batch) == BATCH:
            await flush()
            applied += len(batch)
            batch.clear()
            if applied % 50_000 < BATCH:
                log(f"  {applied:,} events applied ({applied / (time.perf_counter() - started):,.0f}/s)")
    if batch:
        await flush()
        applied += len(batch)
    seconds = time.perf_counter() - started
    async with sessions() as s:
        orders = sum(n for _st, _m, n in await store.state_counts(s))
        merchants = await store.merchant_count(s)
    cookie, _ = await SessionStore(sessions).create(
        client_id="bench-operator", role="platform_operator", version=None, token="unused",
        token_expires_at=now + timedelta(hours=1), now=datetime.now(timezone.utc),
        expires_at=datetime.now(timezone.utc) + timedelta(hours=8))
    await engine.dispose()
    return {"events": applied, "apply_s": round(seconds, 1), "orders": orders, "merchants": merchants,
            "cookie": cookie}


def percentiles(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(max(ms), 1)}


def measure(url: str, cookie: str, params: dict) -> dict:
    with httpx.Client(base_url=url, cookies={"console_session": cookie}, timeout=30) as c:
        for _ in range(WARMUP):
            assert c.get("/overview", params=params).status_code == 200
        ms = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            r = c.get("/overview", params=params)
            ms.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.status_code
        assert 'data-fig="total"' in r.text
    return percentiles(ms)


def main() -> int:
    from shared.broker import EmbeddedBroker, free_port

    now = datetime.now(timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    pg_db = None
    if DB_KIND == "postgres":
        from benchdb import drop_db, make_db

        pg_db, _dsn, url = asyncio.run(make_db("console"))
    else:
        url = f"sqlite+aiosqlite:///{tmp}/console.db"
    log(f"bench-console: {ORDERS:,} orders of {MERCHANTS:,} merchants into the read model ({DB_KIND})")
    data = asyncio.run(populate(url, now))
    log(f"  {data['events']:,} events in {data['apply_s']} s: {data['orders']:,} orders, {data['merchants']:,} merchants")
    broker = EmbeddedBroker()
    broker.start()
    port = free_port()
    env = dict(os.environ, CONSOLE_DATABASE_URL=url, CONSOLE_PORT=str(port), CONSOLE_KAFKA_BOOTSTRAP=broker.bootstrap,
               CONSOLE_DATA_DIR=str(tmp), CONSOLE_LOG_LEVEL="WARNING", CONSOLE_CLOCK="system")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "console"), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine takes a while to import and start
        while True:
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the console did not start"
            time.sleep(0.3)
        page = measure(base, data["cookie"], {})
        live = measure(base, data["cookie"], {"part": "live"})
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        broker.stop()
        if pg_db:
            asyncio.run(drop_db(pg_db))
    load = os.getloadavg()
    result = {"benchmark": "console", "database": DB_KIND, "orders": data["orders"], "merchants": data["merchants"],
              "events_applied": data["events"], "apply_events_per_s": round(data["events"] / data["apply_s"]),
              "requests": REQUESTS, "overview": page, "overview_live": live, "target_p95_ms": TARGET_P95_MS,
              "meets_target": page["p95_ms"] <= TARGET_P95_MS, "load_avg_1m": round(load[0], 2)}
    log(f"  overview: p50 {page['p50_ms']} ms, p95 {page['p95_ms']} ms; live part: p95 {live['p95_ms']} ms")
    print(json.dumps(result), flush=True)
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
