"""Tables owned by the SLA timer service."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import BigIntPK, UTCDateTime, declarative_base, partial_index
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


PENDING = "state = 'pending'"
# 'pending' written into the statement, not bound: a query reads the partial index of pending
# timers only where its condition is the index's own (``Timer.state == PENDING_STATE``); a
# bound value would leave a cached generic plan unable to use it (PostgreSQL, SQLite).
PENDING_STATE = literal_column("'pending'")


class Timer(Base):
    """One deadline of one order. ``order_state``/``order_version`` are what it was
    set for; the effect's owner applies it only if the order is still there.
    ``merchant_id``/``category`` are the order's, from the order event that started the
    timer: who may read the order's timers (NULL on timers started before they were kept:
    those are visible to platform roles only)."""

    __tablename__ = "timers"
    __table_args__ = (
        # Every read by due time is of pending timers (the firing loop's claim, the next due time,
        # the due-soon counts): a partial index holds only them, so a timer that fires or is
        # cancelled adds no entry to it and it does not grow with the table's history.
        partial_index("ix_timers_pending_due", "due_at", where=PENDING),
        Index("ix_timers_order", "order_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36))
    rule: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))  # pending | fired | cancelled
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    order_version: Mapped[int] = mapped_column(Integer)
    order_state: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    merchant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RuleOverride(Base):
    """Per-merchant or per-category policy for a rule (docs/deadlines.md: the durations are defaults, configurable)."""

    __tablename__ = "rule_overrides"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)  # merchant | category
    scope_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    rule: Mapped[str] = mapped_column(String(60), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    after_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    working_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CalendarOverride(Base):
    """Operator table for dates the holiday library does not know yet (next year's announcement)."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """One operator change of a rule or calendar override: who (token subject and role),
    when (service clock), what (``kind`` and its target), the values before and after
    (``old`` is NULL when no override existed: the rule's default or the holiday library
    applied). Written in the transaction that makes the change."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_kind", "kind", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))  # the token's subject (client id)
    actor_role: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # rule_override | calendar_override
    rule: Mapped[str | None] = mapped_column(String(60), nullable=True)
    scope: Mapped[str | None] = mapped_column(String(20), nullable=True)
    scope_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    day: Mapped[date | None] = mapped_column(Date, nullable=True)
    old: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    new: Mapped[dict] = mapped_column(JSON)
