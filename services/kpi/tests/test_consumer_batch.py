"""The live consumer (the shared consumer with KPI's batch form: one array-bound statement
per table on PostgreSQL, the shared inbox telling new events from duplicates) gives exactly
what applying the events one transaction at a time gives; bad records are parked and the
events after them applied, in batch and in single mode; a failing batch is applied one by
one — on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from collections import namedtuple
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from kpi.app import DEFINITION
from kpi.entrypoints.consumers import facts_consumer
from kpi.models import Base
from kpi.handlers.replay import apply, snapshot
from kpi.settings import KpiSettings
from kpi.adapters.synthetic import Generator
from shared.db import create_engine
from shared.consumer import EventConsumer
from shared.events import Envelope
from shared.runtime import Runtime

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
Record = namedtuple("Record", "topic partition offset timestamp value key headers")


def _created(oid: str, merchant: str) -> bytes:
    from shared.events import make_envelope

    at = datetime(2026, 11, 10, 3, tzinfo=timezone.utc)
    return make_envelope(type_="service_order.created", key=oid, producer="orders", occurred_at=at, data={
        "order_id": oid, "number": "N", "version": 1, "state": "pending_audit", "merchant_id": merchant,
        "customer_id": "c", "customer_phone": "138", "customer_level": "regular", "sales_order_id": "so",
        "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": "10.50", "service_type": "return",
        "problem_type": "quality", "delivered_at": at, "created_at": at}).to_bytes()


def _records(raws, topic="orders.events"):
    return [Record(topic, 0, i, 0, raw, None, ()) for i, raw in enumerate(raws)]


async def _consumer(url: str) -> tuple[EventConsumer, Runtime]:
    rt = Runtime(DEFINITION, KpiSettings(database_url=url))
    async with rt.engine.begin() as c:
        await c.run_sync(Base.metadata.create_all)
    return facts_consumer(rt), rt


async def _snap(engine) -> dict:
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        return await snapshot(s, KpiSettings())


async def _count(rt, table, **where) -> int:
    t = rt.tables.processed_events if table == "processed_events" else rt.tables.dead_letters
    async with rt.sessions() as s:
        return await s.scalar(select(func.count()).select_from(t).where(
            *[t.c[k] == v for k, v in where.items()]))


async def test_batches_equal_the_validated_path_duplicates_skipped_bad_records_parked(database_url):
    gen = Generator(60, 600, START, seed=21, catalogue=True, catalogue_extra=2)  # catalogue events too
    raws = [raw for _t, _k, raw in gen.events()]
    envelopes = sorted((Envelope.from_bytes(r) for r in raws), key=lambda e: e.occurred_at)
    ordered = [e.to_bytes() for e in envelopes]
    # the same events in another layout (the validated path), a few of them twice
    other_layout = [json.dumps(json.loads(r), indent=1).encode() for r in ordered[::7]]
    naive = json.loads(next(r for r in ordered if b'"service_order.transitioned"' in r[:100]))
    naive["id"] = "00000000-0000-4000-8000-000000000001"
    naive["data"]["occurred_at"] = naive["data"]["occurred_at"][:19]  # no zone: parked
    bad = [b"{not json", json.dumps(naive).encode()]
    # merchant ids with quotes and non-ASCII characters (validated path, written as JSON on PostgreSQL)
    odd = [_created(f"00000000-0000-4000-8000-00000000010{i}", m) for i, m in enumerate(('m-"q"', "商家-1"))]
    envelopes += [Envelope.from_bytes(r) for r in odd]
    ordered += odd
    stream = ordered[:400] + bad + other_layout + ordered[400:] + ordered[:150]  # and late duplicates

    consumer, rt = await _consumer(await database_url("kpi_batch"))
    for i in range(0, len(stream), 173):
        await consumer.handle_batch(_records(stream[i:i + 173]))
    assert await _count(rt, "processed_events") == len(ordered)
    assert await _count(rt, "dead_letters") == 2
    assert consumer.duplicates_total._value.get() == len(stream) - len(ordered) - 2

    ref = create_engine(await database_url("kpi_ref"))
    async with ref.begin() as c:
        await c.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(ref, expire_on_commit=False).begin() as s:
        await apply(s, envelopes)  # validated, one transaction
    assert await _snap(rt.engine) == await _snap(ref)
    await ref.dispose()
    await rt.engine.dispose()


async def test_a_failing_batch_is_applied_one_by_one(database_url, monkeypatch):
    raws = [raw for _t, _k, raw in Generator(5, 20, START, seed=22, catalogue=True).events()
            if b'"type":"service_order.' in raw[:100] or b'"type":"catalogue.' in raw[:100]]
    catalogue = sum(1 for r in raws if b'"type":"catalogue.' in r[:100])
    assert catalogue == 5 * 5  # 4 SKUs per merchant, one re-filed
    consumer, rt = await _consumer(await database_url("kpi_batch_fail"))
    consumer.config.max_attempts, consumer.config.retry_base_s = 2, 0.01
    import kpi.entrypoints.consumers as C

    real, calls = C.project_folds, []

    async def fails_once(session, order_events, facts):
        calls.append(len(order_events))
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return await real(session, order_events, facts)

    monkeypatch.setattr(C, "project_folds", fails_once)
    await consumer.handle_batch(_records(raws))
    # the batch rolled back (no inbox row of it survived), then each event went through
    # the validated one-event path and was recorded
    assert calls[0] == len(raws) - catalogue  # the order events (catalogue entries apart)
    assert await _count(rt, "processed_events") == len(raws)
    assert await _count(rt, "dead_letters") == 0

    ref = create_engine(await database_url("kpi_batch_ref"))
    async with ref.begin() as c:
        await c.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(ref, expire_on_commit=False).begin() as s:
        await apply(s, [Envelope.from_bytes(r) for r in raws])
    snap, want = await _snap(rt.engine), await _snap(ref)
    assert snap["facts"] == want["facts"] and snap["counters"] == want["counters"]
    assert snap["catalogue"] == want["catalogue"] and len(snap["catalogue"]) == 4 * 5
    await ref.dispose()
    await rt.engine.dispose()


async def test_an_out_of_range_time_is_parked_and_the_partition_moves_on(database_url):
    """A routing decision at 9999-12-31T23:59:59-12:00 (beyond the last UTC date) once made
    the consumer reconnect forever (OverflowError outside the parking path). Now it is
    parked with its reason and the events after it are applied: in a batch (with an
    undecodable record beside it) and alone (single mode), nothing retried forever."""
    from shared.events import make_envelope

    at = datetime(2026, 11, 10, 3, tzinfo=timezone.utc)

    def decided(n: int, decided_at: str | None = None) -> bytes:
        raw = make_envelope(type_="routing.decided", key="mfr-1", producer="consultation-routing", occurred_at=at,
                            event_id=f"00000000-0000-4000-8000-0000000000{n:02d}", data={
                                "decision_id": f"d-{n}", "decided_at": at, "channel": "im",
                                "entry_point": "product_page", "phase": "pre_sale", "target": "manufacturer",
                                "reason": "enrolled", "sku": "s-1", "manufacturer_id": "mfr-1"}).to_bytes()
        if decided_at is None:
            return raw
        body = json.loads(raw)
        body["data"]["decided_at"] = decided_at
        return json.dumps(body).encode()

    poison = decided(99, "9999-12-31T23:59:59-12:00")
    order = _created("00000000-0000-4000-8000-000000000200", "m-1")

    consumer, rt = await _consumer(await database_url("kpi_poison"))
    consumer.config.retry_base_s = 0.001
    # batch mode: the poison between good events, an undecodable record too
    await consumer.handle_records(_records([decided(1), poison, b"\xff not json", decided(2)],
                                           topic="routing.events"))
    await consumer.handle_records(_records([order]))
    async with rt.sessions() as s:
        reasons = sorted((await s.scalars(select(rt.tables.dead_letters.c.error))).all())
    assert len(reasons) == 2
    assert reasons[0].startswith("handler refused: routing.decided") and "out of range" in reasons[0]
    assert reasons[1].startswith("malformed envelope")
    assert await _count(rt, "processed_events") == 3  # d-1, d-2 and the order
    async with rt.sessions() as s:
        facts = (await s.execute(select(func.count()).select_from(Base.metadata.tables["consultation_facts"]))).scalar()
    assert facts == 2
    # single mode: parked at once (a refusal is not retried), the next event applied
    await consumer.handle_records(_records([poison], topic="routing.events"))
    await consumer.handle_records(_records([decided(3)], topic="routing.events"))
    assert await _count(rt, "dead_letters") == 3
    assert await _count(rt, "processed_events") == 4
    await rt.engine.dispose()
