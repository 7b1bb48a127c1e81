"""The customer's progress view shows the deadlines actually armed (issue 16, item 9): with a
20-day ship-back override for the merchant, an approved return is expected to be over 20 days
after the approval, not 30 — orders learns the due time from the sla-timer's
``sla.deadlines_armed``."""
from datetime import datetime, timedelta

from shared.testing import eventually
from tests.helpers import bearer, operator_headers, start_services, storefront_headers, submit_application

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"


async def test_the_progress_view_uses_the_ship_back_override(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer"])
    orders, sla = svc["orders"].client, svc["sla-timer"].client
    r = await sla.put("/v1/rules/ship_back_timeout/overrides/merchant/m-1", headers=operator_headers(),
                      json={"after_seconds": 20 * 86400})
    assert r.status_code == 200, r.text
    merchant = bearer("merchant_main", "m-1.main", merchant_id="m-1")
    r = await submit_application(orders, 20, key="ship-back-20", customer_id="c-20")
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    for path, body in ((f"{M}/{oid}/claim", {}), (f"{M}/{oid}/audit", {"decision": "approve_return"})):
        r = await orders.post(path, json=body, headers=merchant)
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "awaiting_return_shipment"

    async def progress():
        v = (await orders.get(f"{S}/{oid}", headers=storefront_headers("c-20"))).json()
        approved_at = datetime.fromisoformat(next(e["at"] for e in v["timeline"]
                                                  if e["action"] == "audit.approve_return"))
        expected = datetime.fromisoformat(v["expected_completion"])
        return expected == approved_at + timedelta(days=20) and (approved_at, expected)

    approved_at, expected = await eventually(progress, timeout=30)
    assert expected - approved_at == timedelta(days=20)  # the default would be 30
