"""Performing an action on a service order (docs/lifecycle.md § 2, § 6): load, the domain
decides once, the order store commits the decision and its events in one transaction."""
from __future__ import annotations

from datetime import datetime

from orders.adapters.metrics import orders_metrics
from orders.adapters.store import OrderUnit
from orders.domain.access import can_see, check_action, not_found, party_of
from orders.domain.decisions import Actor, Decision, Order, conflict, decide, facts_needed
from orders.handlers.events import decision_events
from shared.auth import Principal
from shared.errors import ApiError


def actor_of(p: Principal) -> Actor:
    return Actor(p.role, p.customer_id if p.role == "storefront" else p.subject, party_of(p))


async def decide_and_commit(rt, unit: OrderUnit, order: Order, action: str, data: dict, actor: Actor,
                            now: datetime, expected_version: int | None = None) -> Decision | None:
    """The decision on ``order`` committed through ``unit``; None when the order was no longer at
    the version it was decided on (nothing written)."""
    facts = await unit.facts(order, facts_needed(action, data))
    decision = decide(order, action, data, actor, facts, now, expected_version=expected_version)
    for key, content in decision.blobs:  # attachments: stored before the rows that name them
        await rt.blobstore.put(key, content)
    if not await unit.commit(decision, decision_events(rt.name, decision)):
        return None
    metrics = orders_metrics(rt)
    unit.after_commit(lambda: metrics.transition(decision.from_state, decision.order.state, decision.action))
    return decision


async def perform(rt, p: Principal, order_id: str, action: str, data: dict,
                  expected_version: int | None = None) -> Order:
    """``p`` performs ``action``: the order as it is afterwards, or ApiError (404 not visible,
    403/409 by the access rules, 409 version_conflict, the rules' 422/409)."""
    now = rt.clock.now()
    actor = actor_of(p)
    async with rt.order_store.transition() as unit:
        order, maybe_stale = await unit.load(order_id)
        while True:
            try:
                if order is None or not can_see(p, order):
                    raise not_found(order_id)
                check_action(p, order, action)
                decision = await decide_and_commit(rt, unit, order, action, data, actor, now, expected_version)
                if decision is not None:
                    return decision.order
                if not maybe_stale:
                    raise conflict()
            except ApiError:
                if not maybe_stale:
                    raise
            # decided on a kept copy that may be stale: decide again on the stored order
            order, maybe_stale = await unit.load_fresh(order_id), False


async def perform_batch(rt, p: Principal, order_ids: list[str], action: str, data: dict) -> list[dict]:
    """Each order in its own transaction: one failure does not undo the others."""
    results = []
    for oid in order_ids:
        try:
            o = await perform(rt, p, oid, action, data)
            results.append({"id": oid, "ok": True, "state": o.state, "version": o.version})
        except ApiError as e:
            results.append({"id": oid, "ok": False, "error": {"code": e.code, "message": e.message}})
    return results
