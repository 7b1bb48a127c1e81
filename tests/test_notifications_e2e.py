"""Notifications through the real path (orders → sla-timer → notifier on one broker, the shared
virtual clock), read back from the notifier's API as an operator would:

- the day-10 merchant reminder is sent (its deadline carries the day the template needs);
- a landline or hotline merchant contact gets in-site messages only, a mobile one SMS too;
- every path into ``completed`` tells the customer once (arbitration, offline exchange);
- escalations say to whom and what is overdue, in Chinese."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.auth import Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET
from shared.testing import eventually
from tests.helpers import operator_headers, start_services, storefront_headers, submit_application

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"
P = "/v1/platform/service-orders"
DAY = 86400
MOBILE, LANDLINE, HOTLINE = "13900139000", "010-6666-0101", "400-606-5500"


def _h(role: str, subject: str, **kw) -> dict:
    # long-lived: the shared virtual clock moves days ahead
    return {"Authorization": "Bearer " + issue_token(Principal(role, subject, **kw), DEV_TOKEN_SECRET,
                                                     ttl=timedelta(days=60))}


OP = operator_headers()


async def onboard(orders, mid: str, phone: str) -> dict:
    r = await orders.client.post("/v1/platform/merchants", headers=OP, json={
        "id": mid, "name": mid, "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": phone,
        "return_address": "北京市大兴区 售后部", "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"}]})
    assert r.status_code == 201, r.text
    return _h("merchant_main", f"{mid}.main", merchant_id=mid)


async def shipped_order(orders, merchant: dict, mid: str, n: int) -> str:
    """Applied, claimed, return approved, shipment filled: the merchant's 10-day reminder runs."""
    r = await submit_application(orders.client, n, key=f"notif-{mid}-{n}", merchant_id=mid, customer_id=f"c-{n}",
                                 customer_level="regular")
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    for path, body in ((f"{M}/{oid}/claim", {}), (f"{M}/{oid}/audit", {"decision": "approve_return", "opinion": "ok"})):
        r = await orders.client.post(path, json=body, headers=merchant)
        assert r.status_code == 200, r.text
    r = await orders.client.post(f"{S}/{oid}/shipment", headers=storefront_headers(f"c-{n}"),
                                 json={"carrier": "SF", "tracking_number": f"SF{n}", "freight_paid": "10.00"})
    assert r.status_code == 200, r.text
    return oid


async def messages(notifier, oid: str) -> list[dict]:
    r = await notifier.client.get("/v1/messages", params={"order_id": oid}, headers=OP)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def wait_for(notifier, oid: str, n: int, **filters) -> list[dict]:
    async def check():
        found = [m for m in await messages(notifier, oid) if all(m[k] == v for k, v in filters.items())]
        return found if len(found) >= n else None
    return await eventually(check, timeout=30)


async def timers_armed(sla, notifier, oid: str, rule: str) -> None:
    """The timer runs and the notifier knows the order (both consumed its events)."""
    async def armed():
        r = await sla.client.get(f"/v1/service-orders/{oid}/timers", headers=OP)
        return any(t["rule"] == rule and t["state"] == "pending" for t in r.json().get("items", []))

    async def known():
        return (await notifier.client.get(f"/v1/order-contacts/{oid}", headers=OP)).status_code == 200
    await eventually(armed, timeout=30)
    await eventually(known, timeout=30)


async def test_day_10_reminder_and_auto_refund_reach_mobile_by_sms_and_landlines_in_site(
        start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer", "notifier"],
                               clock="virtual")
    orders, sla, notifier = svc["orders"], svc["sla-timer"], svc["notifier"]
    orders_by_phone = {}
    for n, (mid, phone) in enumerate((("pop-mobile", MOBILE), ("pop-landline", LANDLINE), ("mfr-hotline", HOTLINE))):
        merchant = await onboard(orders, mid, phone)
        orders_by_phone[phone] = (mid, await shipped_order(orders, merchant, mid, n))
    for _mid, oid in orders_by_phone.values():
        await timers_armed(sla, notifier, oid, "auto_refund")

    r = await sla.client.post("/admin/clock/advance", json={"seconds": 10 * DAY + 60}, headers=OP)
    assert r.status_code == 200, r.text
    for phone, (mid, oid) in orders_by_phone.items():
        await wait_for(notifier, oid, 1, kind="merchant_reminder", channel="inbox")
    mobile_oid = orders_by_phone[MOBILE][1]
    [sms] = await wait_for(notifier, mobile_oid, 1, kind="merchant_reminder", channel="sms", status="sent")
    assert sms["phone"] == "139****9000" and sms["audience"] == "merchant"
    assert sms["body"].endswith("已等待10天，请尽快处理。") and sms["last_error"] is None

    r = await sla.client.post("/admin/clock/advance", json={"seconds": 5 * DAY}, headers=OP)
    assert r.status_code == 200, r.text
    for phone, (mid, oid) in orders_by_phone.items():
        await wait_for(notifier, oid, 1, kind="auto_refund", audience="merchant", channel="inbox")
    await wait_for(notifier, mobile_oid, 1, kind="auto_refund", audience="merchant", channel="sms", status="sent")

    for phone, (mid, oid) in orders_by_phone.items():
        msgs = await messages(notifier, oid)
        assert not [m for m in msgs if m["status"] == "failed"], (phone, msgs)
        merchant = sorted((m["kind"], m["channel"], m["status"]) for m in msgs if m["audience"] == "merchant")
        expected = [("auto_refund", "inbox", "delivered"), ("merchant_reminder", "inbox", "delivered")]
        if phone == MOBILE:
            expected = sorted(expected + [("auto_refund", "sms", "sent"), ("merchant_reminder", "sms", "sent")])
        assert merchant == expected, (phone, merchant)
        box = await notifier.client.get("/v1/inbox", headers=_h("merchant_main", f"{mid}.main", merchant_id=mid))
        assert "已等待10天" in " ".join(i["body"] for i in box.json()["items"]), phone


