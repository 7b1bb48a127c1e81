"""Consumer of the SLA timer's fired deadlines: auto-refund, advance compensation,
feedback/ship-back auto-close, auto-confirm.

Applied exactly once (the inbox records the event id in this same transaction)
and only if the order is still where the timer was set: the table must allow the
system action from the current state, and the timer must belong to the latest
arming of that deadline (``order_version`` ≥ the version of the transition that
armed it). A deadline for a state the order has since left, or a stale timer of
an earlier round (e.g. a second feedback request), is ignored. Auto-refund keeps
running through receipt registration (docs/deadlines.md: only a processing decision,
arbitration or abandon cancel it), so the current state, not the timer's, decides.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from orders.adapters.session_store import SessionUnit
from orders.domain.decisions import Actor, Order, conflict
from orders.domain.states import DEADLINE_EFFECTS, TRANSITIONS
from orders.handlers.lifecycle import decide_and_commit
from orders.models import TimelineEntry
from shared.consumer import only_when
from shared.contracts.sla import DeadlineFired

log = logging.getLogger(__name__)

ARM_KEY = {
    "system.advance_compensation": lambda state: "advance_compensation",
    "system.auto_refund": lambda state: "auto_refund",
    "system.auto_confirm": lambda state: "auto_confirm",
    "system.auto_close": lambda state: "feedback" if state == "awaiting_customer_feedback" else "ship_back",
}


def applies(order: Order, fired: DeadlineFired) -> str | None:
    """Our action for this fired deadline, or None when it no longer applies."""
    action = DEADLINE_EFFECTS.get(fired.action)
    if action is None or (order.state, action) not in TRANSITIONS:
        return None
    armed_at = (order.armed or {}).get(ARM_KEY[action](order.state))
    if armed_at is None or fired.order_version < armed_at:
        return None
    return action


def facts_of(entry_action: str, from_state: str, to_state: str, details: dict | None) -> set[str]:
    """The facts a timeline entry stands for, as the timer service names them in a rule's
    ``cancelled_by`` (``action:<a>``, ``state:<s>``, an arbitrator's ``outcome:<o>``)."""
    facts = {f"action:{entry_action}"}
    if to_state != from_state:
        facts.add(f"state:{to_state}")
    if entry_action == "arbitration.decide" and details and isinstance(details.get("outcome"), str):
        facts.add(f"outcome:{details['outcome']}")
    return facts


async def cancelled_since(session, fired: DeadlineFired) -> bool:
    """Whether the order's own history, after the version the timer was armed for, holds a
    fact that cancels the timer's rule (the timer fired before it saw that transition)."""
    if not fired.cancelled_by:
        return False
    cancelling = set(fired.cancelled_by)
    rows = (await session.execute(
        select(TimelineEntry.action, TimelineEntry.from_state, TimelineEntry.to_state, TimelineEntry.details)
        .where(TimelineEntry.order_id == fired.order_id, TimelineEntry.version > fired.order_version))).all()
    return any(facts_of(*r) & cancelling for r in rows)


def deadline_handlers(rt):
    async def on_fired(session, env, data: DeadlineFired) -> None:
        # the consumer's transaction (its inbox record included): the session adapter of the store
        unit = SessionUnit(session, rt.outbox)
        order = await unit.load_fresh(data.order_id)
        if order is None:
            return
        if await cancelled_since(session, data):
            log.info("deadline cancelled by a later transition (stale timer)",
                     extra={"order_id": data.order_id, "rule": data.rule, "timer_version": data.order_version})
            return
        action = applies(order, data)
        if action is None:
            log.info("deadline no longer applies", extra={"order_id": data.order_id, "rule": data.rule,
                                                          "state": order.state})
            return
        # A racing merchant decision bumps the version: the 409 rolls this back, the consumer
        # redelivers, and the re-check above finds it moot.
        actor = Actor("system", f"timer:{data.rule}", "system")
        if await decide_and_commit(rt, unit, order, action, {"rule": data.rule, "timer_id": data.timer_id},
                                   actor, rt.clock.now()) is None:
            raise conflict()

    # Reminders, escalations, breaches and penalties (most fired deadlines) are other services'
    # business: skipped by the consumer before any read or inbox row.
    return {"sla.deadline_fired": only_when(acts_on, on_fired)}


def acts_on(fired: DeadlineFired) -> bool:
    """Whether the orders service has an action for this fired deadline's rule at all."""
    return fired.action in DEADLINE_EFFECTS


__all__ = ["acts_on", "deadline_handlers", "applies"]
