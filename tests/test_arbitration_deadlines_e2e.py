"""Every outcome starts the same deadlines whoever decided it (issue 16, item 3): an
arbitrator's refund starts the 24 h refund-payout timer, an arbitrator's exchange the
18 h exchange-shipping timer — as a merchant's processing decision does."""
from datetime import timedelta

import pytest

from shared.auth import Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET
from shared.testing import eventually
from tests.helpers import start_services, storefront_headers, submit_application

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"
P = "/v1/platform/service-orders"


def _h(role: str, subject: str, **kw) -> dict:
    return {"Authorization": "Bearer " + issue_token(Principal(role, subject, **kw), DEV_TOKEN_SECRET,
                                                     ttl=timedelta(days=1))}


@pytest.mark.parametrize("outcome, body, rule", [
    ("refund", {"amount": "99.50"}, "refund_payout"),
    ("exchange", {"sku": "sku-1"}, "exchange_shipping"),
])
async def test_an_arbitrators_outcome_starts_its_deadline(start_service, database_url, broker, outcome, body, rule):
    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer"])
    orders, sla = svc["orders"], svc["sla-timer"]
    merchant = _h("merchant_main", "m-1-main", merchant_id="m-1")
    r = await submit_application(orders.client, 7, key=f"arb-{outcome}", customer_id="c-7")
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    for path, b in ((f"{M}/{oid}/claim", {}), (f"{M}/{oid}/audit", {"decision": "approve_return", "opinion": "ok"})):
        r = await orders.client.post(path, json=b, headers=merchant)
        assert r.status_code == 200, r.text
    r = await orders.client.post(f"{S}/{oid}/shipment", headers=storefront_headers("c-7"),
                                 json={"carrier": "SF", "tracking_number": "SF7", "freight_paid": "10.00"})
    assert r.status_code == 200, r.text
    r = await orders.client.post(f"{S}/{oid}/arbitration", headers=storefront_headers("c-7"),
                                 json={"reason": "the merchant does not answer"})
    assert r.status_code == 200, r.text
    r = await orders.client.post(f"{P}/{oid}/arbitration-decision", headers=_h("arbitrator", "arb-1"),
                                 json={"outcome": outcome, "note": "binding", **body})
    assert r.status_code == 200, r.text

    async def armed():
        r = await sla.client.get(f"/v1/service-orders/{oid}/timers", headers=_h("platform_operator", "op"))
        pending = {t["rule"] for t in r.json()["items"] if t["state"] == "pending"}
        return rule in pending and pending

    await eventually(armed, timeout=30)
