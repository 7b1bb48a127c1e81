"""Each notification kind from its trigger, through the real broker, in Chinese with its variables."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

CUSTOMER_PHONE, MERCHANT_PHONE = "13800138000", "13912345678"
from shared.testing import eventually

pytestmark = pytest.mark.broker

ADDRESS = "上海市浦东新区张江路100号 售后仓"


async def test_every_kind_from_its_trigger(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("claim", "pending_audit")  # no notification
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS, opinion="同意退货")
    await o.act("remind_to_ship")
    await notifier.wait_messages(o.order_id, 1, kind="remind_to_ship", channel="sms")  # projection caught up
    await o.fired("remind_customer", "ship_back_reminder_1", day=5)
    await o.fired("remind_customer", "ship_back_reminder_2", day=10)
    await o.fired("remind_customer", "ship_back_reminder_3", day=25)
    await o.fired("remind_merchant", "merchant_reminder", day=10)
    await o.fired("escalate", "quality_plan", level=1, to="13900139000")
    await o.fired("escalate", "first_response_manager", level=2, to="operations_manager")
    await o.act("system.auto_refund", "refunded_by_system", amount="199.00")
    await o.act("exchange.shipped", carrier="顺丰", tracking_number="SF123456")
    await o.act("confirm", "completed")
    # order and deadline events come on two topics: wait for both
    sms = await notifier.wait_messages(o.order_id, 11, channel="sms", status="sent")
    assert all(m["status"] == "sent" for m in sms)
    await notifier.wait_messages(o.order_id, 2, kind="escalation")
    by_kind: dict[str, list[dict]] = {}
    for m in await notifier.messages(o.order_id):
        by_kind.setdefault(m["kind"], []).append(m)
    assert "claim" not in by_kind
    approved = [m for m in by_kind["return_approved"] if m["channel"] == "sms"][0]
    assert approved["phone"] == "138****8000" and approved["audience"] == "customer"  # masked, operators too
    assert await notifier.reveal(approved["id"]) == CUSTOMER_PHONE
    assert approved["body"] == f"您的售后单{o.number}已审核通过，请将商品寄回：{ADDRESS}。审核意见：同意退货。"
    remind = [m for m in by_kind["remind_to_ship"] if m["channel"] == "sms"][0]
    assert ADDRESS in remind["body"] and "商家提醒您" in remind["body"]
    days = sorted(m["body"] for m in by_kind["ship_back_reminder"] if m["channel"] == "sms")
    assert [("5天" in b, "10天" in b, "25天" in b) for b in days].count((True, False, False)) == 1
    assert all(ADDRESS in b for b in days) and len(days) == 3
    merchant = [m for m in by_kind["merchant_reminder"] if m["channel"] == "sms"][0]
    assert await notifier.reveal(merchant["id"]) == MERCHANT_PHONE and "已等待10天" in merchant["body"]
    refunds = {(m["audience"], m["channel"]): m for m in by_kind["auto_refund"]}
    assert refunds[("customer", "sms")]["body"] == f"您的售后单{o.number}已自动退款199.00元，请注意查收。"
    assert await notifier.reveal(refunds[("merchant", "sms")]["id"]) == MERCHANT_PHONE
    assert "系统已自动退款199.00元" in refunds[("merchant", "sms")]["body"]
    assert ("merchant", "inbox") in refunds and ("customer", "inbox") in refunds
    shipped = [m for m in by_kind["exchange_shipped"] if m["channel"] == "sms"][0]
    assert "顺丰运单号SF123456" in shipped["body"]
    assert [m for m in by_kind["completed"] if m["channel"] == "sms"][0]["body"].endswith("已完成，感谢您的耐心。")
    esc = {m["channel"]: m for m in by_kind["escalation"]}
    assert esc["sms"]["body"] == f"【主管】售后单{o.number}的质量问题处理方案已超时，请立即跟进。"
    assert esc["inbox"]["audience_id"] == "operations_manager"
    assert esc["inbox"]["body"] == f"【运营经理】售后单{o.number}的首次响应已超时，请立即跟进。"


async def test_reject_notifies_the_customer(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("audit.reject", "rejected", opinion="商品已超过售后期")
    [m] = await notifier.wait_messages(o.order_id, 1, channel="sms", status="sent")
    assert m["body"] == f"您的售后单{o.number}审核未通过，原因：商品已超过售后期。如有疑问请联系商家客服。"
    assert m["template_key"] == "audit_rejected" and m["template_version"] == 1


async def test_duplicate_events_send_once(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("audit.reject", "rejected", opinion="不符合")
    await o.resend_last()
    await o.resend_last()
    await o.act("confirm", "completed")  # same partition: consumed after the duplicates
    await notifier.wait_messages(o.order_id, 1, kind="completed", channel="sms", status="sent")
    msgs = await notifier.messages(o.order_id)
    assert len([m for m in msgs if m["kind"] == "audit_rejected"]) == 2  # one SMS + one in-site message
    assert len([m for m in msgs if m["kind"] == "audit_rejected" and m["channel"] == "sms"]) == 1


async def test_bad_input_is_recorded_as_failed_and_the_consumer_keeps_going(notifier, new_order):
    bad_phone = new_order(customer_phone="12345")
    await bad_phone.created()
    await bad_phone.act("audit.reject", "rejected", opinion="x")
    missing = new_order()
    await missing.created()
    await missing.act("exchange.shipped", carrier="顺丰")  # no tracking number
    no_merchant_phone = new_order(merchant_phone=None, merchant_id="m-unknown")
    await no_merchant_phone.created()
    await no_merchant_phone.act("remind_to_ship", return_address=ADDRESS)
    await notifier.wait_messages(no_merchant_phone.order_id, 1, kind="remind_to_ship", channel="sms")
    await no_merchant_phone.fired("remind_merchant", day=10)
    unknown_order = new_order()
    await unknown_order.fired("remind_customer", day=5)  # never saw the order: it waits for it
    # unknown template: remove it from the store, then trigger it
    from sqlalchemy import delete
    from notifier.models import TemplateVersion
    async with notifier.rt.uow() as s:
        await s.execute(delete(TemplateVersion).where(TemplateVersion.key == "completed"))
    unknown_tpl = new_order()
    await unknown_tpl.created()
    await unknown_tpl.act("confirm", "completed")
    good = new_order()
    await good.created()
    await good.act("audit.reject", "rejected", opinion="y")
    await notifier.wait_messages(good.order_id, 1, channel="sms", status="sent")

    [m] = [m for m in await notifier.messages(bad_phone.order_id) if m["channel"] == "sms"]
    assert m["status"] == "failed" and m["last_error"].startswith("bad phone number") and "12345" not in m["last_error"]
    msgs = await notifier.messages(missing.order_id)
    assert msgs and all(m["status"] == "failed" and m["last_error"] == "missing fields: tracking_number" for m in msgs)
    msgs = await notifier.wait_messages(no_merchant_phone.order_id, 1, kind="merchant_reminder", channel="sms")
    sms = msgs[0]
    assert sms["status"] == "failed" and sms["last_error"] == "missing fields: merchant phone"
    from notifier.models import DeferredDeadline

    async def deferred():
        async with notifier.rt.sessions() as s:
            return await s.scalar(select(DeferredDeadline.event_id).where(
                DeferredDeadline.order_id == unknown_order.order_id))
    await eventually(deferred)  # no failed message: it notifies once the order's events arrive
    assert await notifier.messages(unknown_order.order_id) == []
    msgs = await notifier.wait_messages(unknown_tpl.order_id, 1)
    assert msgs and all(m["status"] == "failed" and m["last_error"] == "unknown template: completed" for m in msgs)
    r = await notifier.client.get("/admin/dead-letters")
    assert r.json().get("items", []) == []


async def test_merchant_phone_from_details_and_from_the_projection(notifier, new_order):
    o = new_order(merchant_id="m-9")
    await o.created()
    # the phone only arrives in details of one event, then is remembered for the merchant
    await o.act("claim", "pending_audit", snapshot_phone=False, merchant_contact_phone="13700137000")
    await o.act("remind_to_ship", snapshot_phone=False, return_address=ADDRESS)
    await notifier.wait_messages(o.order_id, 1, kind="remind_to_ship", channel="sms")
    await o.fired("remind_merchant", day=10)
    [m] = await notifier.wait_messages(o.order_id, 1, kind="merchant_reminder", channel="sms", status="sent")
    assert await notifier.reveal(m["id"]) == "13700137000" and m["audience"] == "merchant"


@pytest.mark.parametrize("contact", ["010-6666-0101", "400-606-5500", "+86 21 1234 5678"])
async def test_a_landline_or_hotline_merchant_contact_gets_the_in_site_message_only(notifier, new_order, contact):
    """SMS go to mobile numbers only: a landline or 400 contact gets no SMS row (none that could
    only fail), the in-site message all the same; the customer's SMS are unaffected."""
    o = new_order(merchant_id="m-landline", merchant_phone=contact)
    await o.created(merchant_contact_phone=contact)

    async def projected():  # the deadline comes on another topic: after the order's creation
        r = await notifier.client.get(f"/v1/order-contacts/{o.order_id}", headers=notifier.operator)
        return r.status_code == 200
    await eventually(projected)
    await o.fired("remind_merchant", "merchant_reminder", day=10)
    await o.act("system.auto_refund", "refunded_by_system", amount="199.00")
    await notifier.wait_messages(o.order_id, 1, kind="auto_refund", audience="customer", channel="sms", status="sent")
    msgs = await notifier.messages(o.order_id)
    merchant = sorted((m["kind"], m["channel"], m["status"]) for m in msgs if m["audience"] == "merchant")
    assert merchant == [("auto_refund", "inbox", "delivered"), ("merchant_reminder", "inbox", "delivered")]
    assert not [m for m in msgs if m["status"] == "failed"]
    box = (await notifier.client.get("/v1/inbox", headers=notifier.headers("merchant_main", merchant_id="m-landline")))
    assert {i["title"] for i in box.json()["items"]} == {"售后单待处理提醒", "系统已自动退款"}
    assert "已等待10天" in " ".join(i["body"] for i in box.json()["items"])


