"""Tables owned by the notifier: its projection of contacts, templates, messages."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import BigIntPK, UTCDateTime, declarative_base, partial_index
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)

# The SMS queue and the failures, as the conditions of their partial indexes. A query reads a
# partial index only under the index's own condition, so the statuses are written into the
# statement (``Message.status == QUEUED``), not bound (a cached generic plan could not use it).
QUEUED_SMS = "status = 'queued' AND channel = 'sms'"
FAILED = "status = 'failed'"
QUEUED, SMS, FAILED_STATUS = literal_column("'queued'"), literal_column("'sms'"), literal_column("'failed'")


class OrderContact(Base):
    __tablename__ = "order_contacts"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    merchant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    customer_phone: Mapped[str] = mapped_column(String(20))
    return_address: Mapped[str | None] = mapped_column(Text(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MerchantContact(Base):
    __tablename__ = "merchant_contacts"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_phone: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TemplateVersion(Base):
    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_template_versions_key_version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text())
    variables: Mapped[str] = mapped_column(Text())  # comma-separated declared variables
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Message(Base):
    """One message per (event, recipient, template): a redelivered or duplicated
    event hits the unique key and is not recorded twice."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient", "template_key", name="uq_messages_once"),
        # The dispatcher's queue (queued SMS by due time) and the failures (the delivery
        # summary's latest): partial indexes, so a message that is sent or delivered adds no
        # entry to them, and the queue's index stays the size of the queue.
        partial_index("ix_messages_sms_queue", "next_attempt_at", "id", where=QUEUED_SMS),
        partial_index("ix_messages_failed", "id", where=FAILED),
        # An order's messages (the inbox's order filter), an order's deadline messages (the
        # ones a later transition may retract, read for every batch of order events: a partial
        # index, small, which the planner prefers to reading every live message through
        # the status index of the time) and a phone's recent SMS (the rate limit, for every SMS sent).
        # Without them each was a scan of the whole table.
        Index("ix_messages_order", "order_id"),
        partial_index("ix_messages_deadline_order", "order_id", where="deadline_version IS NOT NULL"),
        Index("ix_messages_phone_sent", "phone", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(128))  # "sms:<phone>" | "inbox:<customer|merchant|role>:<id>"
    template_key: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | inbox
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    audience: Mapped[str] = mapped_column(String(16))  # customer | merchant | staff
    audience_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    title: Mapped[str] = mapped_column(String(128), default="")
    body: Mapped[str] = mapped_column(Text(), default="")
    status: Mapped[str] = mapped_column(String(12))  # queued | sent | delivered | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text(), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    receipt: Mapped[str | None] = mapped_column(Text(), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A message of a fired deadline: the order version its timer was armed for and the facts
    # that cancel its rule, so the dispatcher can drop it if the deadline became stale while
    # it waited (NULL for messages of order events).
    deadline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deadline_cancelled_by: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # When the timer fired (sla-timer's clock): a transition that happened before it cancels the
    # message however late the notifier learned of either (each service's clock is its own).
    deadline_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SeenNonce(Base):
    """The replay cache of signed webhooks (SMS delivery receipts): a nonce accepted once is
    refused until its request's timestamp leaves the acceptance window (``expires_at``);
    shared by every replica through the database, pruned once expired."""

    __tablename__ = "webhook_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SeenTransition(Base):
    """Each ``service_order.transitioned`` the notifier consumed (one row per order version):
    what a fired deadline is checked against. A deadline armed at version v whose rule is
    cancelled by a transition seen with a version above v is stale and notifies nobody."""

    __tablename__ = "order_transitions"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PhoneReveal(Base):
    """One operator's request to see one phone number unmasked: who (token subject and
    role), when (service clock), which message or order contact, and why. Written in the
    transaction that reads the number, so no number is shown without its entry."""

    __tablename__ = "phone_reveals"
    __table_args__ = (Index("ix_phone_reveals_order_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(16))  # message | order_contact
    message_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text())


class DeferredDeadline(Base):
    """A fired deadline that arrived before the order's own events (another topic, another
    consumer): kept here, with its event id, until the order is known — then it notifies as
    if it had just arrived (its staleness checked then). Never a message without a number."""

    __tablename__ = "deferred_deadlines"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    deferred_at: Mapped[datetime] = mapped_column(UTCDateTime())
