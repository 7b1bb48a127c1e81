"""Tables owned by the consultation-routing service. Every table carries
``updated_at`` so the in-memory state refreshes incrementally."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, declarative_base
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)


class ManufacturerRow(Base):
    __tablename__ = "manufacturers"
    __table_args__ = (Index("ix_manufacturers_updated", "updated_at"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list] = mapped_column(JSON)
    hours: Mapped[dict] = mapped_column(JSON)  # {"phone": ["09:00", "18:00"], "im": [...]}
    serve_non_working_days: Mapped[bool] = mapped_column(Boolean)
    im_queue_id: Mapped[str] = mapped_column(String(100))
    phone_extension: Mapped[str] = mapped_column(String(20))
    hover_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    min_agents: Mapped[int] = mapped_column(Integer)
    max_queue_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_expected_wait_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    package: Mapped[int] = mapped_column(Integer)
    disqualified: Mapped[bool] = mapped_column(Boolean)
    disqualified_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SkuRow(Base):
    __tablename__ = "catalogue_skus"
    __table_args__ = (Index("ix_catalogue_skus_updated", "updated_at"),)

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    manufacturer_id: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QueueStateRow(Base):
    __tablename__ = "queue_states"
    __table_args__ = (Index("ix_queue_states_updated", "updated_at"),)

    manufacturer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    agents_online: Mapped[int] = mapped_column(Integer)
    queue_length: Mapped[int] = mapped_column(Integer)
    expected_wait_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TransferRow(Base):
    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    manufacturer_id: Mapped[str] = mapped_column(String(100))
    agent_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(String(100), nullable=True)
    transferred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DecisionRow(Base):
    """A decision that involved an enrolled manufacturer (its queue, or the platform on its
    behalf), written by the decision writer in the transaction of its events: a transfer
    must name one that sent the consultation to that manufacturer. Kept
    ``DECISION_RETENTION_H`` hours (the writer deletes older ones)."""

    __tablename__ = "decisions"
    # SQLite: the rows live in the primary key's B-tree (one B-tree less to write per decision)
    __table_args__ = (Index("ix_decisions_decided_at", "decided_at"), {"sqlite_with_rowid": False})

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    manufacturer_id: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    sku: Mapped[str | None] = mapped_column(String(100), nullable=True)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderSkuRow(Base):
    """Service order → SKU (and its sales order), from ``service_order.created``: a
    consultation that names only a service order or a sales order is routed by its SKU.
    Orders older than ``ORDER_LOOKUP_DAYS`` are forgotten."""

    __tablename__ = "order_skus"
    __table_args__ = (Index("ix_order_skus_updated", "updated_at"), Index("ix_order_skus_created", "created_at"))

    service_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sales_order_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
