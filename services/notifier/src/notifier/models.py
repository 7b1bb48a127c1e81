"""Tables owned by the notifier: its projection of contacts, templates, messages."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import BigIntPK, UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


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
        Index("ix_messages_due", "status", "next_attempt_at"),
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
    status: Mapped[str] = mapped_column(String(12))  # queued | sent | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text(), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    receipt: Mapped[str | None] = mapped_column(Text(), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SeenNonce(Base):
    """The replay cache of signed webhooks (SMS delivery receipts): a nonce accepted once is
    refused until its request's timestamp leaves the acceptance window (``expires_at``);
    shared by every replica through the database, pruned once expired."""

    __tablename__ = "webhook_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
