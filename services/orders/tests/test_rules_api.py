"""docs/lifecycle.md rules through the HTTP API (errors, modes, attachments, arbitration, records)."""
import asyncio
import base64
from datetime import timedelta

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"
P = "/v1/platform/service-orders"


def b64(n: int) -> str:
    return base64.b64encode(b"x" * n).decode()


async def claimed(api, w, **kw):
    o = await api.apply(w["sf"], **kw)
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    return o["id"]


async def shipped(api, w, **kw):
    oid = await claimed(api, w, **kw)
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return"})
    await api.post(f"{S}/{oid}/shipment", api.cust(w["sf"]), {"carrier": "SF", "tracking_number": "T" + oid[:6],
                                                             "freight_paid": "10.00"})
    return oid


async def count_orders(api) -> int:
    from sqlalchemy import func, select

    from orders.models import ServiceOrder
    async with api.rt.sessions() as s:
        return await s.scalar(select(func.count()).select_from(ServiceOrder))


async def test_idempotent_apply_and_refused_applications_store_nothing(api, world):
    sf = api.cust(world["sf"])
    body = api.apply_body()
    r1 = await api.client.post(S, json=body, headers={**sf, "Idempotency-Key": "same"})
    r2 = await api.client.post(S, json=body, headers={**sf, "Idempotency-Key": "same"})
    assert (r1.status_code, r2.status_code) == (201, 200) and r1.json()["id"] == r2.json()["id"]
    late = api.apply_body(problem_type="no_reason", service_type="return",
                          delivered_at=(api.clock.now() - timedelta(days=8)).isoformat())
    r = await api.client.post(S, json=late, headers={**sf, "Idempotency-Key": "late"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "window_expired"
    too_many = api.apply_body(sales_order_id=body["sales_order_id"], quantity=1, purchased_quantity=1)
    r = await api.client.post(S, json=too_many, headers={**sf, "Idempotency-Key": "more"})
    assert r.json()["error"]["code"] == "quantity_exceeds_available"
    other = api.cust(world["sf"], "c-2")
    r = await api.client.post(S, json=api.apply_body(), headers={**other, "Idempotency-Key": "x"})
    assert r.status_code == 403
    assert await count_orders(api) == 1


async def test_attachments_limits_and_never_shown_to_customer(api, world):
    w = world
    oid = await claimed(api, w)
    four = [{"filename": f"{i}.jpg", "content_base64": b64(10)} for i in range(4)]
    r = await api.client.post(f"{M}/{oid}/audit", headers=w["staff"], json={"decision": "approve_return", "attachments": four})
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_attachments"
    big = [{"filename": "big.jpg", "content_base64": b64(800 * 1024)}]
    r = await api.client.post(f"{M}/{oid}/audit", headers=w["staff"], json={"decision": "approve_return", "attachments": big})
    assert r.json()["error"]["code"] == "attachment_too_large"
    ok = [{"filename": "a.jpg", "content_type": "image/jpeg", "content_base64": b64(800 * 1024 - 1)}]
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return", "opinion": "ok", "attachments": ok})
    att = (await api.client.get(f"{M}/{oid}", headers=w["staff"])).json()["attachments"][0]
    got = await api.client.get(f"{M}/{oid}/attachments/{att['id']}", headers=w["main"])
    assert got.status_code == 200 and len(got.content) == 800 * 1024 - 1
    mine = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"]))).json()
    assert "attachments" not in mine and mine["audit_opinion"] == "ok"
    assert all("internal_note" not in t for t in mine["timeline"])


async def test_batch_audit_only_reject_or_abandon(api, world):
    w = world
    ids = [await claimed(api, w) for _ in range(2)]
    r = await api.client.post(f"{M}/batch-audit", headers=w["staff"], json={"order_ids": ids, "decision": "approve_return"})
    assert r.status_code == 422
    res = await api.post(f"{M}/batch-audit", w["staff"], {"order_ids": ids + ["nope"], "decision": "reject"})
    assert [x["ok"] for x in res["results"]] == [True, True, False]


async def test_abandon_on_behalf_needs_note_and_not_after_provisional(api, world):
    w = world
    oid = await claimed(api, w)
    r = await api.client.post(f"{M}/{oid}/abandon", headers=w["staff"], json={})
    assert r.json()["error"]["code"] == "note_required"
    v = await api.post(f"{M}/{oid}/abandon", w["staff"], {"note": "customer called, no longer needed"})
    assert v["state"] == "abandoned"
    mine = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"]))).json()
    assert "customer called" not in str(mine)
    o2 = await claimed(api, w)
    await api.post(f"{M}/{o2}/audit", w["staff"], {"decision": "resend_without_return", "sku": "sku-1"})
    r = await api.client.post(f"{S}/{o2}/abandon", headers=api.cust(w["sf"]), json={})
    assert r.status_code == 409


async def test_freight_payer_and_edit_locked_after_arbitration(api, world):
    w = world
    # quality → merchant pays: the declared 10.00 is returned
    q = await shipped(api, w)
    assert (await api.client.get(f"{M}/{q}", headers=w["main"])).json()["freight_to_return"] == "10.00"
    # no_reason, regular customer → customer pays; diamond → platform pays
    n = await shipped(api, w, problem_type="not_as_described")
    assert (await api.client.get(f"{M}/{n}", headers=w["main"])).json()["freight_to_return"] == "0.00"
    d = await shipped(api, w, problem_type="not_as_described", customer_level="diamond")
    dv = (await api.client.get(f"{M}/{d}", headers=w["main"])).json()
    assert dv["return_freight_payer"] == "platform" and dv["freight_to_return"] == "10.00"
    await api.post(f"{M}/{q}/freight", w["staff"], {"freight_to_return": "15.00"})
    await api.post(f"{S}/{q}/arbitration", api.cust(w["sf"]), {"reason": "slow"})
    # locked: the merchant may register receipt, nothing else
    r = await api.client.post(f"{M}/{q}/freight", headers=w["staff"], json={"freight_to_return": "1.00"})
    assert r.status_code == 409
    v = await api.post(f"{M}/{q}/receipt", w["staff"], {"condition": "ok"})
    assert v["state"] == "arbitration" and v["locked_from"] == "pending_process" and v["freight_to_return"] == "15.00"
    r = await api.client.post(f"{M}/{q}/process", headers=w["staff"], json={"decision": "repair"})
    assert r.status_code == 409
    r = await api.client.post(f"{P}/{q}/arbitration-decision", headers=w["op"], json={"outcome": "reject", "note": "x"})
    assert r.status_code == 403
    r = await api.client.post(f"{P}/{q}/arbitration-decision", headers=w["arb"],
                              json={"outcome": "refund", "amount": "214.01", "note": "binding"})
    assert r.json()["error"]["code"] == "refund_exceeds_paid"
    v = await api.post(f"{P}/{q}/arbitration-decision", w["arb"], {"outcome": "refund", "amount": "214.00", "note": "binding"})
    assert v["state"] == "completed" and v["refunded_amount"] == "214.00"
    queue = (await api.client.get("/v1/platform/arbitration", headers=w["arb"])).json()
    assert queue["total"] == 0


async def test_cancel_return_original_and_unresolved_paths(api, world):
    w = world
    oid = await shipped(api, w)
    await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "fine"})
    r = await api.client.post(f"{M}/{oid}/process", headers=w["staff"], json={"decision": "return_original", "note": "x"})
    assert r.json()["error"]["code"] == "customer_agreement_required"
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "return_original", "note": "agreed on phone",
                                                      "customer_agreed_by_phone": True})
    v = await api.post(f"{M}/{oid}/cancel-outcome", w["staff"], {"note": "customer changed mind"})
    assert v["state"] == "pending_process"
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "repair", "note": "fix screen"})
    await api.post(f"{M}/{oid}/cancel-outcome", w["staff"], {}, status=409)
    v = await api.post(f"{S}/{oid}/messages", api.cust(w["sf"]), {"text": "still broken"})
    assert v["state"] == "unresolved"
    await api.post(f"{M}/{oid}/replies", w["staff"], {"text": "we will call you"})
    await api.post(f"{S}/{oid}/messages", api.cust(w["sf"]), {"text": "ok"})
    v = await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "offline_exchange", "tracking_number": "YT1",
                                                          "note": "new unit sent"})
    assert v["state"] == "completed"
    await api.post(f"{S}/{oid}/rating", api.cust(w["sf"]), {"stars": 4})
    await api.post(f"{S}/{oid}/rating", api.cust(w["sf"]), {"stars": 4}, status=409)


