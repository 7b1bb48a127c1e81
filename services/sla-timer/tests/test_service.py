"""The service over the real broker with the virtual clock: timers started and
cancelled by order events alone, fired in due order, published as deadline events."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.outbox import row_messages
from shared.testing import eventually

pytestmark = pytest.mark.broker

D, H = timedelta(days=1), timedelta(hours=1)


async def timers(sla, order_id: str) -> list[dict]:
    r = await sla.client.get(f"/v1/service-orders/{order_id}/timers")
    assert r.status_code == 200
    return r.json()["items"]


async def settled(sla, order_id: str, n: int) -> list[dict]:
    """Wait until the order's events were consumed (n timers known)."""
    async def check():
        items = await timers(sla, order_id)
        return items if len(items) >= n else None
    return await eventually(check)


async def fired(sla_feed, order_id: str, rule: str) -> dict:
    async def check():
        await sla_feed.poll()
        hits = [e for e in sla_feed.of(order_id) if e["data"]["rule"] == rule]
        return hits[0] if hits else None
    return await eventually(check)


async def test_return_flow_merchant_reminder_then_auto_refund(sla, sla_feed, new_order):
    o = new_order()
    await o.created()
    await o.act("claim", "pending_audit")
    await o.act("audit.approve_return", "awaiting_return_shipment")
    await o.act("fill_shipment", "awaiting_receipt", carrier="SF", tracking_number="SF1")
    items = await settled(sla, o.order_id, 12)
    by_rule = {t["rule"]: t for t in items}
    assert by_rule["auto_refund"]["state"] == "pending" and by_rule["auto_refund"]["order_version"] == 4
    assert by_rule["first_response"]["state"] == "cancelled" and by_rule["first_response"]["cancelled_by"] == "claim"
    assert by_rule["ship_back_reminder_1"]["state"] == "cancelled"
    assert by_rule["advance_compensation"]["state"] == "cancelled"

    sla.runtime.clock.advance(10 * D + timedelta(minutes=1))
    ev = await fired(sla_feed, o.order_id, "merchant_reminder")
    assert ev["type"] == "sla.deadline_fired" and ev["data"]["action"] == "remind_merchant"
    assert ev["data"]["details"]["merchant_contact_phone"] == "400-000-1234"
    assert not [e for e in sla_feed.of(o.order_id) if e["data"]["rule"] == "auto_refund"]

    sla.runtime.clock.advance(5 * D)
    ev = await fired(sla_feed, o.order_id, "auto_refund")
    assert ev["data"] | {} and ev["data"]["action"] == "auto_refund"
    assert ev["data"]["order_version"] == 4 and ev["data"]["order_state"] == "awaiting_receipt"
    by_rule = {t["rule"]: t for t in await timers(sla, o.order_id)}
    assert by_rule["auto_refund"]["state"] == "fired"
    # The quality plan (72 h) fired as an escalation on the way.
    assert by_rule["quality_plan"]["state"] == "fired"


async def test_merchant_decision_at_day_14_cancels_the_auto_refund(sla, sla_feed, new_order):
    o = new_order(problem_type="no_reason")
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment")
    await o.act("fill_shipment", "awaiting_receipt")
    await settled(sla, o.order_id, 11)
    sla.runtime.clock.advance(14 * D)
    await o.act("register_receipt", "pending_process")
    await o.act("process.refund", "provisionally_completed", amount="199.00")

    async def cancelled():
        by_rule = {t["rule"]: t for t in await timers(sla, o.order_id)}
        return by_rule["auto_refund"]["state"] == "cancelled" and "refund_payout" in by_rule and by_rule
    by_rule = await eventually(cancelled)
    assert by_rule["auto_refund"]["cancelled_by"] == "process.refund"
    assert by_rule["processing_kpi"]["state"] == "cancelled"
    sla.runtime.clock.advance(2 * D)
    await fired(sla_feed, o.order_id, "refund_payout")
    await sla_feed.poll()
    assert not [e for e in sla_feed.of(o.order_id) if e["data"]["rule"] == "auto_refund"]


