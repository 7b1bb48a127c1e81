"""A fired deadline waits until the notifier has the order's history up to the version its
timer was armed at. Found by the chaos run: the notifier's order consumer lagged (restarts,
a broker restart), the day-5 ship-back reminder armed at the approval (v3) arrived when only
the order's creation had been applied, was checked against that partial history, and its SMS
went out although the customer had shipped (v4) days before."""
from __future__ import annotations

from datetime import timedelta

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
    # the timer saw the approval (v3) and fired after the shipment (v4); the notifier has only v1
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=3, cancelled_by=SHIP_BACK_REMINDER,
                  at=notifier.rt.clock.now() + timedelta(hours=1), reminder=1, day=5)
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


async def test_a_stale_deadline_is_retracted_whatever_the_notifiers_own_clock_says(notifier, new_order):
    """Found by the chaos run: the timer fired an escalation after the claim that cancels it, the
    notifier (whose clock was behind the orders service's after a clock jump) recorded it, and
    the claim arriving later did not retract it: the retraction compared the claim's time with
    the notifier's own recording time. It compares it with the timer's firing time now."""
    from .test_stale_deadlines import FIRST_RESPONSE

    o = new_order(merchant_id="m-skew")
    await o.created()
    await eventually(lambda: _known(notifier, o))
    now = notifier.rt.clock.now()
    await o.fired("escalate", "first_response", order_version=1, cancelled_by=FIRST_RESPONSE,
                  at=now + timedelta(hours=2), level=1, to="supervisor")
    [m] = await notifier.wait_messages(o.order_id, 1, kind="escalation")
    assert m["status"] == "delivered"
    # the claim happened an hour before the timer fired, and after the notifier recorded it
    await o.act("claim", "pending_audit", at=now + timedelta(hours=1))
    await seen(notifier, o, 2)

    async def retracted():
        got = [x for x in await notifier.messages(o.order_id) if x["kind"] == "escalation"]
        return got if got and all(x["status"] == "cancelled" for x in got) else None
    assert await eventually(retracted)
