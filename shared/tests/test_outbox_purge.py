"""The relay deletes sent outbox rows once they are older than ``keep_sent_s`` (wall-clock),
in chunks; rows not sent yet and rows sent more recently stay. SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update

from shared import db, outbox as outbox_module
from shared.clock import ManualClock
from shared.events import Contract, EventRegistry, make_envelope
from shared.messaging_tables import MessagingTables
from shared.outbox import Outbox, OutboxRelay


class N(Contract, kw_only=True):
    n: int


NOW = datetime(2026, 11, 11, 4, 0, tzinfo=timezone.utc)


async def _messaging_db(database_url, name: str):
    """A database with the messaging tables only: (engine, sessions, tables)."""
    metadata = db.new_metadata()
    tables = MessagingTables(metadata)
    engine = db.create_engine(await database_url(name))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine, db.session_factory(engine), tables


def _relay(engine, sessions, tables, **kw) -> OutboxRelay:
    return OutboxRelay(service="t", sessions=sessions, tables=tables, producer=None, clock=ManualClock(NOW),
                       wall_clock=ManualClock(NOW), is_postgres=engine.dialect.name == "postgresql", **kw)


def _registry() -> EventRegistry:
    reg = EventRegistry()
    reg.register("n.happened", topic="t")(N)
    return reg


async def _sent_long_ago(database_url, count: int):
    """An outbox of ``count`` rows sent two hours ago; (engine, relay)."""
    engine, sessions, tables = await _messaging_db(database_url, "purge")
    reg = _registry()
    async with sessions() as s, s.begin():
        for i in range(count):
            await Outbox(tables, reg, ManualClock(NOW)).add(s, make_envelope(
                type_="n.happened", key=f"k{i}", producer="p", occurred_at=NOW, data={"n": i}, reg=reg))
        await s.execute(update(tables.outbox).values(published_at=NOW - timedelta(hours=2)))
    return engine, _relay(engine, sessions, tables)


async def test_a_purge_round_deletes_a_bounded_number_of_chunks(database_url, monkeypatch):
    """A large backlog (a first start after an upgrade) is deleted round by round, between the
    relay's batches, not all before the next one."""
    monkeypatch.setattr(outbox_module, "PURGE_CHUNK", 4)
    monkeypatch.setattr(outbox_module, "PURGE_ROUND_CHUNKS", 2)
    engine, relay = await _sent_long_ago(database_url, 11)
    try:
        assert [await relay.purge() for _ in range(3)] == [8, 3, 0]
    finally:
        await engine.dispose()


async def test_sent_rows_older_than_the_keep_time_are_deleted_in_chunks(database_url, monkeypatch):
    monkeypatch.setattr(outbox_module, "PURGE_CHUNK", 4)  # several chunks out of 11 rows
    engine, sessions, tables = await _messaging_db(database_url, "purge")
    reg = _registry()
    ob = tables.outbox
    try:
        async with sessions() as s, s.begin():
            for i in range(14):
                env = make_envelope(type_="n.happened", key=f"k{i}", producer="p", occurred_at=NOW,
                                    data={"n": i}, reg=reg)
                await Outbox(tables, reg, ManualClock(NOW)).add(s, env)
            ids = (await s.scalars(select(ob.c.id).order_by(ob.c.id))).all()
            # 0-10: sent 2 h ago; 11: sent 59 min ago; 12: sent just now; 13: never sent
            await s.execute(update(ob).where(ob.c.id.in_(ids[:11])).values(published_at=NOW - timedelta(hours=2)))
            await s.execute(update(ob).where(ob.c.id == ids[11]).values(published_at=NOW - timedelta(minutes=59)))
            await s.execute(update(ob).where(ob.c.id == ids[12]).values(published_at=NOW))
        metrics = CollectorRegistry()
        relay = _relay(engine, sessions, tables, keep_sent_s=3600, metrics=metrics)
        assert await relay.purge() == 11
        async with sessions() as s:
            left = (await s.scalars(select(ob.c.id).order_by(ob.c.id))).all()
        assert left == ids[11:]
        assert metrics.get_sample_value("outbox_purged_rows_total") == 11
        assert await relay.purge() == 0  # nothing more to delete; the unsent row is never touched
    finally:
        await engine.dispose()


def test_rows_are_kept_at_least_the_republish_window():
    with pytest.raises(ValueError, match="republish window"):
        OutboxRelay(service="t", sessions=None, tables=None, producer=None, clock=ManualClock(NOW), is_postgres=False,
                    republish_window_s=600, keep_sent_s=300)


async def test_inbox_ids_older_than_the_keep_time_are_deleted_in_bounded_rounds(database_url, monkeypatch):
    """The consumers' processed event ids (every consumer group of the service) are deleted
    once applied longer ago than ``inbox_keep_s``, in chunks, a bounded number a round; the
    recent ones stay, so a redelivered recent event is still recognised."""
    monkeypatch.setattr(outbox_module, "PURGE_CHUNK", 3)
    monkeypatch.setattr(outbox_module, "PURGE_ROUND_CHUNKS", 2)
    engine, sessions, tables = await _messaging_db(database_url, "inbox_purge")
    try:
        pe = tables.processed_events
        week = timedelta(days=7)
        old = [{"consumer": f"svc.{g}", "event_id": f"old-{g}-{i}", "event_type": "n.happened",
                "processed_at": NOW - week - timedelta(minutes=i + 1)} for g in ("a", "b") for i in range(4)]
        recent = [{"consumer": "svc.a", "event_id": f"new-{i}", "event_type": "n.happened",
                   "processed_at": NOW - week + timedelta(minutes=i + 1)} for i in range(3)]
        async with sessions() as s, s.begin():
            await s.execute(pe.insert(), old + recent)
        relay = _relay(engine, sessions, tables, inbox_keep_s=week.total_seconds(), metrics=CollectorRegistry())
        assert [await relay.purge_inbox() for _ in range(3)] == [6, 2, 0]
        async with sessions() as s:
            left = set((await s.execute(select(pe.c.event_id))).scalars())
        assert left == {r["event_id"] for r in recent}
        assert relay.inbox_purged_total._value.get() == 8
    finally:
        await engine.dispose()


def test_inbox_ids_are_kept_at_least_the_republish_window():
    with pytest.raises(ValueError, match="republish window"):
        OutboxRelay(service="t", sessions=None, tables=None, producer=None, clock=ManualClock(NOW),
                    is_postgres=False, republish_window_s=600, inbox_keep_s=599)
