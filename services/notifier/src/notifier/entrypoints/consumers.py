"""Order and SLA events → contact projection + message rows.

Each consumer applies everything one poll fetched in one transaction (the shared consumer's
batch form): the batch's rows are read up front (``handlers.known.preload``), then the
single-event handlers run for each event in log order and find them there; the inbox row
of every event is written in the same transaction, as for a single event."""
from __future__ import annotations

import logging

from sqlalchemy import select

from notifier.handlers.messages import (context, record, remember_merchant_phone, remember_transition, retract_stale,
                               stale_deadlines, stale_reason, write_messages)
from notifier.adapters.metrics import notifier_metrics
from notifier.handlers.known import add, flush, get, known, preload
from notifier.models import DeferredDeadline, OrderContact, SeenTransition
from notifier.domain.triggers import from_deadline, from_order_action
from shared.contracts.orders import ServiceOrderCreated, ServiceOrderTransitioned
from shared.consumer import batched
from shared.db import lock_names
from shared.contracts.sla import DeadlineFired
from shared.events import registry, to_builtins
from shared.runtime import Runtime

log = logging.getLogger(__name__)


def order_handlers(rt: Runtime):
    async def on_created(session, env, data: ServiceOrderCreated) -> None:
        now = rt.clock.now()
        contact = await get(session, OrderContact, data.order_id)
        if contact is None:
            add(session, OrderContact(
                order_id=data.order_id, number=data.number, merchant_id=data.merchant_id,
                customer_id=data.customer_id, customer_phone=data.customer_phone,
                return_address=data.return_address, updated_at=now), data.order_id)
        await remember_merchant_phone(session, data.merchant_id, data.merchant_contact_phone, now)
        if contact is None:
            await flush(session)
            await release_deferred(rt, session, data.order_id)

    async def on_transitioned(session, env, data: ServiceOrderTransitioned) -> None:
        now = rt.clock.now()
        snap = data.order
        await remember_transition(session, data.order_id, data.version, data.action, data.from_state, data.to_state,
                                  now)
        retracted = await retract_stale(session, data.order_id, data.version, data.action, data.from_state,
                                        data.to_state, now, occurred_at=data.occurred_at)
        if retracted:
            stale_deadlines(rt).labels("retracted").inc(retracted)
        contact = await get(session, OrderContact, data.order_id)
        address = data.details.get("return_address") or snap.return_address
        if contact is None:
            add(session, OrderContact(
                order_id=data.order_id, number=data.number, merchant_id=snap.merchant_id,
                customer_id=snap.customer_id, customer_phone=snap.customer_phone, return_address=address,
                updated_at=now), data.order_id)
        else:
            contact.customer_phone = snap.customer_phone
            if address and address != contact.return_address:  # unchanged: no UPDATE for every transition
                contact.return_address, contact.updated_at = address, now
        await flush(session)
        await remember_merchant_phone(
            session, snap.merchant_id, data.details.get("merchant_contact_phone") or snap.merchant_contact_phone, now)
        # deadlines that waited for the order, or for this version of it (armed at it)
        await release_deferred(rt, session, data.order_id)
        _, ctx = await context(session, data.order_id)
        for intent in from_order_action(data.action, data.number, data.details, ctx,
                                        from_state=data.from_state, to_state=data.to_state):
            await record(session, event_id=str(env.id), order_id=data.order_id, intent=intent,
                         customer_id=snap.customer_id, customer_phone=snap.customer_phone,
                         merchant_id=snap.merchant_id, now=now, metrics=notifier_metrics(rt))

    handlers = {"service_order.created": on_created, "service_order.transitioned": on_transitioned}

    async def many(session, events) -> None:
        await lock_orders(session, [data.order_id for _env, data in events])
        await preload(session, order_ids=[data.order_id for _env, data in events],
                      merchant_ids=[getattr(data, "merchant_id", None) or data.order.merchant_id
                                    for _env, data in events],
                      event_ids=[str(env.id) for env, _data in events])
        for env, data in events:
            await handlers[env.type](session, env, data)
        await write_messages(session)

    return {kind: batched(locked(one), many) for kind, one in handlers.items()}


async def notify_fired(rt: Runtime, session, event_id: str, data: DeadlineFired) -> None:
    """The messages of one fired deadline (its order known), unless the deadline is stale."""
    now = rt.clock.now()
    contact, ctx = await context(session, data.order_id)
    await remember_merchant_phone(session, contact.merchant_id, data.details.get("merchant_contact_phone"), now)
    await flush(session)
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
        await record(session, event_id=event_id, order_id=data.order_id, intent=intent,
                     customer_id=contact.customer_id, customer_phone=contact.customer_phone,
                     merchant_id=contact.merchant_id, now=now, deadline=(data.order_version, data.cancelled_by, data.fired_at),
                     metrics=notifier_metrics(rt))


