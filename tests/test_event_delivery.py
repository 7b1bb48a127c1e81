"""An event written with a state change in one service arrives at consumers in the others."""
from shared.testing import eventually
from tests.helpers import bearer, start_services, submit_application, operator_headers


async def test_created_order_reaches_timer_kpi_and_notifier(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer", "kpi", "notifier"])
    r = await submit_application(svc["orders"].client, 1, key="k1")
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    async def fact():
        resp = await svc["kpi"].client.get(f"/v1/facts/service-orders/{order_id}",
                                           headers=bearer("platform_operator", "t"))
        return resp.json() if resp.status_code == 200 else None

    got = await eventually(fact)
    assert got["merchant_id"] == "m-1" and got["amount_paid"] == "199.00"

    async def timers():
        resp = await svc["sla-timer"].client.get(f"/v1/service-orders/{order_id}/timers",
                                                 headers=operator_headers())
        return resp.json()["items"]

    rules = {t["rule"] for t in await eventually(timers)}
    assert {"audit_deadline", "advance_compensation", "first_response", "quality_plan"} <= rules

    async def contact():
        resp = await svc["notifier"].client.get(
            f"/v1/order-contacts/{order_id}", headers=bearer("platform_operator", "test-operator")
        )
        return resp.json() if resp.status_code == 200 else None

    c = await eventually(contact)
    # masked for everyone, operators too (a whole number only by a recorded reveal: notifier tests)
    assert c["customer_phone"] == "138****8000"
