"""What a batch of events reads up front: the rows its handlers look up one event at a
time, fetched with one SELECT per table for the whole batch (the shared consumer applies a
poll's events in one transaction: ``shared.consumer.batched``).

The handlers are the single-event ones; they ask through ``get``/``add`` here, which answer
from the batch's rows when the session carries them (``session.info[KEY]``) and go to the
database otherwise. What an event of the batch adds is noted as it is added, so a later event
of the same batch sees it as it would have after a flush: the batch's effect is the same as
applying its events one after another."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import select

from notifier.models import DeferredDeadline, MerchantContact, Message, OrderContact, SeenTransition
from shared.db import one_of

KEY = "notifier_known"
LIVE = ("delivered", "queued")  # the statuses a later transition may still retract
SEEN = True  # ``get(session, SeenTransition, key)`` of a transition read up front: it was seen


@dataclass
class Known:
    # (model, primary key) -> the row, or None when it does not exist
    rows: dict[tuple[type, Any], Any] = field(default_factory=dict)
    # order id -> its transitions seen (version, action, from_state, to_state), all of them
    transitions: dict[str, list[tuple[int, str, str, str]]] = field(default_factory=dict)
    # event id -> (recipient, template key) of its messages
    messages: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    # order id -> its messages of fired deadlines still live (what ``retract_stale`` looks at)
    deadline_messages: dict[str, list] = field(default_factory=dict)
    # the batch's orders, and among them those with deferred deadlines
    orders: set[str] = field(default_factory=set)
    deferred_orders: set[str] = field(default_factory=set)


def known(session) -> Known | None:
    return session.info.get(KEY)


async def get(session, model: type, key):
    k = known(session)
    if k is not None and (model, key) in k.rows:
        return k.rows[(model, key)]
    return await session.get(model, key)


def add(session, row, key) -> None:
    session.add(row)
    k = known(session)
    if k is not None:
        k.rows[(type(row), key)] = row


@dataclass
class LiveMessage:
    """A stored message of a fired deadline that a later transition may still retract: the
    columns that decide it (``retract_stale``), read as plain rows rather than ORM objects (an
    order batch reads a few hundred of them and retracts almost none)."""

    id: int
    order_id: str
    status: str
    channel: str
    deadline_version: int
    deadline_cancelled_by: list[str] | None
    deadline_fired_at: Any
    created_at: Any


async def deadline_messages(session, order_ids: list[str]) -> list[LiveMessage]:
    """The orders' messages of fired deadlines that a later transition may still retract."""
    rows = (await session.execute(
        select(Message.id, Message.order_id, Message.status, Message.channel, Message.deadline_version,
               Message.deadline_cancelled_by, Message.deadline_fired_at, Message.created_at)
        .where(one_of(session, Message.order_id, order_ids), Message.deadline_version.is_not(None),
               Message.status.in_(LIVE))
        .order_by(Message.id))).all()
    return [LiveMessage(*r) for r in rows]


async def preload(session, *, order_ids: Iterable[str], merchant_ids: Iterable[str | None],
                  event_ids: Iterable[str], retractable: bool = True) -> Known:
    """Read the batch's rows (its orders' contacts and transitions, their merchants' contacts,
    the messages of its events, which orders have deferred deadlines, and with
    ``retractable`` their live deadline messages, which only transitions retract) and attach
    them to ``session``."""
    k = Known()
    orders = sorted(set(order_ids))
    k.orders = set(orders)
    for oid in orders:
        k.rows[(OrderContact, oid)] = None
        k.transitions[oid] = []
        if retractable:
            k.deadline_messages[oid] = []
    merchants = set(filter(None, merchant_ids))
    if orders:
        for c in (await session.scalars(
                select(OrderContact).where(one_of(session, OrderContact.order_id, orders)))).all():
            k.rows[(OrderContact, c.order_id)] = c
            merchants.add(c.merchant_id)
        # plain rows, not ORM objects (the most numerous rows of a batch, never changed): ``get``
        # answers whether a version was seen, and ``transitions`` holds what they were
        for oid, version, action, from_state, to_state in (await session.execute(
                select(SeenTransition.order_id, SeenTransition.version, SeenTransition.action,
                       SeenTransition.from_state, SeenTransition.to_state)
                .where(one_of(session, SeenTransition.order_id, orders)))).all():
            k.rows[(SeenTransition, (oid, version))] = SEEN
            k.transitions[oid].append((version, action, from_state, to_state))
        if retractable:
            for m in await deadline_messages(session, orders):
                k.deadline_messages[m.order_id].append(m)
        k.deferred_orders = set((await session.scalars(
            select(DeferredDeadline.order_id).where(one_of(session, DeferredDeadline.order_id, orders))
            .distinct())).all())
    for mid in merchants:
        k.rows[(MerchantContact, mid)] = None
    if merchants:
        for m in (await session.scalars(
                select(MerchantContact).where(one_of(session, MerchantContact.merchant_id, sorted(merchants))))).all():
            k.rows[(MerchantContact, m.merchant_id)] = m
    events = sorted(set(event_ids))
    k.messages = {eid: set() for eid in events}
    if events:
        for eid, recipient, template_key in (await session.execute(
                select(Message.event_id, Message.recipient, Message.template_key)
                .where(one_of(session, Message.event_id, events)))).all():
            k.messages[eid].add((recipient, template_key))
    session.info[KEY] = k
    return k


async def flush(session) -> None:
    """Make the rows added so far visible to the next lookups: a flush for a single event; in a
    batch they are found through ``get`` already and written once, at its end (one statement
    per table rather than a round trip per event)."""
    if known(session) is None:
        await session.flush()
