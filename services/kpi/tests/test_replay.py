"""Incremental vs replayed projection: identical figures on a generated month of
events for 1,000 merchants (every fulfilment mode, catalogues, merchants known only by
their catalogue), whatever the arrival order, with duplicates and late
events — on SQLite and PostgreSQL.

- incremental: envelopes validated by the registry's models and applied through the
  live consumer's path (``kpi.adapters.store.project``) in small transactions, in
  publication order;
- replayed: the documented command ``kpi replay --from-dir DIR --workers 2`` (the
  columnar engine, bulk writes) on the topic exports, and the in-process rebuild on
  the same events shuffled with 10 % delivered twice, with the columnar and with the
  per-event engine (used when an event is outside the canonical form).
"""
from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker

from kpi.app import MIGRATIONS
from kpi.models import Base
from kpi.handlers.replay import apply, rebuild_in_process, snapshot
from kpi.settings import KpiSettings
from kpi.adapters.store import bulk_insert
from kpi.adapters.synthetic import write_files
from shared.db import create_engine
from shared.events import Envelope
from shared.migrations import upgrade

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)  # 2026-11-01 00:00 Beijing
MERCHANTS, ORDERS = 995, 3000  # plus 5 busy merchants (late audits reach the per-10 penalty)
BUSY, BUSY_ORDERS = 5, 500
CATALOGUE_ONLY = 6  # merchants m00995… with a catalogue and paid transactions, no service order


def _read_dir(d: Path) -> list[bytes]:
    out = []
    for p in sorted(d.glob("*.jsonl")):
        out.extend(line for line in p.read_bytes().split(b"\n") if line)
    return out


# paid transactions (ingest API, primary data of the KPI service, kept by a replay)
PAID = [(f"m{i:05d}", date(2026, 11, d), 40 + (i * d) % 60) for i in range(0, MERCHANTS + CATALOGUE_ONLY, 3)
        for d in range(1, 31)]


def _python_path(raw: bytes) -> bool:
    """A routing or catalogue event: the validated Python path in either rebuild engine."""
    return b'"type":"routing.' in raw[:120] or b'"type":"catalogue.' in raw[:120]


async def _engine(url: str, paid: bool = True):
    engine = create_engine(url)
    async with engine.begin() as c:
        await c.run_sync(Base.metadata.create_all)
        if paid:
            now = datetime(2026, 12, 1, tzinfo=timezone.utc)
            await bulk_insert(c, "paid_transactions", ("merchant_id", "day", "count", "updated_at"),
                              [(*p, now) for p in PAID])
    return engine


async def _snap(engine) -> dict:
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        return await snapshot(s, KpiSettings())


async def _incremental(engine, envelopes: list[Envelope], batch: int) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for i in range(0, len(envelopes), batch):
        async with sessions.begin() as s:
            await apply(s, envelopes[i:i + batch])


