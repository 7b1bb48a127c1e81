"""The progress view's expected completion is the deadline the sla-timer armed for the current
step (``sla.deadlines_armed``: overrides applied), not the default duration (issue 16, item 9).
The cross-service test (tests/test_expected_completion_e2e.py) runs it with the real sla-timer;
here the events are fed to the consumer's handler to pin down which arming counts."""
import uuid
from datetime import datetime, timedelta

from orders.handlers.armed_deadlines import armed_handlers
from shared.contracts.sla import ArmedDeadline, DeadlinesArmed

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"


async def armed(api, order_id: str, version: int, state: str, *deadlines: tuple[str, datetime], batch=False):
    handler = armed_handlers(api.rt)["sla.deadlines_armed"]
    data = DeadlinesArmed(order_id=order_id, order_version=version, order_state=state, deadlines=[
        ArmedDeadline(timer_id=str(uuid.uuid4()), rule=rule, action="x", due_at=due) for rule, due in deadlines])
    async with api.rt.sessions() as s, s.begin():
        if batch:
            await handler.many(s, [(None, data)])
        else:
            await handler(s, None, data)


async def expected(api, w, oid: str) -> datetime:
    v = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"]))).json()
    merchant = (await api.client.get(f"{M}/{oid}", headers=w["main"])).json()
    assert merchant["expected_completion"] == v["expected_completion"]  # the same for the merchant
    return datetime.fromisoformat(v["expected_completion"])


async def _approved(api, w) -> tuple[str, dict]:
    o = await api.apply(w["sf"])
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    return o["id"], await api.post(f"{M}/{o['id']}/audit", w["staff"], {"decision": "approve_return"})


async def test_the_armed_ship_back_deadline_is_the_expected_completion(api, world):
    oid, approved = await _approved(api, world)
    approved_at = api.clock.now()
    assert await expected(api, world, oid) == approved_at + timedelta(days=30)  # not reported yet: default
    await armed(api, oid, approved["version"], "awaiting_return_shipment",
                ("ship_back_timeout", approved_at + timedelta(days=20)),
                ("ship_back_reminder_1", approved_at + timedelta(days=5)))
    assert await expected(api, world, oid) == approved_at + timedelta(days=20)
    # a late copy of an older arming changes nothing
    await armed(api, oid, approved["version"] - 1, "awaiting_return_shipment",
                ("ship_back_timeout", approved_at + timedelta(days=3)), batch=True)
    assert await expected(api, world, oid) == approved_at + timedelta(days=20)


async def test_the_audit_deadline_armed_at_creation_counts_while_claimed(api, world):
    o = await api.apply(world["sf"])
    created = api.clock.now()
    await armed(api, o["id"], 1, "pending_claim", ("audit_deadline", created + timedelta(hours=6)), batch=True)
    assert await expected(api, world, o["id"]) == created + timedelta(hours=6)
    await api.post(f"{M}/{o['id']}/claim", world["staff"])
    assert await expected(api, world, o["id"]) == created + timedelta(hours=6)


async def test_a_deadline_of_an_earlier_stay_in_the_state_does_not_count(api, world):
    """Receipt arms the 48 h processing deadline; a cancelled return-original outcome brings the
    order back to pending_process, where nothing re-arms it: the default estimate, from then."""
    w = world
    oid, _ = await _approved(api, w)
    await api.post(f"{S}/{oid}/shipment", api.cust(w["sf"]), {"carrier": "SF", "tracking_number": "1"})
    received = await api.post(f"{M}/{oid}/receipt", w["staff"], {"condition": "ok"})
    await armed(api, oid, received["version"], "pending_process",
                ("processing_penalty", api.clock.now() + timedelta(hours=24)))
    assert await expected(api, w, oid) == api.clock.now() + timedelta(hours=24)
    await api.post(f"{M}/{oid}/process", w["staff"], {"decision": "return_original", "customer_agreed_by_phone": True,
                                                      "note": "agreed by phone"})
    api.clock.advance(timedelta(hours=5))
    back = await api.post(f"{M}/{oid}/cancel-outcome", w["staff"], {"note": "customer changed mind"})
    assert back["state"] == "pending_process"
    assert await expected(api, w, oid) == api.clock.now() + timedelta(hours=48)


async def test_a_deadline_armed_for_a_state_the_order_left_is_not_shown(api, world):
    oid, approved = await _approved(api, world)
    await armed(api, oid, approved["version"], "awaiting_return_shipment",
                ("ship_back_timeout", api.clock.now() + timedelta(days=20)))
    shipped = await api.post(f"{S}/{oid}/shipment", api.cust(world["sf"]), {"carrier": "SF", "tracking_number": "1"})
    assert shipped["state"] == "awaiting_receipt"
    assert await expected(api, world, oid) == api.clock.now() + timedelta(days=15)  # the auto-refund's default
