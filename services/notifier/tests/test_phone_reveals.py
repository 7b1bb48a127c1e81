"""Phones are masked for everyone, operators included; an operator sees ONE whole number by
an explicit request with a reason, recorded in the phone reveal log (who, when, which
message or order contact, why), which operators can read."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from notifier.models import PhoneReveal
from shared.runtime import MAX_OFFSET

pytestmark = pytest.mark.broker

CUSTOMER_PHONE, MERCHANT_PHONE = "13800138000", "13912345678"
ADDRESS = "上海市浦东新区张江路100号 售后仓"


async def reveals(api, **params) -> dict:
    r = await api.client.get("/v1/phone-reveals", params=params, headers=api.operator)
    assert r.status_code == 200, r.text
    return r.json()


async def reveal_count(api) -> int:
    async with api.rt.sessions() as s:
        return await s.scalar(select(func.count()).select_from(PhoneReveal))


@pytest.fixture
async def order(notifier, new_order):
    """An order with a customer SMS, a merchant SMS and in-site messages."""
    o = new_order()
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await o.act("system.auto_refund", "refunded_by_system", amount="199.00")
    await notifier.wait_messages(o.order_id, 2, channel="sms", status="sent")
    return o


async def test_no_caller_sees_a_whole_phone_number(notifier, order):
    callers = {"operator": notifier.operator,
               "merchant": notifier.headers("merchant_main", merchant_id="m-1"),
               "storefront": notifier.headers("storefront", customer_id="c-1")}
    for name, headers in callers.items():
        r = await notifier.client.get("/v1/messages", params={"order_id": order.order_id}, headers=headers)
        assert r.status_code == 200
        items = r.json()["items"]
        sms = [m for m in items if m["channel"] == "sms"]
        assert sms, name
        assert all(m["phone"] in ("138****8000", "139****5678") for m in sms), (name, sms)
        assert all(m["recipient"] == f"sms:{m['phone']}" for m in sms)
        text = json.dumps(items)
        assert CUSTOMER_PHONE not in text and MERCHANT_PHONE not in text, name
    r = await notifier.client.get(f"/v1/order-contacts/{order.order_id}", headers=notifier.operator)
    assert r.status_code == 200 and r.json()["customer_phone"] == "138****8000"
    assert CUSTOMER_PHONE not in r.text
    assert await reveal_count(notifier) == 0  # reading lists reveals nothing


async def test_an_operator_reveals_one_message_phone_and_it_is_recorded(notifier, order):
    msgs = await notifier.messages(order.order_id)
    customer_sms = [m for m in msgs if m["channel"] == "sms" and m["audience"] == "customer"][0]
    merchant_sms = [m for m in msgs if m["channel"] == "sms" and m["audience"] == "merchant"][0]
    notifier.rt.clock.advance(timedelta(hours=1))
    at = notifier.rt.clock.now()
    r = await notifier.client.post(f"/v1/messages/{customer_sms['id']}/reveal-phone",
                                   json={"reason": "  客户来电称未收到短信，核对号码  "}, headers=notifier.operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["phone"] == CUSTOMER_PHONE and body["message_id"] == customer_sms["id"]
    assert body["order_id"] == order.order_id
    assert at <= datetime.fromisoformat(body["revealed_at"]) <= notifier.rt.clock.now()  # the service clock
    # one number per request: the merchant's SMS on the same order stays masked
    assert MERCHANT_PHONE not in r.text
    again = [m for m in await notifier.messages(order.order_id) if m["id"] == merchant_sms["id"]][0]
    assert again["phone"] == "139****5678"

    log = await reveals(notifier)
    assert log["total"] == 1
    [entry] = log["items"]
    assert entry == {"id": body["reveal_id"], "at": body["revealed_at"], "actor": "platform_operator-client",
                     "actor_role": "platform_operator", "target": "message", "message_id": customer_sms["id"],
                     "order_id": order.order_id, "reason": "客户来电称未收到短信，核对号码"}
    assert CUSTOMER_PHONE not in json.dumps(log)  # the log says who saw what, not the number

    r = await notifier.client.post(f"/v1/messages/{merchant_sms['id']}/reveal-phone",
                                   json={"reason": "商家联系电话核实"}, headers=notifier.operator)
    assert r.status_code == 200 and r.json()["phone"] == MERCHANT_PHONE
    assert [e["message_id"] for e in (await reveals(notifier))["items"]] == [merchant_sms["id"], customer_sms["id"]]


async def test_an_operator_reveals_an_order_contact_phone_and_it_is_recorded(notifier, order):
    r = await notifier.client.post(f"/v1/order-contacts/{order.order_id}/reveal", json={"reason": "回访客户"},
                                   headers=notifier.operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["order_id"], body["customer_phone"]) == (order.order_id, CUSTOMER_PHONE)
    [entry] = (await reveals(notifier, order_id=order.order_id))["items"]
    assert (entry["id"], entry["target"], entry["order_id"], entry["message_id"], entry["reason"]) == (
        body["reveal_id"], "order_contact", order.order_id, None, "回访客户")
    assert (await reveals(notifier, order_id="another-order")) == {"items": [], "total": 0}
    # the contact itself stays masked
    r = await notifier.client.get(f"/v1/order-contacts/{order.order_id}", headers=notifier.operator)
    assert r.json()["customer_phone"] == "138****8000"


@pytest.mark.parametrize("body", [
    {}, {"reason": ""}, {"reason": "x"}, {"reason": "    "}, {"reason": "a\nb"}, {"reason": "r" * 501},
    {"reason": None}, {"why": "核实号码"},
])
async def test_a_reveal_needs_a_reason(notifier, order, body):
    mid = (await notifier.messages(order.order_id))[0]["id"]
    for path in (f"/v1/messages/{mid}/reveal-phone", f"/v1/order-contacts/{order.order_id}/reveal"):
        r = await notifier.client.post(path, json=body, headers=notifier.operator)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (path, body, r.text)
    assert await reveal_count(notifier) == 0


async def test_only_operators_reveal_and_read_the_log(notifier, order):
    msgs = await notifier.messages(order.order_id)
    sms = [m for m in msgs if m["channel"] == "sms" and m["audience"] == "customer"][0]
    reason = {"reason": "我想看号码"}
    for headers in (notifier.headers("merchant_main", merchant_id="m-1"), notifier.headers("merchant_staff",
                    merchant_id="m-1"), notifier.headers("storefront", customer_id="c-1"),
                    notifier.headers("arbitrator")):
        for path in (f"/v1/messages/{sms['id']}/reveal-phone", f"/v1/order-contacts/{order.order_id}/reveal"):
            r = await notifier.client.post(path, json=reason, headers=headers)
            assert r.status_code == 403 and CUSTOMER_PHONE not in r.text, (path, r.text)
        assert (await notifier.client.get("/v1/phone-reveals", headers=headers)).status_code == 403
    for path in (f"/v1/messages/{sms['id']}/reveal-phone", f"/v1/order-contacts/{order.order_id}/reveal",
                 "/v1/phone-reveals"):
        method = notifier.client.get if path == "/v1/phone-reveals" else notifier.client.post
        assert (await method(path, **({} if method == notifier.client.get else {"json": reason}))).status_code == 401
    assert await reveal_count(notifier) == 0


async def test_nothing_to_reveal_records_nothing(notifier, order):
    inbox = [m for m in await notifier.messages(order.order_id) if m["channel"] == "inbox"][0]
    reason = {"reason": "核实号码"}
    r = await notifier.client.post(f"/v1/messages/{inbox['id']}/reveal-phone", json=reason, headers=notifier.operator)
    assert r.status_code == 404 and r.json()["error"]["code"] == "phone_not_found"
    r = await notifier.client.post("/v1/messages/999999/reveal-phone", json=reason, headers=notifier.operator)
    assert r.status_code == 404 and r.json()["error"]["code"] == "message_not_found"
    r = await notifier.client.post("/v1/order-contacts/nope/reveal", json=reason, headers=notifier.operator)
    assert r.status_code == 404 and r.json()["error"]["code"] == "contact_not_found"
    for path in ("/v1/messages/0/reveal-phone", "/v1/messages/9223372036854775808/reveal-phone",
                 "/v1/order-contacts/" + "o" * 65 + "/reveal"):
        r = await notifier.client.post(path, json=reason, headers=notifier.operator)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", path
    assert await reveal_count(notifier) == 0


async def test_the_reveal_log_is_paginated_and_bounded(notifier, order):
    sms = [m for m in await notifier.messages(order.order_id) if m["channel"] == "sms"]
    ids = []
    for i in range(5):
        r = await notifier.client.post(f"/v1/messages/{sms[i % len(sms)]['id']}/reveal-phone",
                                       json={"reason": f"第{i}次核实"}, headers=notifier.operator)
        ids.append(r.json()["reveal_id"])
    page = await reveals(notifier, limit=2)
    assert page["total"] == 5 and [e["id"] for e in page["items"]] == ids[::-1][:2]
    page = await reveals(notifier, limit=2, offset=4)
    assert [e["id"] for e in page["items"]] == ids[:1]
    assert (await reveals(notifier, offset=MAX_OFFSET))["items"] == []
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"offset": MAX_OFFSET + 1},
                   {"offset": "9223372036854775808"}, {"order_id": "o" * 65}, {"order_id": ""}):
        r = await notifier.client.get("/v1/phone-reveals", params=params, headers=notifier.operator)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", params
