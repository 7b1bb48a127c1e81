"""A stale deadline sends nothing: a fired reminder or escalation whose rule a later
transition (version above the one the timer was armed for) had cancelled records no message;
one still queued when that transition arrives is cancelled at dispatch, not sent."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from notifier.models import SeenTransition
from notifier.parts import notifier_parts
from shared.testing import eventually

pytestmark = pytest.mark.broker

ADDRESS = "上海市浦东新区张江路100号 售后仓"
# The sla-timer's rule table (cancelled_by of each rule), as its events carry them.
_ENDS = ["action:abandon", "action:audit.abandon", "state:abandoned", "state:closed", "state:refunded_by_system",
         "state:rejected"]
SHIP_BACK_REMINDER = sorted(["action:fill_shipment", *_ENDS])
MERCHANT_REMINDER = sorted(["action:process.refund", "action:process.exchange", "action:process.return_original",
                            "action:process.offline_exchange", "action:process.repair", "action:arbitration.decide",
                            "action:arbitration.request", *_ENDS])
FIRST_RESPONSE = sorted(["action:claim", "action:assign", "action:audit.resend_without_return",
                         "action:audit.approve_return", "action:audit.request_feedback", "action:audit.reject",
                         *_ENDS])


async def seen(api, order, version: int) -> None:
    """The notifier consumed the order's transition ``version`` (the two topics have their own consumers)."""
    async def check():
        async with api.rt.sessions() as s:
            return await s.get(SeenTransition, (order.order_id, version))
    await eventually(check)


async def stale_count(api, stage: str) -> float:
    r = await api.client.get("/metrics", headers=api.operator)
    assert r.status_code == 200
    m = re.search(rf'^notifier_stale_deadlines_total{{stage="{stage}"}} ([0-9.]+)$', r.text, re.M)
    return float(m.group(1)) if m else 0.0


async def test_a_deadline_cancelled_by_a_transition_already_seen_records_no_message(notifier, new_order):
    # the customer shipped (v4) before the day-5 reminder armed at the approval (v3) fired
    shipped = new_order()
    await shipped.created()
    await shipped.act("claim", "pending_audit")
    await shipped.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = shipped.version
    await shipped.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF1")
    # the merchant refunded (v6) before the day-10 merchant reminder armed at the shipment (v4) fired
    decided = new_order(merchant_id="m-2")
    await decided.created()
    await decided.act("claim", "pending_audit")
    await decided.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await decided.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF2")
    merchant_armed = decided.version
    await decided.act("register_receipt", "pending_process")
    await decided.act("process.refund", "provisionally_completed")
    # an operator claimed (v2) before the 30-minute escalation armed at creation (v1) fired
    claimed = new_order()
    await claimed.created()
    await claimed.act("claim", "pending_audit")
    for o in (shipped, decided, claimed):
        await seen(notifier, o, o.version)

    await shipped.fired("remind_customer", "ship_back_reminder_1", order_version=armed,
                        cancelled_by=SHIP_BACK_REMINDER, day=5)
    await decided.fired("remind_merchant", "merchant_reminder", order_version=merchant_armed,
                        cancelled_by=MERCHANT_REMINDER, day=10)
    await claimed.fired("escalate", "first_response", order_version=1, cancelled_by=FIRST_RESPONSE,
                        level="supervisor", to="13900139000")
    # a fresh deadline behind each on the same partition: once it is there, the stale one was consumed
    for o in (shipped, decided, claimed):
        await o.fired("escalate", "repair", order_version=o.version, cancelled_by=["action:repair.shipped_back"],
                      level="supervisor", to="supervisor")
        await notifier.wait_messages(o.order_id, 1, kind="escalation")
    for o in (shipped, decided, claimed):
        kinds = [(m["kind"], m["channel"], m["audience_id"]) for m in await notifier.messages(o.order_id)
                 if m["kind"] in ("ship_back_reminder", "merchant_reminder", "escalation")]
        assert kinds == [("escalation", "inbox", "supervisor")], kinds  # the fresh one only
    assert await stale_count(notifier, "event") == 3


