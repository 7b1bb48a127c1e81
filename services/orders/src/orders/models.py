"""Tables owned by the orders service."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from orders.domain.states import TERMINAL
from shared.db import BigIntPK, UTCDateTime, declarative_base, partial_index
from shared.messaging_tables import MessagingTables

Base = declarative_base()
messaging = MessagingTables(Base.metadata)

Money = Numeric(12, 2)

# The retention purge's condition (handlers/retention.py), written out as its partial index's:
# the terminal states as literals (a query reads a partial index only under its own condition).
FINISHED = "state IN ({})".format(", ".join(f"'{state}'" for state in sorted(TERMINAL)))


class Merchant(Base):
    __tablename__ = "merchants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # pop_seller | manufacturer
    mode: Mapped[str] = mapped_column(String(30))
    category_modes: Mapped[dict] = mapped_column(JSON, default=dict)
    contact_phone: Mapped[str] = mapped_column(String(20))
    return_address: Mapped[str] = mapped_column(String(500))
    served_by_platform: Mapped[bool] = mapped_column(Boolean, default=False)
    # set by the KPI service's disqualification event; new orders then go to `platform` mode
    disqualified_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list] = mapped_column(JSON, default=list)
    categories: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Sku(Base):
    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("merchant_id", "sku", name="uq_skus_merchant_sku"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(String(64), ForeignKey("merchants.id"))
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal] = mapped_column(Money)


class ApiClient(Base):
    """OAuth2 client credentials; the secret is stored as an Argon2id hash (older rows: PBKDF2,
    re-hashed at their next successful login). ``version`` rises with every change that must
    revoke the account's tokens (deactivation, permissions, categories); tokens carry it."""

    __tablename__ = "api_clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    merchant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    staff_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    version_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class ServiceOrder(Base):
    __tablename__ = "service_orders"
    __table_args__ = (
        UniqueConstraint("customer_id", "idempotency_key", name="uq_service_orders_customer_idem"),
        Index("ix_service_orders_sales_line", "sales_order_id", "order_line_id"),
        Index("ix_service_orders_merchant_state", "merchant_id", "state"),
        # Partial indexes: every action rewrites the order's row, and PostgreSQL then adds an
        # entry for it to each index whose condition the row meets. These three serve lookups
        # that need only some rows: the purge (finished orders by age), the search by handler
        # and by tracking number (an equality implies NOT NULL). An order waiting to be claimed
        # or shipped, or still open, adds no entry to them.
        partial_index("ix_service_orders_updated", "updated_at", where=FINISHED),
        partial_index("ix_service_orders_handler_id", "handler_id", where="handler_id IS NOT NULL"),
        partial_index("ix_service_orders_tracking_number", "tracking_number", where="tracking_number IS NOT NULL"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    customer_phone: Mapped[str] = mapped_column(String(20))
    customer_level: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    sales_order_id: Mapped[str] = mapped_column(String(64))
    order_line_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    purchased_quantity: Mapped[int] = mapped_column(Integer)
    amount_paid: Mapped[Decimal] = mapped_column(Money)
    service_type: Mapped[str] = mapped_column(String(20))
    problem_type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Lifecycle
    mode: Mapped[str] = mapped_column(String(30), default="pop_self_service")
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    merchant_contact_phone: Mapped[str] = mapped_column(String(20), default="")
    return_address: Mapped[str] = mapped_column(String(500), default="")
    state_entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    handler_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    customer_responded: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_from: Mapped[str | None] = mapped_column(String(40), nullable=True)
    arbitration_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    audit_opinion: Mapped[str | None] = mapped_column(Text, nullable=True)
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    return_freight_payer: Mapped[str] = mapped_column(String(20), default="customer")
    freight_declared: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    freight_to_return: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shipment_filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    receipt_condition: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    outcome_details: Mapped[dict] = mapped_column(JSON, default=dict)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    refund_completed_by: Mapped[str | None] = mapped_column(String(20), nullable=True)
    refund_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    exchange_sku: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Version of the transition that armed each deadline (see handlers/deadlines.py).
    armed: Mapped[dict] = mapped_column(JSON, default=dict)

    # Optimistic concurrency: the handler sets the next version; UPDATE … WHERE version = old.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class SalesLine(Base):
    """A sales-order line that has been applied for: its version is what concurrent
    applications for the line are checked against (docs/lifecycle.md § 1, "Quantities").
    Every application that stores an order replaces ``version`` with a new random token, in
    the statement that inserts the order, and only if it still holds the token read with the
    application's facts: of two applications decided on the same facts one stores, the other
    decides again. A random token (not a count) is never seen twice, so a stale read cannot
    match a line the retention purge deleted and a later application created again."""

    __tablename__ = "sales_lines"
    sales_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderDeadline(Base):
    """When an order's deadlines are due as the sla-timer armed them (``sla.deadlines_armed``:
    merchant/category overrides and the business calendar applied), the latest arming of each
    rule: the expected completion of the progress view (handlers/queries.py)."""

    __tablename__ = "order_deadlines"
    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule: Mapped[str] = mapped_column(String(60), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    order_version: Mapped[int] = mapped_column(Integer)  # the order event that armed it


class TimelineEntry(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_role: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    internal_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_visible: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class Attachment(Base):
    """Audit attachments: merchant and platform only, never the customer."""

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Rating(Base):
    __tablename__ = "ratings"
    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stars: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    recommend: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExchangeOrder(Base):
    __tablename__ = "exchange_orders"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    auto_approved: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))  # created | shipped
    carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