async def test_remind_to_ship_is_rate_limited(api, world):
    w = world
    oid = await claimed(api, w)
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return"})
    await api.post(f"{M}/{oid}/remind-to-ship", w["staff"])
    r = await api.client.post(f"{M}/{oid}/remind-to-ship", headers=w["staff"], json={})
    assert r.status_code == 429
    api.clock.advance(timedelta(hours=24))
    await api.post(f"{M}/{oid}/remind-to-ship", w["staff"])


async def test_modes_decide_who_does_each_step(api, world):
    w = world
    cc = await api.merchant(w["op"], "m-cc", mode="customer_contact")
    o = await api.apply(w["sf"], merchant_id="m-cc")
    oid = o["id"]
    await api.post(f"{M}/{oid}/claim", cc)
    await api.post(f"{M}/{oid}/audit", cc, {"decision": "approve_return"})
    await api.post(f"{S}/{oid}/shipment", api.cust(w["sf"]), {"carrier": "SF", "tracking_number": "9"})
    r = await api.client.post(f"{M}/{oid}/receipt", headers=cc, json={"condition": "ok"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    await api.post(f"{P}/{oid}/receipt", w["op"], {"condition": "warehouse: ok"})
    v = await api.post(f"{M}/{oid}/process", cc, {"decision": "refund", "amount": "199.00", "reason": "q"})
    ev = [e for e in await api.events(oid) if e["type"] == "service_order.transitioned"][-1]["data"]
    assert ev["details"]["executed_by"] == "platform" and ev["details"]["disposal"] == "rma_to_manufacturer"
    assert v["state"] == "provisionally_completed"
    # platform mode (and a merchant the platform serves on its behalf): the merchant only views
    await api.merchant(w["op"], "m-pl", mode="pop_self_service", served_by_platform=True)
    p = await api.apply(w["sf"], merchant_id="m-pl")
    assert p["id"]
    main_pl = None
    r = await api.client.post(f"{P}/{p['id']}/claim", headers=w["op"], json={})
    assert r.status_code == 200 and r.json()["mode"] == "platform"
    evs = await api.events(p["id"])
    assert evs[0]["data"]["on_behalf"] is True
    assert main_pl is None


async def test_two_claims_at_once_exactly_one_wins(api, world):
    w = world
    o = await api.apply(w["sf"])
    bob = await api.staff(w["main"], "bob")
    rs = await asyncio.gather(*(api.client.post(f"{M}/{o['id']}/claim", headers=h, json={}) for h in (w["staff"], bob)))
    assert sorted(r.status_code for r in rs) == [200, 409]
    v = (await api.client.get(f"{M}/{o['id']}", headers=w["main"])).json()
    assert v["version"] == 2 and [t["action"] for t in v["timeline"]].count("claim") == 1


async def test_if_match_version_conflict(api, world):
    w = world
    o = await api.apply(w["sf"])
    r = await api.client.post(f"{M}/{o['id']}/claim", headers={**w["staff"], "If-Match": "7"}, json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_conflict"


async def test_search_filters_pagination_and_counts(api, world):
    w = world
    ids = [(await api.apply(w["sf"]))["id"] for _ in range(3)]
    await api.post(f"{M}/{ids[0]}/claim", w["staff"])
    r = (await api.client.get(f"{M}?state=pending_claim&limit=1", headers=w["main"])).json()
    assert r["total"] == 2 and len(r["items"]) == 1
    assert r["counts_by_state"] == {"pending_claim": 2, "pending_audit": 1}
    r = (await api.client.get(f"{M}?handler_id=m-1.alice", headers=w["main"])).json()
    assert [i["id"] for i in r["items"]] == [ids[0]]
    other = await api.merchant(w["op"], "m-2")
    assert (await api.client.get(M, headers=other)).json()["total"] == 0
    assert (await api.client.get(f"{P}?merchant_id=m-1", headers=w["op"])).json()["total"] == 3


async def test_staff_limit_is_ten(api, world):
    for i in range(9):  # alice is the first
        await api.staff(world["main"], f"s{i}")
    r = await api.client.post("/v1/merchant/staff", headers=world["main"], json={
        "login": "eleventh", "name": "x", "permissions": ["audit"], "categories": ["phones"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "staff_limit"


async def test_token_endpoint_rejects_bad_secrets(api, world):
    r = await api.client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "op-1",
                                                       "client_secret": "wrong"})
    assert r.status_code == 401
    r = await api.client.get(M, headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await api.client.get(M, headers=world["sf"])
    assert r.status_code == 403


async def test_feedback_round_flags_customer_responded_and_progress_view(api, world):
    w = world
    oid = await claimed(api, w)
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "request_feedback", "opinion": "photo of the screen"})
    mine = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"]))).json()
    assert mine["current_handler"] == "customer" and mine["audit_opinion"] == "photo of the screen"
    assert mine["expected_completion"] == (api.clock.now() + timedelta(days=15)).isoformat()
    await api.post(f"{S}/{oid}/feedback", api.cust(w["sf"]), {"text": "attached", "evidence": ["img://9"]})
    listed = (await api.client.get(f"{M}?customer_responded=true", headers=w["staff"])).json()
    assert [i["id"] for i in listed["items"]] == [oid]
    v = await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return", "opinion": "ok"})
    assert v["customer_responded"] is False
    # the merchant fills the shipment on the customer's behalf
    v = await api.post(f"{M}/{oid}/shipment", w["staff"], {"carrier": "SF", "tracking_number": "SF77"})
    assert v["state"] == "awaiting_receipt"
    found = (await api.client.get(f"{M}?tracking_number=SF77", headers=w["main"])).json()
    assert found["total"] == 1


async def test_platform_mode_platform_audits_merchant_only_views(api, world):
    w = world
    main = await api.merchant(w["op"], "m-p", mode="platform")
    o = await api.apply(w["sf"], merchant_id="m-p")
    r = await api.client.post(f"{M}/{o['id']}/claim", headers=main, json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    await api.post(f"{P}/{o['id']}/claim", w["op"])
    v = await api.post(f"{P}/{o['id']}/audit", w["op"], {"decision": "approve_return"})
    assert v["state"] == "awaiting_return_shipment"
    assert (await api.client.get(f"{M}/{o['id']}", headers=main)).status_code == 200


async def test_rejected_customer_may_apply_again_for_the_same_line(api, world):
    w = world
    first = await api.apply(w["sf"], sales_order_id="so-r")
    await api.post(f"{M}/{first['id']}/claim", w["staff"])
    r = await api.client.post(S, json=api.apply_body(sales_order_id="so-r"),
                              headers={**api.cust(w["sf"]), "Idempotency-Key": "again-1"})
    assert r.json()["error"]["code"] == "quantity_exceeds_available"
    await api.post(f"{M}/{first['id']}/audit", w["staff"], {"decision": "reject", "opinion": "no fault found"})
    r = await api.client.post(S, json=api.apply_body(sales_order_id="so-r"),
                              headers={**api.cust(w["sf"]), "Idempotency-Key": "again-2"})
    assert r.status_code == 201
