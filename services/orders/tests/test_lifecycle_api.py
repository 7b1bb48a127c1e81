"""The main paths of docs/lifecycle.md through the HTTP API."""
from datetime import timedelta


M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"


async def _to_pending_process(api, w, **apply):
    o = await api.apply(w["sf"], **apply)
    oid = o["id"]
    await api.post(f"{M}/{oid}/claim", w["staff"])
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return", "opinion": "please send it back"})
    await api.post(f"{S}/{oid}/shipment", api.cust(w["sf"]), {"carrier": "SF", "tracking_number": "SF1", "freight_paid": "12.00"})
    await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "screen cracked"})
    return oid


async def test_whole_lifecycle_with_one_timeline_entry_and_event_per_action(api, world):
    w = world
    oid = await _to_pending_process(api, w)
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "refund", "amount": "211.00", "reason": "quality"})
    await api.post(f"/v1/platform/service-orders/{oid}/refund-paid", w["staff"], {"payout_reference": "x"}, status=403)
    await api.post(f"/v1/platform/service-orders/{oid}/refund-paid", w["op"], {"payout_reference": "PAY-1"})
    await api.post(f"/v1/platform/service-orders/{oid}/refund-paid", w["op"], {"payout_reference": "PAY-1"}, status=409)
    await api.post(f"{S}/{oid}/confirm", api.cust(w["sf"]))
    view = await api.post(f"{S}/{oid}/rating", api.cust(w["sf"]), {"stars": 5, "text": "fast", "recommend": 9})
    assert view["state"] == "completed" and view["refunded_amount"] == "211.00"
    actions = ["claim", "audit.approve_return", "fill_shipment", "register_receipt", "process.refund", "refund.paid",
               "confirm", "rate"]
    events = [e for e in await api.events(oid) if e["type"] == "service_order.transitioned"]
    assert [e["data"]["action"] for e in events] == actions
    assert [e["data"]["version"] for e in events] == list(range(2, 10))
    refund = events[4]["data"]
    assert refund["details"]["amount"] == "211.00" and refund["details"]["completed_by"] == "merchant"
    assert events[1]["data"]["details"]["return_address"].startswith("Beijing")
    assert events[1]["data"]["order"]["merchant_contact_phone"] == "400-000-1234"
    assert events[7]["data"]["details"]["recommend"] == 9
    full = await api.client.get(f"{M}/{oid}", headers=w["main"])
    assert [t["action"] for t in full.json()["timeline"]] == ["apply", *actions]
    # the customer's view hides internal entries (claim)
    mine = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"]))).json()
    assert "claim" not in [t["action"] for t in mine["timeline"]]


async def test_refund_above_paid_plus_freight_is_422_and_changes_nothing(api, world):
    w = world
    oid = await _to_pending_process(api, w)
    r = await api.client.post(f"{M}/{oid}/process", headers=w["staff"],
                              json={"decision": "refund", "amount": "211.01", "reason": "quality"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "refund_exceeds_paid"
    view = (await api.client.get(f"{M}/{oid}", headers=w["staff"])).json()
    assert view["state"] == "pending_process" and view["version"] == 5


async def test_partial_refund_needs_a_remark(api, world):
    w = world
    oid = await _to_pending_process(api, w)
    r = await api.client.post(f"{M}/{oid}/process", headers=w["staff"],
                              json={"decision": "refund", "amount": "100.00", "reason": "quality"})
    assert r.json()["error"]["code"] == "remark_required"
    await api.post(f"{M}/{oid}/process", w["staff"],
                   {"decision": "refund", "amount": "100.00", "reason": "quality", "remark": "agreed half"})


async def test_action_not_allowed_in_state_is_409_with_allowed_actions(api, world):
    o = await api.apply(world["sf"])
    r = await api.client.post(f"{M}/{o['id']}/receipt", headers=world["staff"], json={"condition": "ok"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["details"]["state"] == "pending_claim" and "claim" in err["details"]["allowed_actions"]


async def test_other_merchant_sees_404_and_customer_never_sees_others(api, world):
    o = await api.apply(world["sf"])
    other = await api.merchant(world["op"], "m-2")
    assert (await api.client.get(f"{M}/{o['id']}", headers=other)).status_code == 404
    assert (await api.client.post(f"{M}/{o['id']}/claim", headers=other, json={})).status_code == 404
    assert (await api.client.get(f"{S}/{o['id']}", headers=api.cust(world["sf"], "c-9"))).status_code == 404
    assert (await api.client.get(f"{M}/{o['id']}")).status_code == 401


async def test_staff_without_audit_permission_gets_403(api, world):
    o = await api.apply(world["sf"])
    proc = await api.staff(world["main"], "bob", permissions=("process",))
    r = await api.client.post(f"{M}/{o['id']}/claim", headers=proc, json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "missing_permission"


async def test_staff_outside_category_does_not_see_the_order(api, world):
    o = await api.apply(world["sf"])
    tv = await api.staff(world["main"], "carol", categories=("tv",))
    assert (await api.client.get(f"{M}/{o['id']}", headers=tv)).status_code == 404


async def test_only_the_claimer_audits_and_assign_is_main_only(api, world):
    w = world
    o = await api.apply(w["sf"])
    dave = await api.staff(w["main"], "dave")
    r = await api.client.post(f"{M}/{o['id']}/assign", headers=dave, json={"staff_id": "m-1.dave"})
    assert r.status_code == 403
    await api.post(f"{M}/{o['id']}/assign", w["main"], {"staff_id": "m-1.dave"})
    r = await api.client.post(f"{M}/{o['id']}/audit", headers=w["staff"], json={"decision": "reject"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_handler"
    await api.post(f"{M}/{o['id']}/audit", dave, {"decision": "reject", "opinion": "out of policy"})


async def test_exchange_same_price_own_store_and_shipment_ends_clock(api, world):
    w = world
    oid = await _to_pending_process(api, w, service_type="exchange")
    r = await api.client.post(f"{M}/{oid}/process", headers=w["staff"], json={"decision": "exchange", "sku": "sku-3"})
    assert r.json()["error"]["code"] == "exchange_price_mismatch"
    r = await api.client.post(f"{M}/{oid}/process", headers=w["staff"], json={"decision": "exchange", "sku": "zz"})
    assert r.json()["error"]["code"] == "sku_not_in_store"
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "exchange", "sku": "sku-2"})
    api.clock.advance(timedelta(hours=5))
    await api.post(f"{M}/{oid}/exchange-shipment", w["staff"], {"carrier": "JD", "tracking_number": "JD9"})
    v = (await api.client.get(f"{M}/{oid}", headers=w["staff"])).json()
    assert v["exchange_orders"][0]["status"] == "shipped"
    evs = await api.events(oid)
    assert any(e["type"] == "exchange_order.created" and e["data"]["auto_approved"] for e in evs)
    shipped = [e for e in evs if e["type"] == "service_order.transitioned" and e["data"]["action"] == "exchange.shipped"]
    assert shipped[0]["data"]["details"]["shipping_seconds"] == 5 * 3600


async def test_resend_without_return_creates_exchange_order(api, world):
    w = world
    o = await api.apply(w["sf"])
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    await api.post(f"{M}/{o['id']}/audit", w["staff"], {"decision": "resend_without_return", "sku": "sku-2"})
    v = (await api.client.get(f"{M}/{o['id']}", headers=w["staff"])).json()
    assert v["state"] == "provisionally_completed" and v["exchange_orders"][0]["sku"] == "sku-2"