async def test_a_fresh_deadline_is_sent_once(notifier, new_order):
    """Later transitions that do not cancel the rule leave it standing; a redelivered event
    sends nothing more; a cancelling transition consumed after the SMS went out changes
    nothing (the remaining window: the notifier cannot take back a sent SMS)."""
    o = new_order()
    await o.created()
    await o.act("claim", "pending_audit")
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = o.version
    await o.act("remind_to_ship")  # a later transition, but not one that cancels the reminder
    await notifier.wait_messages(o.order_id, 1, kind="remind_to_ship", channel="sms")
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=armed, cancelled_by=SHIP_BACK_REMINDER,
                  day=5)
    await o.resend_last()
    [sms] = await notifier.wait_messages(o.order_id, 1, kind="ship_back_reminder", channel="sms", status="sent")
    assert "5天" in sms["body"]
    await o.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF3")
    await o.act("confirm", "completed")  # behind the shipment on the partition
    await notifier.wait_messages(o.order_id, 1, kind="completed", channel="sms", status="sent")
    reminders = [m for m in await notifier.messages(o.order_id) if m["kind"] == "ship_back_reminder"]
    assert [(m["channel"], m["status"]) for m in reminders] == [("sms", "sent"), ("inbox", "delivered")]
    assert await stale_count(notifier, "event") == 0 and await stale_count(notifier, "dispatch") == 0


async def test_a_deadline_without_cancelling_facts_is_sent(notifier, new_order):
    """Events from before ``cancelled_by`` existed carry none: nothing to check, sent as before."""
    o = new_order()
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = o.version
    await o.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF4")
    await seen(notifier, o, o.version)
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=armed, day=5)
    await notifier.wait_messages(o.order_id, 1, kind="ship_back_reminder", channel="sms", status="sent")


async def test_a_queued_sms_whose_deadline_became_stale_is_cancelled_at_dispatch(notifier_factory, feed_for):
    """The fired deadline is consumed first (SMS queued), then the cancelling transition:
    the dispatcher's last check cancels the SMS instead of sending it. (The in-site copy was
    delivered when recorded and stays.)"""
    api = await notifier_factory(dispatch_interval_s=3600)  # the dispatcher is stepped by hand below
    o = feed_for(api)
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = o.version
    await seen(api, o, armed)  # the projection knows the order (number, address)
    await o.fired("remind_customer", "ship_back_reminder_2", order_version=armed, cancelled_by=SHIP_BACK_REMINDER,
                  day=10)
    await api.wait_messages(o.order_id, 1, kind="ship_back_reminder", channel="sms", status="queued")
    await o.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF5")
    await seen(api, o, o.version)
    await notifier_parts(api.rt).dispatcher.step()
    [sms] = [m for m in await api.messages(o.order_id) if m["kind"] == "ship_back_reminder" and m["channel"] == "sms"]
    assert sms["status"] == "cancelled" and sms["sent_at"] is None and sms["provider_message_id"] is None
    assert sms["last_error"] == f"stale deadline: action:fill_shipment at order version {o.version} (armed at {armed})"
    assert await stale_count(api, "dispatch") == 1
    inbox = [m for m in await api.messages(o.order_id) if m["kind"] == "ship_back_reminder" and m["channel"] == "inbox"]
    assert [m["status"] for m in inbox] == ["delivered"]
    # the approval's SMS (an order event, no deadline) went out in the same step
    assert [m["status"] for m in await api.messages(o.order_id) if m["kind"] == "return_approved"
            and m["channel"] == "sms"] == ["sent"]
    # a queued SMS of a deadline that still holds is sent; the cancelled one is never picked up again
    other = feed_for(api)
    await other.created()
    await other.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await seen(api, other, other.version)
    await other.fired("remind_customer", "ship_back_reminder_2", cancelled_by=SHIP_BACK_REMINDER, day=10)
    await api.wait_messages(other.order_id, 1, kind="ship_back_reminder", channel="sms", status="queued")
    await notifier_parts(api.rt).dispatcher.step()
    await api.wait_messages(other.order_id, 1, kind="ship_back_reminder", channel="sms", status="sent")
    r = await api.client.get("/v1/messages", params={"order_id": o.order_id, "status": "cancelled"},
                             headers=api.operator)
    assert [m["id"] for m in r.json()["items"]] == [sms["id"]]
    assert await stale_count(api, "dispatch") == 1


