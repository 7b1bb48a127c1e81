"""Orders and the SLA timer through the real broker with the shared virtual clock:
approve a return, fill the shipment, advance 10 days → the merchant reminder is
published; advance to 15 days → the order is refunded_by_system, exactly once."""
import json
from datetime import timedelta

from sqlalchemy import select

from shared.outbox import row_messages
from shared.testing import eventually
from shared.auth import Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET
from tests.helpers import start_services, storefront_headers, submit_application, operator_headers

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"
DAY = 86400


async def test_approve_ship_advance_15_days_refunds_by_system_once(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer"], clock="virtual")
    orders, sla = svc["orders"], svc["sla-timer"]
    r = await submit_application(orders.client, 1, key="e2e-1", customer_level="regular")
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    # A long-lived token: the virtual clock moves 15 days ahead.
    merchant = {"Authorization": "Bearer " + issue_token(Principal("merchant_main", "m-1-main", merchant_id="m-1"),
                                                         DEV_TOKEN_SECRET, ttl=timedelta(days=60))}
    for path, body in ((f"{M}/{oid}/claim", {}),
                       (f"{M}/{oid}/audit", {"decision": "approve_return", "opinion": "send it back"})):
        r = await orders.client.post(path, json=body, headers=merchant)
        assert r.status_code == 200, r.text
    r = await orders.client.post(f"{S}/{oid}/shipment", headers=storefront_headers("c-1"),
                                 json={"carrier": "SF", "tracking_number": "SF1", "freight_paid": "12.00"})
    assert r.status_code == 200, r.text

    async def timers():
        r = await sla.client.get(f"/v1/service-orders/{oid}/timers", headers=merchant)
        items = r.json().get("items", [])  # the merchant gets 404 until the order's events are consumed
        by_rule = {t["rule"]: t for t in items}
        return by_rule.get("auto_refund", {}).get("state") == "pending" and by_rule

    await eventually(timers)

    async def sla_events():
        ob = sla.runtime.tables.outbox
        async with sla.runtime.sessions() as s:
            # the timer service writes a fired batch as one bundle row on PostgreSQL
            rows = [p for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload))).all()
                    for k, p in row_messages(*r) if k == oid]
        return [e["data"] for e in map(json.loads, rows) if e["type"] == "sla.deadline_fired"]

    r = await sla.client.post("/admin/clock/advance", json={"seconds": 10 * DAY + 60}, headers=operator_headers())
    assert r.status_code == 200, r.text

    async def reminded():
        return [e for e in await sla_events() if e["action"] == "remind_merchant"]

    await eventually(reminded)
    r = await orders.client.get(f"{M}/{oid}", headers=merchant)
    assert r.json()["state"] == "awaiting_receipt", r.text

    r = await sla.client.post("/admin/clock/advance", json={"seconds": 5 * DAY}, headers=operator_headers())
    assert r.status_code == 200, r.text

    async def refunded():
        o = (await orders.client.get(f"{M}/{oid}", headers=merchant)).json()
        return o["state"] == "refunded_by_system" and o

    await eventually(refunded, timeout=30)
    ob = orders.runtime.tables.outbox
    async with orders.runtime.sessions() as s:
        rows = (await s.execute(select(ob.c.payload).where(ob.c.key == oid))).scalars().all()
    assert sum(1 for p in rows if json.loads(p)["data"].get("action") == "system.auto_refund") == 1
    assert len([e for e in await sla_events() if e["action"] == "auto_refund"]) == 1
