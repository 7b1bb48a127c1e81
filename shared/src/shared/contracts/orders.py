"""Events published by the orders service on ``orders.events`` (key: service order id)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from shared.events import registry
from shared.topics import ORDER_EVENTS

ServiceType = Literal["return", "exchange", "repair", "compensation"]
ProblemType = Literal["quality", "logistics", "not_as_described", "no_reason", "other"]


@registry.register("service_order.created", topic=ORDER_EVENTS, version=1)
class ServiceOrderCreated(BaseModel):
    order_id: str
    number: str
    version: int = Field(ge=1)
    state: str
    merchant_id: str
    customer_id: str
    customer_phone: str
    customer_level: str
    sales_order_id: str
    sku: str
    category: str
    quantity: int = Field(ge=1)
    amount_paid: Decimal = Field(ge=0, decimal_places=2)
    service_type: ServiceType
    problem_type: ProblemType
    delivered_at: datetime
    created_at: datetime
    # Added with issue 3 (optional):
    mode: str = "pop_self_service"
    on_behalf: bool = False
    merchant_contact_phone: str | None = None
    return_address: str | None = None


class OrderSnapshot(BaseModel):
    """What consumers need to know about an order without ever reading it back."""

    merchant_id: str
    customer_id: str
    customer_phone: str
    customer_level: str
    sales_order_id: str
    sku: str
    category: str
    quantity: int = Field(ge=1)
    amount_paid: Decimal = Field(ge=0, decimal_places=2)
    service_type: ServiceType
    problem_type: ProblemType
    mode: str = "pop_self_service"
    created_at: datetime
    # Added with issue 3 (optional, so older producers' events still parse):
    on_behalf: bool = False  # the platform serves this manufacturer's after-sales on its behalf (billed)
    merchant_contact_phone: str | None = None  # the merchant's after-sales contact phone
    return_address: str | None = None
    order_line_id: str | None = None
    handler_id: str | None = None


@registry.register("service_order.transitioned", topic=ORDER_EVENTS, version=1)
class ServiceOrderTransitioned(BaseModel):
    """Published for EVERY state change (and for in-state actions worth a timeline
    entry, with from_state == to_state). ``action`` names what happened (e.g.
    ``claim``, ``audit.approve_return``, ``fill_shipment``, ``register_receipt``,
    ``process.refund``, ``confirm``, ``system.auto_refund``); ``details`` carries the
    action's data (refund amount as a string, exchange SKU, tracking number, audit
    opinion, ...). ``version`` is the order's version after the action."""

    order_id: str
    number: str
    version: int = Field(ge=1)
    action: str
    from_state: str
    to_state: str
    actor_role: str  # customer | merchant_main | merchant_staff | platform_operator | arbitrator | system
    actor_id: str
    occurred_at: datetime
    order: OrderSnapshot
    details: dict = Field(default_factory=dict)


# The vocabulary of ``ServiceOrderTransitioned.action`` (producers may add; never rename).
ACTIONS = (
    "claim", "assign",
    "audit.resend_without_return", "audit.approve_return", "audit.request_feedback", "audit.reject", "audit.abandon",
    "customer_feedback", "abandon",
    "fill_shipment", "remind_to_ship", "register_receipt", "freight.edit",
    "process.refund", "process.exchange", "process.return_original", "process.offline_exchange", "process.repair",
    "exchange.shipped", "repair.shipped_back", "refund.paid",
    "cancel_outcome", "confirm", "message", "reply", "mark_resolved", "rate",
    "arbitration.request", "arbitration.decide",
    "system.auto_close", "system.auto_refund", "system.advance_compensation", "system.auto_confirm",
)


@registry.register("exchange_order.created", topic=ORDER_EVENTS, version=1)
class ExchangeOrderCreated(BaseModel):
    """An exchange order for the marketplace's order management (from
    ``audit.resend_without_return``, ``process.exchange`` or an arbitration exchange).
    Its shipment comes back through the merchant API as action ``exchange.shipped``."""

    exchange_order_id: str
    order_id: str
    number: str
    merchant_id: str
    customer_id: str
    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=2)
    auto_approved: bool
    source: str  # the action that created it
    created_at: datetime
