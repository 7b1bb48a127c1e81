"""Fired deadlines (sla.deadline_fired) applied once, only where the timer was set (docs/deadlines.md)."""
import uuid
from datetime import timedelta

from orders.handlers.deadlines import deadline_handlers
from shared.contracts.sla import DeadlineFired

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"


async def fire(api, order_id: str, action: str, version: int, state: str, rule: str = "r", cancelled_by=()):
    handler = deadline_handlers(api.rt)["sla.deadline_fired"]
    now = api.clock.now()
    data = DeadlineFired(timer_id=str(uuid.uuid4()), order_id=order_id, rule=rule, action=action,
                         order_version=version, order_state=state, due_at=now, fired_at=now,
                         cancelled_by=list(cancelled_by))
    async with api.rt.sessions() as s:
        async with s.begin():
            await handler(s, None, data)


async def view(api, w, oid):
    return (await api.client.get(f"{M}/{oid}", headers=w["main"])).json()


async def test_advance_compensation_refunds_goods_and_is_charged_to_merchant(api, world):
    o = await api.apply(world["sf"], purchased_quantity=2, amount_paid="398.00")
    api.clock.advance(timedelta(days=7))
    await fire(api, o["id"], "advance_compensation", 1, "pending_claim")
    v = await view(api, world, o["id"])
    assert v["state"] == "refunded_by_system" and v["refunded_amount"] == "199.00"
    ev = [e for e in await api.events(o["id"]) if e["type"] == "service_order.transitioned"][-1]["data"]
    assert ev["action"] == "system.advance_compensation" and ev["details"]["charged_to"] == "merchant"
    assert ev["details"]["completed_by"] == "system"
    # a second firing (another timer id) has no effect
    await fire(api, o["id"], "advance_compensation", 1, "pending_claim")
    assert (await view(api, world, o["id"]))["version"] == 2


async def _shipped_back(api, w) -> tuple[str, dict]:
    """An order approved for return whose customer has shipped it back: (id, view after shipping)."""
    o = await api.apply(w["sf"])
    oid = o["id"]
    await api.post(f"{M}/{oid}/claim", w["staff"])
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "approve_return"})
    return oid, await api.post(f"{S}/{oid}/shipment", api.cust(w["sf"]), {"carrier": "SF", "tracking_number": "1"})


async def test_a_stale_advance_compensation_is_ignored_after_the_order_came_back(api, world):
    """The chaos run: the 7-day timer fired at v2; the merchant asked for feedback (v3), the
    customer answered (v4) and the order is back in pending_audit — where an advance
    compensation would be allowed. The late event must not refund: the order's history after
    v2 holds an audit decision, which cancels the rule."""
    w = world
    o = await api.apply(w["sf"])
    oid = o["id"]
    await api.post(f"{M}/{oid}/claim", w["staff"])
    await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "request_feedback", "opinion": "photo?"})
    await api.post(f"{S}/{oid}/feedback", api.cust(w["sf"]), {"text": "here it is"})
    v = await view(api, w, oid)
    assert v["state"] == "pending_audit", v["state"]
    api.clock.advance(timedelta(days=7))
    cancelling = ["action:audit.request_feedback", "action:audit.approve_return", "action:abandon"]
    await fire(api, oid, "advance_compensation", 2, "pending_audit", rule="advance_compensation",
               cancelled_by=cancelling)
    assert (await view(api, w, oid))["state"] == "pending_audit"
    # without a cancelling fact after its version, the same deadline applies
    await fire(api, oid, "advance_compensation", v["version"], "pending_audit", rule="advance_compensation",
               cancelled_by=cancelling)
    assert (await view(api, w, oid))["state"] == "refunded_by_system"


async def test_advance_compensation_ignored_after_audit(api, world):
    w = world
    o = await api.apply(w["sf"])
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    await api.post(f"{M}/{o['id']}/audit", w["staff"], {"decision": "approve_return"})
    await fire(api, o["id"], "advance_compensation", 1, "pending_claim")
    assert (await view(api, w, o["id"]))["state"] == "awaiting_return_shipment"


