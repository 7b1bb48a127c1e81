"""Order and SLA events → contact projection + message rows."""
from __future__ import annotations

import logging

from notifier.handlers import context, record, remember_merchant_phone, remember_transition, stale_deadlines, \
    stale_reason
from notifier.models import OrderContact
from notifier.triggers import from_deadline, from_order_action
from shared.contracts.orders import ServiceOrderCreated, ServiceOrderTransitioned
from shared.contracts.sla import DeadlineFired
from shared.runtime import Runtime

log = logging.getLogger(__name__)


def order_handlers(rt: Runtime):
    async def on_created(session, env, data: ServiceOrderCreated) -> None:
        now = rt.clock.now()
        contact = await session.get(OrderContact, data.order_id)
        if contact is None:
            session.add(OrderContact(
                order_id=data.order_id, number=data.number, merchant_id=data.merchant_id,
                customer_id=data.customer_id, customer_phone=data.customer_phone,
                return_address=data.return_address, updated_at=now))
        await remember_merchant_phone(session, data.merchant_id, data.merchant_contact_phone, now)

    async def on_transitioned(session, env, data: ServiceOrderTransitioned) -> None:
        now = rt.clock.now()
        snap = data.order
        await remember_transition(session, data.order_id, data.version, data.action, data.from_state, data.to_state,
                                  now)
        contact = await session.get(OrderContact, data.order_id)
        address = data.details.get("return_address") or snap.return_address
        if contact is None:
            session.add(OrderContact(
                order_id=data.order_id, number=data.number, merchant_id=snap.merchant_id,
                customer_id=snap.customer_id, customer_phone=snap.customer_phone, return_address=address,
                updated_at=now))
        else:
            contact.customer_phone = snap.customer_phone
            if address:
                contact.return_address, contact.updated_at = address, now
        await session.flush()
        await remember_merchant_phone(
            session, snap.merchant_id, data.details.get("merchant_contact_phone") or snap.merchant_contact_phone, now)
        _, ctx = await context(session, data.order_id)
        for intent in from_order_action(data.action, data.number, data.details, ctx,
                                        from_state=data.from_state, to_state=data.to_state):
            await record(session, event_id=str(env.id), order_id=data.order_id, intent=intent,
                         customer_id=snap.customer_id, customer_phone=snap.customer_phone,
                         merchant_id=snap.merchant_id, now=now)

    return {"service_order.created": on_created, "service_order.transitioned": on_transitioned}


def sla_handlers(rt: Runtime):
    async def on_fired(session, env, data: DeadlineFired) -> None:
        now = rt.clock.now()
        contact, ctx = await context(session, data.order_id)
        if contact is not None:
            await remember_merchant_phone(session, contact.merchant_id,
                                          data.details.get("merchant_contact_phone"), now)
            await session.flush()
        intents = from_deadline(data.action, data.rule, data.details, ctx)
        if not intents:
            return
        # A deadline the timer fired before it saw the transition that cancels it: the
        # customer already shipped, the merchant already decided... nobody is reminded.
        stale = await stale_reason(session, data.order_id, data.order_version, data.cancelled_by)
        if stale is not None:
            log.info("stale deadline: no message", extra={"order_id": data.order_id, "rule": data.rule,
                                                          "timer_id": data.timer_id, "reason": stale})
            stale_deadlines(rt).labels("event").inc()
            return
        for intent in intents:
            await record(session, event_id=str(env.id), order_id=data.order_id, intent=intent,
                         customer_id=contact.customer_id if contact else None,
                         customer_phone=contact.customer_phone if contact else None,
                         merchant_id=contact.merchant_id if contact else None, now=now,
                         deadline=(data.order_version, data.cancelled_by))

    return {"sla.deadline_fired": on_fired}