async def test_masking_in_api_and_log(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("audit.reject", "rejected", opinion="z")
    await notifier.wait_messages(o.order_id, 1, channel="sms", status="sent")
    merchant = notifier.headers("merchant_main", merchant_id="m-1")
    r = await notifier.client.get("/v1/messages", params={"order_id": o.order_id}, headers=merchant)
    assert r.status_code == 200 and r.json()["items"] == []  # customer messages are not the merchant's
    sf = notifier.headers("storefront", customer_id="c-1")
    items = (await notifier.client.get("/v1/messages", params={"order_id": o.order_id}, headers=sf)).json()["items"]
    sms = [m for m in items if m["channel"] == "sms"][0]
    assert sms["phone"] == "138****8000" and CUSTOMER_PHONE not in json.dumps(items)
    # operators too see masked numbers (a whole one only by a recorded reveal: test_phone_reveals)
    op_items = await notifier.messages(o.order_id)
    assert [m["phone"] for m in op_items if m["channel"] == "sms"] == ["138****8000"]
    assert [m["recipient"] for m in op_items if m["channel"] == "sms"] == ["sms:138****8000"]
    assert CUSTOMER_PHONE not in json.dumps(op_items)
    contact = (await notifier.client.get(f"/v1/order-contacts/{o.order_id}", headers=notifier.operator)).json()
    assert contact["customer_phone"] == "138****8000"
    log = open(notifier.rt.settings.sms_log_file, encoding="utf-8").read()
    assert "138****8000" in log and CUSTOMER_PHONE not in log and "审核未通过" in log
    r = await notifier.client.get("/v1/messages")
    assert r.status_code == 401


async def test_inbox_unread_counts_and_mark_read(notifier, new_order):
    o = new_order(customer_id="c-7")
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await o.act("system.auto_refund", "refunded_by_system", amount="50.00")
    await notifier.wait_messages(o.order_id, 3, channel="inbox")
    sf = notifier.headers("storefront", customer_id="c-7")
    box = (await notifier.client.get("/v1/inbox", headers=sf)).json()
    assert box["unread"] == 2 and len(box["items"]) == 2
    assert box["items"][0]["title"] == "退款已完成"
    other = notifier.headers("storefront", customer_id="c-8")
    assert (await notifier.client.get("/v1/inbox", headers=other)).json() == {"unread": 0, "items": []}
    r = await notifier.client.post(f"/v1/inbox/{box['items'][0]['id']}/read", headers=other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "message_not_found"
    r = await notifier.client.post(f"/v1/inbox/{box['items'][0]['id']}/read", headers=sf)
    assert r.status_code == 200
    assert (await notifier.client.get("/v1/inbox", headers=sf)).json()["unread"] == 1
    merchant = notifier.headers("merchant_main", merchant_id="m-1")
    mbox = (await notifier.client.get("/v1/inbox", headers=merchant)).json()
    assert mbox["unread"] == 1 and mbox["items"][0]["title"] == "系统已自动退款"
    assert (await notifier.client.post("/v1/inbox/read-all", headers=merchant)).json() == {"marked": 1}
    assert (await notifier.client.get("/v1/inbox", headers=merchant)).json()["unread"] == 0


async def test_template_api_versions_and_preview(notifier):
    op = notifier.operator
    items = (await notifier.client.get("/v1/templates", headers=op)).json()["items"]
    assert {t["key"] for t in items} >= {"audit_rejected", "escalation", "ship_back_reminder"}
    r = await notifier.client.put("/v1/templates/audit_rejected", headers=op, json={
        "title": "审核结果", "body": "售后单${number}未通过：${reason}", "variables": ["number", "opinion"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "template_invalid"
    assert r.json()["error"]["details"]["undeclared"] == ["reason"]
    r = await notifier.client.put("/v1/templates/audit_rejected", headers=op, json={
        "title": "审核结果", "body": "售后单${number}未通过：${opinion}", "variables": ["number", "opinion"]})
    assert r.status_code == 201 and r.json()["version"] == 2
    versions = (await notifier.client.get("/v1/templates/audit_rejected/versions", headers=op)).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    r = await notifier.client.post("/v1/templates/audit_rejected/preview", headers=op,
                                   json={"variables": {"number": "SO1", "opinion": "过期"}})
    assert r.json()["text"] == "售后单SO1未通过：过期" and r.json()["version"] == 2
    r = await notifier.client.post("/v1/templates/audit_rejected/preview", headers=op, json={"variables": {}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_variable"
    r = await notifier.client.post("/v1/templates/nope/preview", headers=op, json={})
    assert r.status_code == 404
    sf = notifier.headers("storefront", customer_id="c-1")
    assert (await notifier.client.get("/v1/templates", headers=sf)).status_code == 403