async def test_auto_refund_survives_receipt_but_not_a_decision(api, world):
    w = world
    oid, v = await _shipped_back(api, w)
    armed = v["version"]
    await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "ok"})
    await fire(api, oid, "auto_refund", armed, "awaiting_receipt")
    v = await view(api, w, oid)
    assert v["state"] == "refunded_by_system" and v["refunded_amount"] == "199.00"


async def test_merchant_decision_wins_over_a_later_auto_refund(api, world):
    w = world
    oid, v = await _shipped_back(api, w)
    await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "ok"})
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "refund", "amount": "199.00", "reason": "q"})
    await fire(api, oid, "auto_refund", v["version"], "awaiting_receipt")
    v = await view(api, w, oid)
    assert v["state"] == "provisionally_completed" and v["refunded_amount"] == "199.00"


async def test_stale_feedback_timeout_of_an_earlier_round_is_ignored(api, world):
    w = world
    o = await api.apply(w["sf"])
    oid = o["id"]
    await api.post(f"{M}/{oid}/claim", w["staff"])
    v1 = await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "request_feedback", "opinion": "photo please"})
    await api.post(f"{S}/{oid}/feedback", api.cust(w["sf"]), {"text": "here", "evidence": ["img://1"]})
    v2 = await api.post(f"{M}/{oid}/audit", w["staff"], {"decision": "request_feedback", "opinion": "another"})
    await fire(api, oid, "auto_close", v1["version"], "awaiting_customer_feedback")
    assert (await view(api, w, oid))["state"] == "awaiting_customer_feedback"
    await fire(api, oid, "auto_close", v2["version"], "awaiting_customer_feedback")
    assert (await view(api, w, oid))["state"] == "closed"


async def test_ship_back_timeout_closes_and_auto_confirm_completes(api, world):
    w = world
    a, b = await api.apply(w["sf"]), await api.apply(w["sf"])
    for o in (a, b):
        await api.post(f"{M}/{o['id']}/claim", w["staff"])
    va = await api.post(f"{M}/{a['id']}/audit", w["staff"], {"decision": "approve_return"})
    vb = await api.post(f"{M}/{b['id']}/audit", w["staff"], {"decision": "resend_without_return", "sku": "sku-1"})
    await fire(api, a["id"], "auto_close", va["version"], "awaiting_return_shipment")
    await fire(api, b["id"], "auto_confirm", vb["version"], "provisionally_completed")
    assert (await view(api, w, a["id"]))["state"] == "closed"
    assert (await view(api, w, b["id"]))["state"] == "completed"


async def test_deadlines_never_touch_a_locked_order(api, world):
    w = world
    oid, v = await _shipped_back(api, w)
    await api.post(f"{S}/{oid}/arbitration", api.cust(w["sf"]), {"reason": "merchant silent"})
    await fire(api, oid, "auto_refund", v["version"], "awaiting_receipt")
    assert (await view(api, w, oid))["state"] == "arbitration"


async def test_merchant_refund_racing_auto_refund_ends_with_exactly_one_outcome(api, world):
    import asyncio

    from shared.errors import ApiError

    w = world
    oid, v = await _shipped_back(api, w)
    await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "ok"})

    async def timer():
        for _ in range(5):  # the consumer retries a handler that lost the version race
            try:
                return await fire(api, oid, "auto_refund", v["version"], "awaiting_receipt")
            except ApiError:
                await asyncio.sleep(0.01)

    merchant = api.client.post(f"{M}/{oid}/process", headers=w["staff"],
                               json={"decision": "refund", "amount": "150.00", "reason": "q", "remark": "part"})
    r, _ = await asyncio.gather(merchant, timer())
    final = await view(api, w, oid)
    refunds = [e for e in await api.events(oid) if e["type"] == "service_order.transitioned"
               and e["data"]["action"] in ("process.refund", "system.auto_refund")]
    assert len(refunds) == 1
    if r.status_code == 200:
        assert final["state"] == "provisionally_completed" and final["refunded_amount"] == "150.00"
    else:
        assert r.status_code == 409 and final["state"] == "refunded_by_system" and final["refunded_amount"] == "199.00"
