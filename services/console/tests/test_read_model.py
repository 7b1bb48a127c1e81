"""The read model the overview answers from: counters kept exact by the consumer's batches
(one order's events in order, redeliveries and stale events without effect), on SQLite
and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from console.adapters import readmodel as store
from console.app import MIGRATIONS
from console.domain.readmodel import hour_of
from shared.db import create_engine, session_factory
from shared.migrations import schema_drift, upgrade

from .conftest import Order, decided, transferred

T0 = datetime(2026, 11, 11, 1, 30, tzinfo=timezone.utc)  # 09:30 Beijing
H = timedelta(hours=1)


@pytest.fixture
async def db(database_url):
    url = await database_url("console")
    await upgrade(MIGRATIONS, url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


async def apply(db, *envelopes) -> None:
    async with db() as s, s.begin():
        await store.apply_events(s, [(e, e.data) for e in envelopes])


async def test_models_match_migrations(database_url):
    from console.models import Base

    assert await schema_drift(MIGRATIONS, await database_url("console"), Base.metadata) == []


async def test_counters_follow_the_orders(db):
    a, b, c = Order("m-1"), Order("m-1", mode="platform"), Order("m-2")
    await apply(db, a.created(T0), b.created(T0 + 10 * 60 * timedelta(seconds=1)), c.created(T0 + H))
    # one batch: a claimed and approved; b rejected (closed); c abandoned then (stale) replayed
    claim = a.act("claim", "pending_audit", T0 + 2 * H)
    await apply(db, claim, a.act("audit.approve_return", "awaiting_return_shipment", T0 + 2 * H),
                b.act("claim", "pending_audit", T0 + 2 * H), b.act("audit.reject", "rejected", T0 + 3 * H))
    await apply(db, c.act("abandon", "abandoned", T0 + 3 * H), claim)  # the claim again: no effect
    async with db() as s:
        counts = {(st, m): n for st, m, n in await store.state_counts(s)}
        hourly = await store.hourly_orders(s, hour_of(T0))
        oldest = await store.oldest_open(s, 10)
        tops = await store.top_backlogs(s, 10)
        assert await store.merchant_count(s) == 2
        assert await store.merchant_backlog(s, "m-2") == {"merchant_id": "m-2", "open": 0, "total": 1}
    assert counts == {("awaiting_return_shipment", "pop_self_service"): 1, ("rejected", "platform"): 1,
                      ("abandoned", "pop_self_service"): 1}
    assert hourly[hour_of(T0)] == (2, 0) and hourly[hour_of(T0 + H)] == (1, 0)
    assert hourly[hour_of(T0 + 3 * H)] == (0, 2)
    assert [o["order_id"] for o in oldest] == [a.order_id]
    assert oldest[0]["entered_state_at"] == T0 + 2 * H and oldest[0]["version"] == 3
    assert tops == [{"merchant_id": "m-1", "open": 1, "total": 2}]


async def test_a_transition_first_seen_creates_the_order(db):
    # the console started reading after the order was created (its created event expired)
    o = Order("m-9")
    o.created(T0)  # not applied
    await apply(db, o.act("claim", "pending_audit", T0 + H), o.act("audit.reject", "rejected", T0 + H))
    async with db() as s:
        assert {(st, n) for st, _m, n in await store.state_counts(s)} == {("rejected", 1)}
        hourly = await store.hourly_orders(s, hour_of(T0))
    assert hourly[hour_of(T0)] == (1, 0) and hourly[hour_of(T0 + H)] == (0, 1)


async def test_open_breaches_are_those_whose_order_did_not_move(db):
    a, b = Order("m-1"), Order("m-1")
    await apply(db, a.created(T0), b.created(T0))
    late = T0 + 12 * H
    await apply(db, a.fired("audit_deadline", "breach", late, late + timedelta(seconds=2), indicator="F2"),
                b.fired("audit_deadline", "breach", late, late + timedelta(seconds=40), indicator="F2"),
                b.fired("first_response", "escalate", T0 + H / 2, T0 + H / 2, level=1, to="supervisor"))
    await apply(db, b.act("claim", "pending_audit", late + H))  # b moved on: its breach is no longer open
    async with db() as s:
        n, breaches = await store.open_fired(s, "breach", 10)
        m, escalations = await store.open_fired(s, "escalate", 10)
        fired = await store.fired_since(s, T0)
    assert n == 1 and [f["order_id"] for f in breaches] == [a.order_id] and breaches[0]["indicator"] == "F2"
    assert m == 0 and escalations == []
    assert sorted(f["lateness_s"] for f in fired) == [0.0, 2.0, 40.0]


async def test_routing_counters(db):
    await apply(db, decided(T0, "manufacturer", "enrolled"), decided(T0, "manufacturer", "enrolled"),
                decided(T0 + H, "platform", "out_of_hours", channel="im"),
                decided(T0 + H, "platform", "unknown_sku", manufacturer_id=None), transferred(T0 + H))
    async with db() as s:
        rows = await store.routing_since(s, hour_of(T0))
        transfers = await store.transfers_since(s, hour_of(T0))
    got = {(r["hour"], r["target"], r["reason"], r["channel"], r["manufacturer_id"]): r["n"] for r in rows}
    assert got == {(hour_of(T0), "manufacturer", "enrolled", "phone", "mfr-1"): 2,
                   (hour_of(T0 + H), "platform", "out_of_hours", "im", "mfr-1"): 1,
                   (hour_of(T0 + H), "platform", "unknown_sku", "phone", ""): 1}
    assert transfers == {"mfr-1": 1}
