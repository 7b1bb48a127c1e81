"""Applying for service (docs/lifecycle.md § 1): the stored facts, the domain's decision, and
the new order with its timeline entry and event stored together, only if no other application
for the same sales-order line was stored since the facts were read (its version,
adapters/store.py); if one was, the application is decided again on fresh facts."""
from __future__ import annotations

import hashlib

from orders.adapters.metrics import orders_metrics
from orders.adapters.store import Collided
from orders.domain.application import decide_application
from orders.domain.decisions import Order
from orders.handlers.events import created_event
from orders.schemas import ApplicationIn
from shared.auth import Principal
from shared.errors import ApiError
from shared.runtime import Runtime

# A collision (another application for the line stored meanwhile, the same key raced in, an
# order number taken) is decided again on fresh facts, which then hold the winner's order. Within
# a process, applications for one line take turns and do not collide: a collision needs another
# replica applying for the same line at the same instant, and every collision means one of the
# competing applications was stored, so a request loses at most once per competitor. This many
# times at most (then 409 ``application_conflict``): more than any realistic crowd of replicas
# applying for one line at once, and each attempt is two round trips.
ATTEMPTS = 32


def request_hash(body: ApplicationIn) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


async def apply_for_service(rt: Runtime, p: Principal, body: ApplicationIn,
                            idempotency_key: str) -> tuple[Order, bool]:
    """Create a service order; returns (order, created). A retry with the same key returns the first order."""
    if p.customer_id != body.customer_id:
        raise ApiError(403, "customer_mismatch", "X-Customer-Id must name the customer who applies")
    now = rt.clock.now()
    digest = request_hash(body)
    for _ in range(ATTEMPTS):
        try:
            return await _apply_once(rt, body, idempotency_key, digest, now)
        except Collided:
            continue
    raise ApiError(409, "application_conflict", "the application collided with another one; send it again")


async def _apply_once(rt: Runtime, body: ApplicationIn, idempotency_key: str, digest: str, now):
    async with rt.order_store.application(body.sales_order_id, body.order_line_id) as unit:
        facts = await unit.application_facts(body, idempotency_key)
        application = decide_application(body, facts, idempotency_key=idempotency_key, digest=digest, now=now,
                                         windows=rt.settings.eligibility_windows,
                                         platform_return_address=rt.settings.platform_return_address)
        if application.created:
            await unit.create(application, [created_event(rt.name, application.order, now)])
    if application.created:  # committed: the order's first transition
        orders_metrics(rt).transition("", application.order.state, "apply")
    return application.order, application.created