async def test_every_rule_fires_through_the_broker_in_due_order(sla, sla_feed, new_order):
    """One order per path through docs/deadlines.md; then one jump of 31 days fires all that
    became due, earliest first."""
    q = await new_order(problem_type="quality").created()  # first response x2, audit, advance comp, quality
    lg = await new_order(problem_type="logistics").created()
    await lg.act("claim", "pending_audit")
    fb = await new_order(problem_type="other").created()
    await fb.act("audit.request_feedback", "awaiting_customer_feedback")
    sb = await new_order(problem_type="other").created()
    await sb.act("audit.approve_return", "awaiting_return_shipment")
    rc = await new_order(problem_type="other").created()
    for a, s in [("audit.approve_return", "awaiting_return_shipment"), ("fill_shipment", "awaiting_receipt"),
                 ("register_receipt", "pending_process")]:
        await rc.act(a, s)
    ex = await new_order(problem_type="other").created()
    await ex.act("audit.resend_without_return", "provisionally_completed")
    rp = await new_order(problem_type="other").created()
    for a, s in [("audit.approve_return", "awaiting_return_shipment"), ("fill_shipment", "awaiting_receipt"),
                 ("register_receipt", "pending_process"), ("process.repair", "provisionally_completed")]:
        await rp.act(a, s)
    # Orders sit on different partitions: wait until every order's events were applied.
    for o, n in ((q, 6), (lg, 6), (fb, 6), (sb, 9), (rc, 13), (ex, 7), (rp, 15)):
        await settled(sla, o.order_id, n)

    async def claimed():
        return {t["rule"]: t["state"] for t in await timers(sla, lg.order_id)}["first_response"] == "cancelled"
    await eventually(claimed)
    sla.runtime.clock.advance(31 * D)

    expected = {
        q.order_id: {"first_response", "first_response_manager", "audit_deadline", "audit_escalation",
                     "advance_compensation", "quality_plan"},
        lg.order_id: {"audit_deadline", "audit_escalation", "advance_compensation", "logistics_resolution"},
        fb.order_id: {"feedback_timeout"},
        sb.order_id: {"ship_back_reminder_1", "ship_back_reminder_2", "ship_back_reminder_3", "ship_back_timeout"},
        # Receipt alone does not stop the shipment's clocks: only a processing decision does.
        rc.order_id: {"processing_kpi", "processing_penalty", "merchant_reminder", "auto_refund"},
        ex.order_id: {"exchange_shipping", "customer_confirmation"},
        rp.order_id: {"repair", "customer_confirmation"},
    }

    async def all_fired():
        await sla_feed.poll()
        got = {oid: {e["data"]["rule"] for e in sla_feed.of(oid)} for oid in expected}
        return got == expected and got
    try:
        await eventually(all_fired)
    finally:
        got = {oid: {e["data"]["rule"] for e in sla_feed.of(oid)} for oid in expected}
        print({k: (sorted(got[k] - v), sorted(v - got[k])) for k, v in expected.items() if got[k] != v})
    actions = {(e["data"]["rule"], e["data"]["action"], json.dumps(e["data"]["details"], sort_keys=True))
               for e in sla_feed.events}
    assert ("processing_penalty", "penalty", '{"amount_cny": "2000.00"}') in actions
    assert ("processing_kpi", "breach", '{"indicator": "F3"}') in actions
    assert ("exchange_shipping", "breach", '{"indicator": "F4"}') in actions
    assert ("audit_deadline", "breach", '{"indicator": "F2"}') in actions
    assert ("first_response_manager", "escalate", '{"level": 2, "to": "operations_manager"}') in actions
    assert ("feedback_timeout", "auto_close") in {(a, b) for a, b, _ in actions}
    assert ("customer_confirmation", "auto_confirm") in {(a, b) for a, b, _ in actions}
    # Written to the outbox in due order.
    ob = sla.runtime.tables.outbox
    async with sla.runtime.sessions() as s:
        rows = [p for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload).order_by(ob.c.id))).all()
                for _k, p in row_messages(*r)]
    envelopes = [json.loads(p) if isinstance(p, str) else p for p in rows]
    dues = [e["data"]["due_at"] for e in envelopes if e["type"] == "sla.deadline_fired"]
    assert len(dues) >= 20
    from datetime import datetime
    parsed = [datetime.fromisoformat(d) for d in dues]
    assert parsed == sorted(parsed)