async def release_deferred(rt: Runtime, session, order_id: str) -> int:
    """The order is known now (at a new version): the deadlines that waited for it, or for
    this version of it, notify. Returns how many were released."""
    k = known(session)
    if k is not None and _none_deferred(k, order_id):
        return 0
    rows = (await session.scalars(select(DeferredDeadline).where(DeferredDeadline.order_id == order_id)
                                  .order_by(DeferredDeadline.deferred_at, DeferredDeadline.event_id))).all()
    released = 0
    for row in rows:
        data = registry.data_from_builtins("sla.deadline_fired", 1, row.payload)
        if not await armed_version_seen(session, order_id, data.order_version):
            continue  # still waiting for the order's version the timer was armed at
        await session.delete(row)
        await notify_fired(rt, session, row.event_id, data)
        released += 1
    return released


async def armed_version_seen(session, order_id: str, version: int | None) -> bool:
    """Whether the order's events up to ``version`` (the one a timer was armed at) were
    applied here. Events of one order arrive in version order, so that version's row is
    enough; a fired deadline checked before it would be checked against a partial history.
    Every version of an order is one ``service_order.*`` event (version 1: created)."""
    if await get(session, OrderContact, order_id) is None:
        return False
    if version is None or version <= 1:
        return True
    return await get(session, SeenTransition, (order_id, version)) is not None


async def release_orphaned_deferred(rt: Runtime) -> int:
    """Deadlines whose order's version arrived without releasing them: a safety net (the
    consumers lock the order, so one sees what the other committed), run on the dispatcher's
    tick, under the same lock."""
    async with rt.sessions() as session:
        orders = (await session.scalars(
            select(DeferredDeadline.order_id).join(OrderContact, OrderContact.order_id == DeferredDeadline.order_id)
            .distinct())).all()
    released = 0
    for order_id in orders:
        try:
            async with rt.uow() as session:
                await lock_orders(session, [order_id])
                released += await release_deferred(rt, session, order_id)
                await write_messages(session)
        except Exception:  # noqa: BLE001 - released by the other party meanwhile; retried next tick
            log.info("deferred deadline release raced; retried next tick", extra={"order_id": order_id})
    if released:
        log.info("released deferred deadlines of known orders", extra={"deadlines": released})
    return released


def sla_handlers(rt: Runtime):
    async def on_fired(session, env, data: DeadlineFired) -> None:
        if not await armed_version_seen(session, data.order_id, data.order_version):
            # the order's own events up to the version the timer was armed at have not arrived
            # yet (they travel on another topic): wait for them rather than send a message
            # without the order's number, or one the transitions after that version cancel
            if await session.get(DeferredDeadline, str(env.id)) is None:
                session.add(DeferredDeadline(event_id=str(env.id), order_id=data.order_id,
                                             payload=to_builtins(data), deferred_at=rt.clock.now()))
                k = known(session)
                if k is not None:
                    k.deferred_orders.add(data.order_id)
            log.info("deadline deferred until the order is known at the version it was armed at",
                     extra={"order_id": data.order_id, "rule": data.rule, "armed_version": data.order_version})
            return
        await notify_fired(rt, session, str(env.id), data)

    async def many(session, events) -> None:
        await lock_orders(session, [data.order_id for _env, data in events])
        # fired deadlines retract nothing: their orders' deadline messages are not read
        await preload(session, order_ids=[data.order_id for _env, data in events], merchant_ids=(),
                      event_ids=[str(env.id) for env, _data in events], retractable=False)
        for env, data in events:
            await on_fired(session, env, data)
        await write_messages(session)

    return {"sla.deadline_fired": batched(locked(on_fired), many)}


LOCK_SCOPE = "notifier.order"


async def lock_orders(session, order_ids) -> None:
    """Serialise this transaction with the others touching the same orders.

    The order consumer retracts live deadline messages a transition cancels; the deadline
    consumer checks the order's transitions before it writes a message. Run side by side,
    each could read before the other committed: the deadline's message would be written
    after the transition's check and never retracted. Both take the orders' locks first."""
    await lock_names(session, LOCK_SCOPE, order_ids)


def locked(one):
    """The single-event form of a handler, taking its order's lock first and writing its messages last."""
    async def handler(session, env, data) -> None:
        await lock_orders(session, [data.order_id])
        await one(session, env, data)
        await write_messages(session)
    return handler


def _none_deferred(k, order_id: str) -> bool:
    """The batch read the order's deferred deadlines up front and there were none (nor added since)."""
    return order_id in k.orders and order_id not in k.deferred_orders
