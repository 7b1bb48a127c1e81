"""A fired deadline waits until the notifier has the order's history up to the version its
timer was armed at. Found by the chaos run: the notifier's order consumer lagged (restarts,
a broker restart), the day-5 ship-back reminder armed at the approval (v3) arrived when only
the order's creation had been applied, was checked against that partial history, and its SMS
went out although the customer had shipped (v4) days before."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from notifier.models import DeferredDeadline, OrderContact
from shared.testing import eventually

from .test_stale_deadlines import ADDRESS, SHIP_BACK_REMINDER, seen

pytestmark = pytest.mark.broker


async def _deferred(api, order) -> list[str]:
    async with api.rt.sessions() as s:
        return list((await s.scalars(select(DeferredDeadline.event_id)
                                     .where(DeferredDeadline.order_id == order.order_id))).all())


async def _known(api, order) -> bool:
    async with api.rt.sessions() as s:
        return await s.get(OrderContact, order.order_id) is not None


async def test_a_deadline_armed_at_a_version_not_seen_yet_waits_and_goes_stale(notifier, new_order):
    o = new_order()
    await o.created()
    await eventually(lambda: _known(notifier, o))
    # the timer saw the approval (v3); the notifier has only v1
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=3, cancelled_by=SHIP_BACK_REMINDER,
                  reminder=1, day=5)
    assert await eventually(lambda: _deferred(notifier, o))
    assert [m for m in await notifier.messages(o.order_id) if m["kind"] == "ship_back_reminder"] == []
    # the sweep does not release it either: the order is known, but not at v3
    from notifier.entrypoints.consumers import release_orphaned_deferred
    assert await release_orphaned_deferred(notifier.rt) == 0
    await o.act("claim", "pending_audit")
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await o.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF1")
    await seen(notifier, o, 4)
    async def released():
        return await _deferred(notifier, o) == []
    await eventually(released)
    msgs = [m for m in await notifier.messages(o.order_id) if m["kind"] == "ship_back_reminder"]
    assert all(m["status"] == "cancelled" for m in msgs), msgs  # released at v3, retracted by v4
    assert not any(m["status"] in ("sent", "queued", "delivered") for m in msgs)


async def test_a_deferred_deadline_notifies_once_its_version_arrives(notifier, new_order):
    o = new_order(merchant_id="m-wait")
    await o.created()
    await eventually(lambda: _known(notifier, o))
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=3, cancelled_by=SHIP_BACK_REMINDER,
                  reminder=1, day=5)
    assert await eventually(lambda: _deferred(notifier, o))
    await o.act("claim", "pending_audit")
    await seen(notifier, o, 2)
    assert await _deferred(notifier, o)  # v2 is not the version it was armed at
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    msgs = await notifier.wait_messages(o.order_id, 1, kind="ship_back_reminder")
    assert msgs and all(m["status"] != "cancelled" for m in msgs)
    assert await _deferred(notifier, o) == []