async def test_redelivered_order_event_starts_no_second_timer(sla, sla_feed, new_order):
    o = await new_order(problem_type="other").created()
    await o.act("audit.approve_return", "awaiting_return_shipment")
    await o.resend_last()
    await o.act("abandon", "abandoned")
    items = await settled(sla, o.order_id, 9)

    async def done():
        items = await timers(sla, o.order_id)
        return all(t["state"] == "cancelled" for t in items) and items
    items = await eventually(done)
    assert len([t for t in items if t["rule"] == "ship_back_timeout"]) == 1


async def test_policy_override_and_api(sla, sla_feed, new_order):
    r = await sla.client.put("/v1/rules/ship_back_timeout/overrides/merchant/m-9", json={"after_seconds": 3600})
    assert r.status_code == 200, r.text
    r = await sla.client.put("/v1/rules/first_response/overrides/category/books", json={"enabled": False})
    assert r.status_code == 200
    assert (await sla.client.put("/v1/rules/nope/overrides/merchant/m-9", json={})).status_code == 404
    r = await sla.client.put("/v1/rules/repair/overrides/merchant/m-9", json={"after_seconds": 5, "working_days": 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert len((await sla.client.get("/v1/rule-overrides")).json()["items"]) == 2
    rules = (await sla.client.get("/v1/rules")).json()["items"]
    assert {x["name"] for x in rules} >= {"auto_refund", "repair", "customer_confirmation"}
    assert next(x for x in rules if x["name"] == "repair")["calendar"] == "working_days"

    o = await new_order(problem_type="other", merchant_id="m-9", category="books").created()
    await o.act("audit.approve_return", "awaiting_return_shipment")
    items = await settled(sla, o.order_id, 8)
    assert "first_response" not in {t["rule"] for t in items}
    sbt = next(t for t in items if t["rule"] == "ship_back_timeout")
    sla.runtime.clock.advance(H + timedelta(seconds=1))
    ev = await fired(sla_feed, o.order_id, "ship_back_timeout")
    assert ev["data"]["due_at"].startswith(sbt["due_at"][:16])


async def test_calendar_api(sla):
    r = await sla.client.get("/v1/calendar/days/2026-02-14")
    assert r.json()["working_day"] is True
    r = await sla.client.get("/v1/calendar/days/2026-10-05")
    assert r.json()["working_day"] is False and r.json()["holiday"]
    r = await sla.client.get("/v1/calendar/add-working-days", params={"start": "2026-09-30T15:00:00+08:00", "n": 3})
    assert r.json()["result_beijing"] == "2026-10-10T15:00:00+08:00"
    r = await sla.client.get("/v1/calendar/add-business-hours",
                             params={"start": "2026-02-13T17:00:00+08:00", "hours": 12})
    assert r.json()["result_beijing"] == "2026-02-24T11:00:00+08:00"
    r = await sla.client.get("/v1/calendar/add-business-hours",
                             params={"start": "2026-02-13T17:00:00", "hours": 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "naive_datetime"
    r = await sla.client.get("/v1/calendar/add-business-hours",
                             params={"start": "2026-02-13T17:00:00Z", "hours": 1, "channel": "fax"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    r = await sla.client.put("/v1/calendar/overrides/2027-02-08", json={"working": False, "note": "2027 announcement"})
    assert r.status_code == 200
    r = await sla.client.get("/v1/calendar/days/2027-02-08")
    assert r.json()["working_day"] is False
