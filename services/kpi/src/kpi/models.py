"""Tables owned by the KPI service (facts projected from events only)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Index, Numeric, String, false
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


class OrderFact(Base):
    __tablename__ = "order_facts"
    __table_args__ = (Index("ix_order_facts_merchant_created", "merchant_id", "created_at"),)

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    service_type: Mapped[str] = mapped_column(String(20))
    problem_type: Mapped[str] = mapped_column(String(20))
    amount_paid: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the platform served this manufacturer's after-sales on its behalf (billed 8.26 CNY)
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class OrderMilestone(Base):
    """One fact per (order, kind): the first time it happened (earliest wins, so
    late or duplicate events never change it) and its value (stars, amount)."""

    __tablename__ = "order_milestones"
    __table_args__ = (Index("ix_order_milestones_kind_at", "kind", "at"),)

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[int | None] = mapped_column(nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), nullable=True)


class ConsultationFact(Base):
    """Routing events: kind decided / transferred / billable, keyed by their own id."""

    __tablename__ = "consultation_facts"
    __table_args__ = (Index("ix_consultation_facts_manufacturer_at", "manufacturer_id", "at"),)

    fact_id: Mapped[str] = mapped_column(String(80), primary_key=True)  # "<kind>:<event's id>"
    kind: Mapped[str] = mapped_column(String(16))
    manufacturer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    target: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    package: Mapped[int | None] = mapped_column(nullable=True)


class Disqualification(Base):
    """A service-express manufacturer's current standing (one row each)."""

    __tablename__ = "disqualifications"

    manufacturer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    disqualified: Mapped[bool] = mapped_column(Boolean)
    since_period: Mapped[str] = mapped_column(String(10))  # the Monday of the period that completed the run
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(String(500), default="")


class FlagRecord(Base):
    """Bottom-10 flags already published (one per merchant and week)."""

    __tablename__ = "flag_records"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    week: Mapped[str] = mapped_column(String(10), primary_key=True)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
