"""``sla.deadlines_armed``: every order event that arms timers announces their rules and due
times — the deadlines the order actually faces, overrides and the working-day calendar applied
(the orders service shows them as the expected completion). A consumed batch writes one outbox
row for all its announcements."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from shared.contracts.sla import DeadlinesArmed
from shared.events import decode, make_envelope
from shared.outbox import BUNDLE, row_messages
from shared.testing import eventually
from sla_timer.handlers.orders import order_handlers

pytestmark = pytest.mark.broker

D = timedelta(days=1)


def _parsed(e: dict) -> DeadlinesArmed:
    """Through the envelope and the registered contract, as a consumer reads it."""
    return decode(json.dumps(e)).data


async def announced(sla_feed, order_id: str, version: int) -> DeadlinesArmed:
    async def check():
        await sla_feed.poll()
        hits = [e for e in sla_feed.armed if e["key"] == order_id and e["data"]["order_version"] == version]
        return hits[0] if hits else None

    return _parsed(await eventually(check))


async def test_each_arming_order_event_announces_its_deadlines_with_overrides(sla, sla_feed, new_order):
    r = await sla.client.put("/v1/rules/ship_back_timeout/overrides/merchant/m-20", json={"after_seconds": 20 * 86400})
    assert r.status_code == 200, r.text
    o = new_order(merchant_id="m-20")
    await o.created()
    created = await announced(sla_feed, o.order_id, 1)
    dues = {d.rule: d.due_at for d in created.deadlines}
    assert created.order_state == "pending_claim"
    assert dues["audit_deadline"] == o.created_at + timedelta(hours=12)
    assert dues["advance_compensation"] == o.created_at + 7 * D
    await o.act("claim", "pending_audit")
    sla.runtime.clock.advance(timedelta(hours=2))
    await o.act("audit.approve_return", "awaiting_return_shipment")
    approved_at = o.sent[-1].occurred_at  # a due time runs from the order event's time
    approved = await announced(sla_feed, o.order_id, 3)
    dues = {d.rule: d.due_at for d in approved.deadlines}
    assert approved.order_state == "awaiting_return_shipment"
    assert dues["ship_back_timeout"] == approved_at + 20 * D  # the merchant's override
    assert dues["ship_back_reminder_1"] == approved_at + 5 * D
    # the timers listed are the ones stored
    timers = {t["id"]: t for t in (await sla.client.get(f"/v1/service-orders/{o.order_id}/timers")).json()["items"]}
    for d in approved.deadlines:
        assert datetime.fromisoformat(timers[d.timer_id]["due_at"]) == d.due_at and timers[d.timer_id]["rule"] == d.rule
    # the claim armed nothing: no announcement for version 2
    assert not [e for e in sla_feed.armed if e["key"] == o.order_id and e["data"]["order_version"] == 2]


async def test_working_day_deadlines_are_announced_in_utc(sla, sla_feed, new_order):
    o = new_order()
    await o.created()
    await o.act("process.repair", "provisionally_completed")
    await announced(sla_feed, o.order_id, 2)
    raw = next(e for e in sla_feed.armed if e["key"] == o.order_id and e["data"]["order_version"] == 2)
    repair = next(d for d in raw["data"]["deadlines"] if d["rule"] == "repair")
    assert repair["due_at"].endswith("Z") and raw["occurred_at"].endswith("Z")  # UTC, as the codec writes it


async def test_a_consumed_batch_writes_one_outbox_row_of_announcements(sla):
    rt = sla.runtime
    handler = order_handlers(rt)["service_order.created"]
    now = rt.clock.now()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    items = []
    for oid in ids:
        data = {"order_id": oid, "number": "SO1", "version": 1, "state": "pending_claim", "merchant_id": "m-1",
                "customer_id": "c-1", "customer_phone": "13800138000", "customer_level": "regular",
                "sales_order_id": "so-1", "sku": "sku-1", "category": "phones", "quantity": 1, "amount_paid": "1.00",
                "service_type": "return", "problem_type": "other", "delivered_at": now, "created_at": now}
        env = make_envelope(type_="service_order.created", key=oid, producer="orders", occurred_at=now, data=data)
        items.append((env, env.data))
    ob = rt.tables.outbox
    async with rt.sessions() as s, s.begin():
        before = await s.scalar(select(ob.c.id).order_by(ob.c.id.desc()).limit(1)) or 0
        await handler.many(s, items)
    async with rt.sessions() as s:
        rows = (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload).where(ob.c.id > before))).all()
    assert [r.event_type for r in rows] == [BUNDLE]
    events = [decode(p) for _k, p in row_messages(*rows[0])]
    assert [e.key for e in events] == ids
    assert {e.type for e in events} == {"sla.deadlines_armed"}
    assert all(isinstance(e.data, DeadlinesArmed) and e.data.order_version == 1 for e in events)
