"""Tables owned by the console: its read model of the platform's events (kept current by
its consumer; never another service's tables) and the operators' sign-in sessions.

The overview answers from pre-aggregated counters (``state_counts``, ``hourly_orders``,
``merchant_backlog``) kept in the transaction that applies each batch of events, so a
page load costs a handful of indexed reads whatever the number of orders."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


class OrderRow(Base):
    """The latest known state of one service order (from ``orders.events``)."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_open_created", "is_open", "created_at"),
        Index("ix_orders_state_entered", "state", "entered_state_at"),
        Index("ix_orders_merchant_open", "merchant_id", "is_open", "created_at"),
    )

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(40))
    service_type: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    is_open: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entered_state_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StateCount(Base):
    """Orders per (state, fulfilment mode)."""

    __tablename__ = "state_counts"

    state: Mapped[str] = mapped_column(String(40), primary_key=True)
    mode: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class HourlyOrders(Base):
    """Orders opened (created) and closed (entered a terminal state) per UTC hour."""

    __tablename__ = "hourly_orders"

    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    opened: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)


class MerchantBacklog(Base):
    """Open and all orders per merchant."""

    __tablename__ = "merchant_backlog"
    __table_args__ = (Index("ix_merchant_backlog_open", "open_n"),)

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_n: Mapped[int] = mapped_column(Integer)
    total_n: Mapped[int] = mapped_column(Integer)


class FiredDeadline(Base):
    """A deadline that came due (``sla.deadline_fired``): what it was armed for, and when it
    fired against when it was due (the firing lateness)."""

    __tablename__ = "fired_deadlines"
    __table_args__ = (
        Index("ix_fired_deadlines_fired", "fired_at"),
        Index("ix_fired_deadlines_action", "action", "order_id"),
    )

    timer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to: Mapped[str | None] = mapped_column(String(60), nullable=True)
    indicator: Mapped[str | None] = mapped_column(String(20), nullable=True)
    order_state: Mapped[str] = mapped_column(String(40))
    order_version: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoutingHourly(Base):
    """Routing decisions per UTC hour, target, reason, channel and manufacturer ('' for none)."""

    __tablename__ = "routing_hourly"

    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    target: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    manufacturer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class TransfersHourly(Base):
    """Consultations a manufacturer's agent handed to the platform (队列转接), per UTC hour."""

    __tablename__ = "transfers_hourly"

    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    manufacturer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class ConsoleSession(Base):
    """One sign-in. The cookie holds a random token; only its SHA-256 is stored. ``token``
    is the person's own bearer token from the sign-in (short-lived), encrypted under a key
    derived from the cookie (adapters/sessions.py): their actions (an arbitration decision)
    are made with it, never with the console's credential."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_expires", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token: Mapped[str] = mapped_column(Text())
    token_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ = ["Base", "ConsoleSession", "FiredDeadline", "HourlyOrders", "MerchantBacklog", "OrderRow",
           "RoutingHourly", "StateCount", "TransfersHourly", "messaging"]
