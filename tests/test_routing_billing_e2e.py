"""A billable consultation is counted once per consultation id, end to end (issue 14,
finding 3): the storefront names the consultation; two routing replicas (each remembers
only what it billed itself) both publish a billable event for it, with the same
consultation id, and KPI bills it once. An operator's what-if is never billed."""
from datetime import datetime, timedelta, timezone

from consultation_routing.parts import routing_of
from shared.testing import eventually
from tests.helpers import bearer, operator_headers, start_services

SHOP = bearer("storefront", "test-storefront")
OP = operator_headers()


async def _drained(svc) -> None:
    async def done():
        r = await svc.client.get("/admin/outbox", headers=OP)
        return r.json()["pending"] == 0 and routing_of(svc.runtime).publisher.buffered() == 0

    await eventually(done, timeout=30)


async def test_one_consultation_routed_on_two_replicas_is_billed_once(start_service, database_url, broker):
    kpi = (await start_services(start_service, database_url, broker, ["kpi"]))["kpi"]
    replicas = [(await start_services(start_service, database_url, broker, ["consultation-routing"]))
                ["consultation-routing"] for _ in range(2)]
    for r in replicas:
        # enrolled, but no agent ever online: every consultation goes to the platform on its behalf (billable)
        resp = await r.client.put("/v1/manufacturers/m-bill/enrollment", headers=OP, json={
            "name": "Maker", "categories": ["phones"], "im_queue_id": "q", "phone_extension": "8001"})
        assert resp.status_code == 200, resp.text
        resp = await r.client.post("/v1/catalogue/skus", headers={**OP, "content-type": "text/csv"},
                                   content=b"sku,manufacturer_id,category\nsku-b,m-bill,phones\n")
        assert resp.status_code == 200, resp.text
    month = (datetime.now(timezone.utc) + timedelta(hours=8)).strftime("%Y-%m")
    params = {"channel": "im", "entry_point": "product_page", "sku": "sku-b"}
    answers = []
    for r, cid in ((replicas[0], "cons-1"), (replicas[1], "cons-1"), (replicas[0], "cons-1"), (replicas[1], "cons-2")):
        resp = await r.client.get("/v1/route", params={**params, "consultation_id": cid}, headers=SHOP)
        assert resp.status_code == 200 and resp.json()["target"] == "platform", resp.text
        answers.append(resp.json()["decision_id"])
        # an operator's what-if at the same time: answered, never billed
        resp = await r.client.get("/v1/route", params={**params, "at": datetime.now(timezone.utc).isoformat()},
                                  headers=OP)
        assert resp.status_code == 200 and resp.json()["what_if"] is True
        await _drained(r)  # published in this order: one partition per manufacturer keeps it
    assert answers[0] == answers[1] == answers[2] != answers[3]

    async def billed():
        b = await kpi.client.get("/v1/billing", params={"manufacturer_id": "m-bill", "month": month}, headers=OP)
        lines = [x for x in b.json()["lines"] if x["item"].startswith("consultation")]
        return lines if lines and lines[0]["quantity"] >= 2 else None

    lines = await eventually(billed, timeout=30)
    # cons-2 came last: counted, so every event before it on the partition was applied
    assert [(x["item"], x["quantity"]) for x in lines] == [("consultation_package_1", 2)]
