"""Events → message rows, inside the consumer's transaction (nothing is sent here)."""
from __future__ import annotations

import logging
from datetime import datetime
from types import SimpleNamespace

from prometheus_client import Counter
from sqlalchemy import event, select, update

from notifier.domain.delivery import sms_capable, valid_phone
from notifier.handlers.known import LIVE, add, deadline_messages, get, known
from notifier.domain.masking import mask_phone
from notifier.models import MerchantContact, Message, OrderContact, SeenTransition
from notifier.parts import notifier_parts
from notifier.domain.staleness import cancelled_by, transition_facts
from notifier.adapters.template_store import latest
from notifier.domain.templates import render
from notifier.domain.triggers import Context, Intent
from shared.bulk import BulkWrite

log = logging.getLogger(__name__)


async def remember_merchant_phone(session, merchant_id: str | None, phone: str | None, now) -> None:
    if not merchant_id or not phone:
        return
    row = await get(session, MerchantContact, merchant_id)
    if row is None:
        add(session, MerchantContact(merchant_id=merchant_id, contact_phone=phone, updated_at=now), merchant_id)
    elif row.contact_phone != phone:
        row.contact_phone, row.updated_at = phone, now


TEMPLATES = "notifier_templates"


async def template(session, key: str):
    """The latest version of template ``key``, read once per transaction (an event, or a
    batch of them, renders many messages from a few templates)."""
    cache = session.info.setdefault(TEMPLATES, {})
    if key not in cache:
        cache[key] = await latest(session, key)
    return cache[key]


def stale_deadlines(rt) -> Counter:
    """``notifier_stale_deadlines_total{stage}`` (``parts.NotifierParts``)."""
    return notifier_parts(rt).stale_deadlines


async def remember_transition(session, order_id: str, version: int, action: str, from_state: str, to_state: str,
                              now) -> None:
    k = known(session)
    if k is not None and order_id in k.transitions:  # all of the order's transitions are in hand
        if any(v == version for v, *_ in k.transitions[order_id]):
            return
        k.transitions[order_id].append((version, action, from_state, to_state))
    elif await session.get(SeenTransition, (order_id, version)) is not None:
        return
    add(session, SeenTransition(order_id=order_id, version=version, action=action, from_state=from_state,
                                to_state=to_state, seen_at=now), (order_id, version))


async def retract_stale(session, order_id: str, version: int, action: str, from_state: str, to_state: str,
                        now, occurred_at=None) -> int:
    """A transition that cancels a deadline notified after the transition happened (the timer
    fired before it saw it; the notifier saw the deadline first): its in-site messages leave
    the inbox and its SMS still queued are not sent — status ``cancelled``. A reminder whose
    timer fired before the transition happened was right when it was sent and stays (compared
    on the firing time the deadline carries: the notifier's own clock may differ from the
    order's and the timer's). Returns how many were retracted. An SMS already sent stays sent."""
    k = known(session)
    if k is not None and order_id in k.deadline_messages:
        rows = k.deadline_messages[order_id]  # read with the batch, and recorded since
    else:
        rows = await deadline_messages(session, [order_id])
    facts = transition_facts(action, from_state, to_state)
    n = 0
    for m in rows:
        if not (m.deadline_version < version and m.status in LIVE and (m.channel == "inbox" or m.status == "queued")
                and (occurred_at is None or (m.deadline_fired_at or m.created_at) > occurred_at)):
            continue
        hit = facts & set(m.deadline_cancelled_by or ())
        if hit:
            reason = f"stale: {min(hit)} at order version {version}"
            if m.id is None:  # recorded by this batch, not written yet
                m.status, m.last_error, m.next_attempt_at = "cancelled", reason, None
            else:  # a stored one (LiveMessage): still live when written, unless the dispatcher got there first
                await session.execute(update(Message).where(Message.id == m.id, Message.status.in_(LIVE))
                                      .values(status="cancelled", last_error=reason, next_attempt_at=None))
                m.status = "cancelled"
            n += 1
    return n


async def stale_reason(session, order_id: str | None, armed_version: int | None,
                       cancelling: list[str] | None) -> str | None:
    """Why a deadline armed at ``armed_version`` no longer holds, or None (also when the
    event carried no cancelling facts: nothing to check against)."""
    if not order_id or armed_version is None or not cancelling:
        return None
    k = known(session)
    if k is not None and order_id in k.transitions:
        rows = [t for t in k.transitions[order_id] if t[0] > armed_version]
    else:
        rows = [tuple(r) for r in (await session.execute(
            select(SeenTransition.version, SeenTransition.action, SeenTransition.from_state, SeenTransition.to_state)
            .where(SeenTransition.order_id == order_id, SeenTransition.version > armed_version))).all()]
    return why_stale(rows, armed_version, cancelling)


def why_stale(transitions, armed_version: int | None, cancelling: list[str] | None) -> str | None:
    """``stale_reason`` on the order's transitions in hand ((version, action, from, to))."""
    if armed_version is None or not cancelling:
        return None
    hit = cancelled_by(transitions, armed_version, cancelling)
    if hit is None:
        return None
    version, fact = hit
    return f"{fact} at order version {version} (armed at {armed_version})"


async def context(session, order_id: str) -> tuple[OrderContact | None, Context]:
    c = await get(session, OrderContact, order_id)
    return c, Context(number=c.number if c else None, return_address=c.return_address if c else None)


NEW_MESSAGES = "notifier_new_messages"
MESSAGE_COLUMNS = tuple(c.name for c in Message.__table__.columns if c.name != "id")
# the transaction's new messages in one statement on PostgreSQL (shared/bulk.py)
_WRITE = BulkWrite(Message.__table__, MESSAGE_COLUMNS)