@pytest.mark.parametrize("path", ["arbitration", "offline_exchange_from_unresolved"])
async def test_every_path_into_completed_tells_the_customer_once(start_service, database_url, broker, path):
    svc = await start_services(start_service, database_url, broker, ["orders", "notifier"])
    orders, notifier = svc["orders"], svc["notifier"]
    merchant = await onboard(orders, "pop-1", MOBILE)
    oid = await shipped_order(orders, merchant, "pop-1", 1)
    customer = storefront_headers("c-1")
    if path == "arbitration":
        steps = [(f"{S}/{oid}/arbitration", customer, {"reason": "the merchant does not answer"}),
                 (f"{P}/{oid}/arbitration-decision", _h("arbitrator", "arb-1"),
                  {"outcome": "refund", "amount": "99.50", "note": "binding"})]
    else:
        steps = [(f"{M}/{oid}/receipt", merchant, {"condition": "intact"}),
                 (f"{M}/{oid}/process", merchant, {"decision": "repair"}),
                 (f"{S}/{oid}/messages", customer, {"text": "still broken"}),
                 (f"{M}/{oid}/process", merchant, {"decision": "offline_exchange", "tracking_number": "SF99",
                                                   "note": "exchanged in the store"})]
    for url, headers, body in steps:
        r = await orders.client.post(url, json=body, headers=headers)
        assert r.status_code == 200, (url, r.text)
    assert r.json()["state"] == "completed", r.text
    number = (await orders.client.get(f"{M}/{oid}", headers=merchant)).json()["number"]
    await wait_for(notifier, oid, 1, kind="completed", channel="sms", status="sent")
    completed = [m for m in await messages(notifier, oid) if m["kind"] == "completed"]
    assert sorted((m["channel"], m["audience"]) for m in completed) == [("inbox", "customer"), ("sms", "customer")]
    assert {m["body"] for m in completed} == {f"您的售后单{number}已完成，感谢您的耐心。"}


async def test_escalations_say_to_whom_and_what_is_overdue_in_chinese(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer", "notifier"],
                               clock="virtual")
    orders, sla, notifier = svc["orders"], svc["sla-timer"], svc["notifier"]
    await onboard(orders, "pop-1", MOBILE)
    r = await submit_application(orders.client, 1, key="esc-1", merchant_id="pop-1", customer_id="c-1")
    assert r.status_code == 201, r.text
    oid, number = r.json()["id"], r.json()["number"]
    await timers_armed(sla, notifier, oid, "first_response_manager")
    r = await sla.client.post("/admin/clock/advance", json={"seconds": 61 * 60}, headers=OP)  # nobody claimed it
    assert r.status_code == 200, r.text
    esc = await wait_for(notifier, oid, 2, kind="escalation")
    assert {(m["audience_id"], m["channel"], m["status"]) for m in esc} == {
        ("supervisor", "inbox", "delivered"), ("operations_manager", "inbox", "delivered")}
    bodies = {m["audience_id"]: m["body"] for m in esc}
    assert bodies == {"supervisor": f"【主管】售后单{number}的首次响应已超时，请立即跟进。",
                      "operations_manager": f"【运营经理】售后单{number}的首次响应已超时，请立即跟进。"}
    assert all("first_response" not in b and "【1】" not in b for b in bodies.values())


def test_every_escalating_deadline_rule_has_a_chinese_description():
    """A new escalating rule in the sla-timer must be described for the notifier's text."""
    from notifier.domain.triggers import OVERDUE, RECIPIENT_NAMES
    from sla_timer.domain.rules import RULES

    escalating = [r for r in RULES if r.action == "escalate"]
    assert escalating
    for rule in escalating:
        assert rule.name in OVERDUE, rule.name
        assert rule.details.get("to") in RECIPIENT_NAMES, rule.name
    reminders = [r for r in RULES if r.action in ("remind_merchant", "remind_customer")]
    assert reminders and all(isinstance(r.details.get("day"), int) for r in reminders)
