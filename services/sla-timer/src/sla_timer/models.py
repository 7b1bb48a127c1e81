"""Tables owned by the SLA timer service."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


class Timer(Base):
    """One deadline of one order. ``order_state``/``order_version`` are what it was
    set for; the effect's owner applies it only if the order is still there."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_state_due", "state", "due_at"),
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


class RuleOverride(Base):
    """Per-merchant or per-category policy for a rule (SPEC: *defaults*, configurable)."""

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
