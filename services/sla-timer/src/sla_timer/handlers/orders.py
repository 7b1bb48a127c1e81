"""Order events → timers started and cancelled (one transaction per event, in the
idempotent consumer: a redelivered event has no effect)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.orders import ServiceOrderCreated, ServiceOrderTransitioned
from shared.runtime import Runtime
from sla_timer.domain.rules import facts_of_created, facts_of_transition, rules_cancelled, rules_started
from sla_timer.domain.schedule import due_at, pick_policy
from sla_timer.handlers.policies import Policies
from sla_timer.models import Timer


async def start_timers(session: AsyncSession, policies: Policies, *, facts: set[str], order_id: str, version: int,
                       state: str, merchant_id: str, category: str, problem_type: str, at: datetime,
                       now: datetime, extra: dict | None = None) -> int:
    pol = await policies.current(session)
    rows = []
    for rule in rules_started(facts, problem_type):
        policy = pick_policy(pol.overrides, rule.name, merchant_id, category)
        if policy is not None and not policy.enabled:
            continue
        rows.append({
            "id": str(uuid.uuid4()), "order_id": order_id, "rule": rule.name, "action": rule.action,
            "details": {**rule.details, **(extra or {})}, "state": "pending",
            "due_at": due_at(rule, at, pol.calendar, policy), "order_version": version, "order_state": state,
            "created_at": now,
        })
    if rows:
        await session.execute(insert(Timer), rows)
    return len(rows)


async def cancel_timers(session: AsyncSession, *, facts: set[str], order_id: str, reason: str, now: datetime) -> None:
    names = rules_cancelled(facts)
    if not names:
        return
    await session.execute(
        update(Timer)
        .where(Timer.order_id == order_id, Timer.state == "pending", Timer.rule.in_(names))
        .values(state="cancelled", cancelled_at=now, cancelled_by=reason)
        .execution_options(synchronize_session=False)
    )


def order_handlers(rt: Runtime):
    policies: Policies = rt.sla_policies  # type: ignore[attr-defined]
    wake = rt.sla_wake  # type: ignore[attr-defined]

    async def on_created(session, env, data: ServiceOrderCreated) -> None:
        n = await start_timers(session, policies, facts=facts_of_created(), order_id=data.order_id,
                               version=data.version, state=data.state, merchant_id=data.merchant_id,
                               category=data.category, problem_type=data.problem_type, at=data.created_at,
                               now=rt.clock.now())
        if n:
            wake()

    async def on_transitioned(session, env, data: ServiceOrderTransitioned) -> None:
        facts = facts_of_transition(data.action, data.from_state, data.to_state)
        now = rt.clock.now()
        # Cancel first: an action may end one round of a rule and start the next.
        await cancel_timers(session, facts=facts, order_id=data.order_id, reason=data.action, now=now)
        extra = {}
        if data.action == "fill_shipment" and data.order.merchant_contact_phone:
            extra["merchant_contact_phone"] = data.order.merchant_contact_phone
        n = await start_timers(session, policies, facts=facts, order_id=data.order_id, version=data.version,
                               state=data.to_state, merchant_id=data.order.merchant_id,
                               category=data.order.category, problem_type=data.order.problem_type,
                               at=data.occurred_at, now=now, extra=extra)
        if n:
            wake()

    return {"service_order.created": on_created, "service_order.transitioned": on_transitioned}