async def test_incremental_equals_replayed_month_for_1000_merchants(database_url, tmp_path):
    exports, busy = tmp_path / "topics", tmp_path / "busy"
    counts = write_files(exports, MERCHANTS, ORDERS, START, seed=11, partitions=3, catalogue=True,
                         catalogue_extra=CATALOGUE_ONLY)
    counts_busy = write_files(busy, BUSY, BUSY_ORDERS, START, seed=12, partitions=3, merchant_prefix="busy")
    for p in busy.iterdir():  # one export per topic partition, as the broker would hold them
        with open(exports / p.name, "ab") as f:
            f.write(p.read_bytes())
    raws = _read_dir(exports)
    assert len(raws) == sum(counts.values()) + sum(counts_busy.values()) > 8 * (ORDERS + BUSY_ORDERS)
    envelopes = sorted((Envelope.from_bytes(r) for r in raws), key=lambda e: e.occurred_at)  # publication order

    inc = await _engine(await database_url("kpi_inc"))
    await _incremental(inc, envelopes, batch=250)
    incremental = await _snap(inc)

    # the figures are not trivial: every family has data for most of the 1,000 merchants
    assert len({m for w in incremental["rankings"].values() for m, *_ in w}) >= 900
    assert len({m for x in incremental["facts"] for m in x[2:3]}) == MERCHANTS + BUSY == 1000
    assert len(incremental["rankings"]) >= 5  # weeks of November (and the last days of October's week)
    kinds = {x["kind"] for x in incremental["penalties"]}
    assert kinds == {"late_audit", "unprocessed_48h", "advance_compensation"}
    assert {x["item"] for x in incremental["billing"]} >= {"service_order", "consultation_package_1",
                                                           "consultation_package_2"}
    assert incremental["statistics"]["2026-11"]["nps_answers"] > 0 and incremental["service_express"]
    idx = max(incremental["index"].values(), key=lambda x: len(x["merchants"]))
    assert len(idx["merchants"]) >= 900
    assert sum(m["disputes"] for m in idx["merchants"]) > 0 and any(m["dispute_rate"] for m in idx["merchants"])
    assert any(c["platinum_benchmark"]["completion_hours"] for c in idx["categories"])
    assert {p for c in idx["categories"] for p, v in c["by_path"].items() if v["completed"]} == {
        "refund_before_shipment", "refund_without_return", "return_and_refund", "exchange"}
    # the rules of this release have data: peers by catalogue (merchants without orders included,
    # catalogue over orders where they differ), platform-served cases never self-completed,
    # manufacturer-mode members scored without consultations
    by_m = {m["merchant_id"]: m for m in idx["merchants"]}
    from kpi.adapters.synthetic import CATEGORIES
    assert all(by_m[f"m{i:05d}"]["category"] == CATEGORIES[(i + (i % 4 == 3)) % 8]
               for i in range(996, MERCHANTS + CATALOGUE_ONLY, 3))  # those with paid transactions
    moved = [by_m[f"m{i:05d}"]["category"] for i in range(3, 200, 4) if f"m{i:05d}" in by_m]
    assert len(moved) >= 40 and moved == [CATEGORIES[(i + 1) % 8] for i in range(3, 200, 4) if f"m{i:05d}" in by_m]
    assert "unknown" not in {c["category"] for c in idx["categories"]}
    assert {by_m[f"m{i:05d}"]["self_completion_rate"] for i in range(2, MERCHANTS, 5)
            if by_m.get(f"m{i:05d}", {}).get("completed")} == {"0.0000"}  # platform mode
    assert len(incremental["catalogue"]) == 4 * (MERCHANTS + CATALOGUE_ONLY)
    members = {m for w in incremental["service_express"].values() for m, v in w.items() if v["after_sales"] != "None"}
    assert {f"m{i:05d}" for i in range(0, MERCHANTS, 5)} <= members  # full_manufacturer

    # 1. the documented command, from the topic exports, with two worker processes
    url = await database_url("kpi_cmd")
    await upgrade(MIGRATIONS, url)  # `kpi migrate`; the ingest API then posts the paid transactions
    cmd = create_engine(url)
    async with cmd.begin() as c:
        now = datetime(2026, 12, 1, tzinfo=timezone.utc)
        await bulk_insert(c, "paid_transactions", ("merchant_id", "day", "count", "updated_at"),
                          [(*p, now) for p in PAID])
    env = {**os.environ, "KPI_DATABASE_URL": url, "KPI_LOG_JSON": "false"}
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kpi", "replay", "--from-dir", str(exports),
                                                    "--workers", "2"], env=env, capture_output=True, text=True,
                                   timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    orders = {e.data.order_id for e in envelopes if hasattr(e.data, "order_id")}
    assert f"({len(orders)} orders, 0 rejected)" in proc.stdout
    assert await _snap(cmd) == incremental
    await cmd.dispose()

    # 2. any arrival order, 10 % delivered twice (late and duplicate events), in process
    rnd = random.Random(3)
    shuffled = raws + rnd.sample(raws, len(raws) // 10)
    rnd.shuffle(shuffled)
    rep = await _engine(await database_url("kpi_rep"))
    async with rep.begin() as conn:
        stats = await rebuild_in_process(conn, shuffled)
    routing = sum(1 for r in shuffled if _python_path(r))
    # every order and SLA event was folded by DuckDB (routing and catalogue events took the validated path)
    assert (stats["invalid"], stats["fast"], stats["slow"]) == (0, len(shuffled) - routing, routing)
    assert stats["engine"] == "columnar"
    assert await _snap(rep) == incremental
    async with rep.begin() as conn:
        stats = await rebuild_in_process(conn, shuffled, engine="python")
    assert (stats["engine"], stats["invalid"], stats["fast"], stats["slow"]) == (
        "python", 0, 0, len(shuffled))  # every event through the codec, one by one
    assert await _snap(rep) == incremental
    await rep.dispose()

    # 3. the live path applying late duplicates again changes nothing
    await _incremental(inc, rnd.sample(envelopes, len(envelopes) // 20), batch=500)
    assert await _snap(inc) == incremental
    await inc.dispose()


async def test_replay_from_the_broker_reads_every_partition_from_offset_0(database_url, broker):
    """``kpi replay`` without --from-dir: the topics on the broker, from offset 0."""
    from aiokafka import AIOKafkaProducer

    from kpi.handlers.replay import kafka_sources, rebuild
    from kpi.adapters.synthetic import Generator
    from shared.kafka import TopicSpec, ensure_topics

    events = list(Generator(40, 400, START, seed=13, catalogue=True, catalogue_extra=2).events())
    await ensure_topics(broker.bootstrap, [TopicSpec(t) for t in ("orders.events", "sla.events", "routing.events",
                                                                  "catalogue.events")], default_partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for topic, key, raw in events:
            await producer.send(topic, raw, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    url = await database_url("kpi_broker")
    await upgrade(MIGRATIONS, url)
    sources = await kafka_sources(broker.bootstrap)
    assert len(sources) == 16
    result = await asyncio.to_thread(rebuild, url, sources, 2, lambda *_: None)
    assert (result["events"], result["orders"], result["invalid"]) == (len(events), 400, 0)
    from_broker = create_engine(url)
    expected = await _engine(await database_url("kpi_expected"), paid=False)
    async with expected.begin() as conn:
        await rebuild_in_process(conn, [raw for _t, _k, raw in events])
    assert await _snap(from_broker) == await _snap(expected)
    await from_broker.dispose()
    await expected.dispose()