async def test_a_deadline_notified_after_its_cancelling_transition_happened_is_retracted(notifier_factory,
                                                                                             feed_for):
    """The chaos run: the customer shipped (the transition happened), but the notifier saw the
    timer's reminder first and delivered it. When the shipment arrives, the reminder is
    retracted: the in-site copy leaves the inbox and the queued SMS is never sent."""
    from datetime import timedelta

    api = await notifier_factory(dispatch_interval_s=3600)  # the dispatcher is stepped by hand below
    o = feed_for(api)
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = o.version
    await seen(api, o, armed)
    shipped_at = api.rt.clock.now() - timedelta(hours=1)  # before the reminder was recorded
    await o.fired("remind_customer", "ship_back_reminder_2", order_version=armed, cancelled_by=SHIP_BACK_REMINDER,
                  day=10)
    await api.wait_messages(o.order_id, 1, kind="ship_back_reminder", channel="sms", status="queued")
    await o.act("fill_shipment", "awaiting_receipt", at=shipped_at, carrier="顺丰", tracking_number="SF6")
    await seen(api, o, o.version)
    await notifier_parts(api.rt).dispatcher.step()
    reminders = [m for m in await api.messages(o.order_id) if m["kind"] == "ship_back_reminder"]
    assert sorted((m["channel"], m["status"]) for m in reminders) == [("inbox", "cancelled"), ("sms", "cancelled")]
    assert all(m["last_error"] == f"stale: action:fill_shipment at order version {o.version}" for m in reminders)
    assert await stale_count(api, "retracted") == 2


async def test_transitions_seen_are_kept_once_per_version(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("claim", "pending_audit")
    await o.resend_last()
    await o.act("audit.reject", "rejected", opinion="x")
    await notifier.wait_messages(o.order_id, 1, kind="audit_rejected", channel="sms")
    async with notifier.rt.sessions() as s:
        rows = (await s.execute(select(SeenTransition.version, SeenTransition.action, SeenTransition.from_state,
                                       SeenTransition.to_state).where(SeenTransition.order_id == o.order_id)
                                .order_by(SeenTransition.version))).all()
    assert [tuple(r) for r in rows] == [(2, "claim", "pending_claim", "pending_audit"),
                                       (3, "audit.reject", "pending_audit", "rejected")]


async def test_a_deadline_fired_before_the_order_is_known_waits_for_it(notifier, new_order):
    """The chaos run: the escalation arrived before the order's creation event (another topic)
    and was stored failed with "missing fields: number", never sent. It waits for the order
    now, then notifies once, with the order's number."""
    early = new_order()
    await early.fired("escalate", "first_response", order_version=1, cancelled_by=FIRST_RESPONSE,
                      level="supervisor", to="supervisor")
    from notifier.models import DeferredDeadline

    async def deferred():
        async with notifier.rt.sessions() as s:
            return (await s.execute(select(DeferredDeadline).where(DeferredDeadline.order_id == early.order_id))).first()
    await eventually(deferred)  # consumed, and waiting: no message (no failed one)
    assert await notifier.messages(early.order_id) == []
    await early.created()
    msgs = await notifier.wait_messages(early.order_id, 1, kind="escalation")
    assert all(m["status"] != "failed" for m in msgs), msgs
    assert any(early.number in (m.get("body") or "") for m in msgs), msgs

