"""Tables owned by the KPI service.

Projected from events (emptied and rebuilt by ``kpi replay``):
  ``order_facts``         one row per service order (``kpi.domain.projection.OrderFact``)
  ``consultation_facts``  one row per routing event (decided / transferred / billable)
  ``catalogue_skus``      each merchant's catalogue as published (``catalogue.sku_upserted``)
  ``kpi_counters``        sums of the orders', consultations' and catalogue's contributions,
                          the figures are read from them (``kpi.domain.projection.contributions``)
Primary data of the KPI service (kept by a replay):
  ``paid_transactions``   paid-transaction counts per merchant and Beijing day (ingest API)
  ``disqualifications``, ``flag_records``  decisions already published as events
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)

ID = 200  # merchant ids, SKUs, categories: as long as the producers allow


class OrderFact(Base):
    __tablename__ = "order_facts"
    __table_args__ = (Index("ix_order_facts_merchant_created", "merchant_id", "created_at"),)

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    snap_version: Mapped[int | None] = mapped_column(Integer)
    merchant_id: Mapped[str | None] = mapped_column(String(ID))
    category: Mapped[str | None] = mapped_column(String(ID))
    sku: Mapped[str | None] = mapped_column(String(ID))
    service_type: Mapped[str | None] = mapped_column(String(20))
    problem_type: Mapped[str | None] = mapped_column(String(20))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    on_behalf: Mapped[bool | None] = mapped_column(Boolean)
    mode: Mapped[str | None] = mapped_column(String(ID))  # fulfilment mode (null: recorded before revision 0005)
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    audit_action: Mapped[str | None] = mapped_column(String(60))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    process_action: Mapped[str | None] = mapped_column(String(60))
    exchange_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exchange_shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shipped_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stars: Mapped[int | None] = mapped_column(Integer)
    recommend_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recommend: Mapped[int | None] = mapped_column(Integer)
    arbitration_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_cents: Mapped[int | None] = mapped_column(BigInteger)
    refund_by: Mapped[str | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_role: Mapped[str | None] = mapped_column(String(40))
    advance_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    advance_cents: Mapped[int | None] = mapped_column(BigInteger)
    penalty_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    penalty_cents: Mapped[int | None] = mapped_column(BigInteger)
    # derived from the columns above (for the penalties ledger query)
    audit_late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Counter(Base):
    """``(family, period, merchant_id, dim) → a, b, c, d`` — see ``kpi.domain.projection.contributions``."""

    __tablename__ = "kpi_counters"
    __table_args__ = (Index("ix_kpi_counters_merchant", "family", "merchant_id", "period"),)

    family: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    dim: Mapped[str] = mapped_column(String(ID + 40), primary_key=True)
    a: Mapped[int] = mapped_column(BigInteger, default=0)
    b: Mapped[int] = mapped_column(BigInteger, default=0)
    c: Mapped[int] = mapped_column(BigInteger, default=0)
    d: Mapped[int] = mapped_column(BigInteger, default=0)


class ConsultationFact(Base):
    """Routing events: kind decided / transferred / billable, keyed by their own id."""

    __tablename__ = "consultation_facts"
    __table_args__ = (Index("ix_consultation_facts_manufacturer_at", "manufacturer_id", "at"),)

    fact_id: Mapped[str] = mapped_column(String(240), primary_key=True)  # "<kind>:<event's id>"
    kind: Mapped[str] = mapped_column(String(16))
    manufacturer_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    target: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    package: Mapped[int | None] = mapped_column(nullable=True)


class CatalogueSku(Base):
    """One SKU of a merchant's catalogue as last published (``catalogue.sku_upserted``:
    the latest event time wins, ``kpi.domain.projection.newer_entry``). The merchants' categories
    for the composite index's peer groups come from here."""

    __tablename__ = "catalogue_skus"

    merchant_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    sku: Mapped[str] = mapped_column(String(ID), primary_key=True)
    category: Mapped[str] = mapped_column(String(ID))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaidTransactions(Base):
    """Paid transactions per merchant and Beijing day, posted by the marketplace's
    order system (the denominator of the refund dispute rate, §5.3)."""

    __tablename__ = "paid_transactions"
    __table_args__ = (Index("ix_paid_transactions_day", "day"),)

    merchant_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


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