def pending_messages(session) -> list[SimpleNamespace]:
    """The messages ``record`` produced in this transaction, written by ``write_messages``
    (a batch's in one statement, not an ORM object each). Committing with any left unwritten
    fails: a message is never lost silently."""
    new = session.info.get(NEW_MESSAGES)
    if new is None:
        new = session.info[NEW_MESSAGES] = []
        event.listen(session.sync_session, "before_commit", _none_left)
    return new


def _none_left(sync_session) -> None:
    if sync_session.info.get(NEW_MESSAGES):
        raise RuntimeError("messages recorded but not written (write_messages was not called)")


async def write_messages(session) -> int:
    """Insert the messages recorded so far in this transaction; returns how many."""
    new = session.info.get(NEW_MESSAGES)
    if not new:
        return 0
    rows = [{c: getattr(m, c) for c in MESSAGE_COLUMNS} for m in new]
    new.clear()
    await _WRITE(session, rows)
    return len(rows)


async def record(session, *, event_id: str, order_id: str | None, intent: Intent, customer_id: str | None,
                 customer_phone: str | None, merchant_id: str | None, now,
                 deadline: tuple[int, list[str] | None, datetime] | None = None, metrics=None) -> None:
    """Record the intent's messages: SMS + in-site for customers and merchants, SMS for staff.
    ``deadline``: (armed order version, cancelling facts, firing time) of a fired deadline, kept on the
    messages for the dispatcher's last check. ``metrics`` (NotifierMetrics) counts the in-site
    messages delivered and the messages failed here once the transaction commits."""
    merchant_phone = None
    if merchant_id:
        mc = await get(session, MerchantContact, merchant_id)
        merchant_phone = mc.contact_phone if mc else None
    if intent.audience in ("customer", "merchant"):
        phone, audience_id = (customer_phone, customer_id) if intent.audience == "customer" else \
            (merchant_phone, merchant_id)
        targets = [("inbox", None, intent.audience, audience_id)]
        # SMS only to mobile numbers. A landline or hotline contact (merchants have them; onboarding
        # warns) gets the in-site message alone: no SMS row that could only fail.
        if phone and valid_phone(phone) and not sms_capable(phone):
            log.info("no sms: not a mobile number", extra={"event_id": event_id, "kind": intent.kind,
                                                           "audience": intent.audience, "to": mask_phone(phone)})
        else:
            targets.insert(0, ("sms", phone, intent.audience, audience_id))
    else:
        to = intent.variables.get("to")
        role = intent.variables.get("role") or (None if to is None or valid_phone(to) else str(to))
        # ``to`` is a phone number or a role name: a mobile number gets the SMS, anything else an
        # in-site message addressed to the role
        targets = [("sms", to, "staff", role)] if sms_capable(to) else [("inbox", None, "staff", role)]
    tpl = await template(session, intent.template_key)
    k = known(session)
    recorded = k.messages.get(event_id) if k is not None else None  # None: not read up front
    for channel, phone, audience, audience_id in targets:
        error = intent.error
        if error is None and tpl is None:
            error = f"unknown template: {intent.template_key}"
        if error is None and channel == "sms" and not phone:
            error = f"missing fields: {audience} phone"
        elif error is None and channel == "sms" and not valid_phone(phone):
            error = f"bad phone number: {mask_phone(phone)}"
        if error is None and channel == "inbox" and not audience_id:
            error = f"missing fields: {audience} id"
        title, body = "", ""
        if error is None:
            try:
                title, body = tpl.title, render(tpl.body, intent.variables)
            except KeyError as e:
                error = f"missing fields: {e.args[0]}"
        recipient = f"sms:{phone}" if channel == "sms" else f"inbox:{audience}:{audience_id}"
        new = pending_messages(session)
        if recorded is not None:
            exists = (recipient, intent.template_key) in recorded
        else:
            exists = any(m.event_id == event_id and m.recipient == recipient and m.template_key == intent.template_key
                         for m in new) or (await session.execute(select(Message.id).where(
                             Message.event_id == event_id, Message.recipient == recipient,
                             Message.template_key == intent.template_key))).first() is not None
        if exists:
            continue
        if recorded is not None:
            recorded.add((recipient, intent.template_key))
        status = "failed" if error else ("queued" if channel == "sms" else "delivered")
        message = SimpleNamespace(
            id=None, event_id=event_id, recipient=recipient, template_key=intent.template_key,
            template_version=tpl.version if tpl else None, channel=channel, kind=intent.kind, order_id=order_id,
            audience=audience, audience_id=audience_id, phone=phone, title=title, body=body, status=status,
            attempts=0, next_attempt_at=now if status == "queued" else None, last_error=error,
            provider_message_id=None, receipt=None, read_at=None, created_at=now, sent_at=None,
            delivered_at=now if status == "delivered" else None,
            deadline_version=deadline[0] if deadline else None,
            deadline_cancelled_by=list(deadline[1]) if deadline and deadline[1] else None,
            deadline_fired_at=deadline[2] if deadline else None)
        new.append(message)
        if k is not None and deadline and order_id in k.deadline_messages:
            k.deadline_messages[order_id].append(message)  # a later transition of the batch may retract it
        if metrics is not None and status != "queued":
            metrics.at_commit(session, "failed" if error else "sent", channel, intent.template_key)
        if error:
            log.warning("notification failed", extra={"event_id": event_id, "kind": intent.kind, "reason": error})
