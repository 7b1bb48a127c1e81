"""Events published by the orders service on ``orders.events`` (key: service order id).
The catalogue: docs/events.md § 3; the states and actions: docs/lifecycle.md."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import Meta, field

from shared.contracts.vocabulary import Action, OrderState
from shared.events import Contract, registry
from shared.topics import ORDER_EVENTS

ServiceType = Literal["return", "exchange", "repair", "compensation"]
ProblemType = Literal["quality", "logistics", "not_as_described", "no_reason", "other"]
Count = Annotated[int, Meta(ge=1)]
AwareTime = Annotated[datetime, Meta(tz=True)]


def check_amount(name: str, value: Decimal) -> None:
    """A money amount of the contracts: finite, not negative, at most two decimals (the type
    itself is checked by the decoder: ``make_envelope`` decodes what it encodes)."""
    if isinstance(value, Decimal) and (not value.is_finite() or value < 0 or value.as_tuple().exponent < -2):
        raise ValueError(f"{name} must be a non-negative amount with at most 2 decimals, got {value}")


@registry.register("service_order.created", topic=ORDER_EVENTS, version=1)
class ServiceOrderCreated(Contract, kw_only=True):
    """An application was accepted: the new order and its snapshot (state ``pending_claim``)."""

    order_id: str
    number: str
    version: Count
    state: OrderState
    merchant_id: str
    customer_id: str
    customer_phone: str
    customer_level: str
    sales_order_id: str
    sku: str
    category: str
    quantity: Count
    amount_paid: Decimal
    service_type: ServiceType
    problem_type: ProblemType
    delivered_at: AwareTime
    created_at: AwareTime
    # Optional (added later: older events lack them):
    mode: str = "pop_self_service"
    on_behalf: bool = False
    merchant_contact_phone: str | None = None
    return_address: str | None = None

    def __post_init__(self) -> None:
        check_amount("amount_paid", self.amount_paid)


class OrderSnapshot(Contract, kw_only=True):
    """What consumers need to know about an order without ever reading it back."""

    merchant_id: str
    customer_id: str
    customer_phone: str
    customer_level: str
    sales_order_id: str
    sku: str
    category: str
    quantity: Count
    amount_paid: Decimal
    service_type: ServiceType
    problem_type: ProblemType
    mode: str = "pop_self_service"
    created_at: AwareTime
    # Optional, so older producers' events still decode:
    on_behalf: bool = False  # the platform serves this manufacturer's after-sales on its behalf (billed)
    merchant_contact_phone: str | None = None  # the merchant's after-sales contact phone
    return_address: str | None = None
    order_line_id: str | None = None
    handler_id: str | None = None

    def __post_init__(self) -> None:
        check_amount("amount_paid", self.amount_paid)


@registry.register("service_order.transitioned", topic=ORDER_EVENTS, version=1)
class ServiceOrderTransitioned(Contract, kw_only=True):
    """Published for EVERY accepted action, in-state ones included (then from_state ==
    to_state). ``action`` names what happened; ``details`` carries the action's data (refund
    amount as a string, exchange SKU, tracking number, audit opinion...: docs/events.md § 3).
    ``version`` is the order's version after the action."""

    order_id: str
    number: str
    version: Count
    action: Action
    from_state: OrderState
    to_state: OrderState
    actor_role: str  # storefront | merchant_main | merchant_staff | platform_operator | arbitrator | system
    actor_id: str
    occurred_at: AwareTime
    order: OrderSnapshot
    details: dict[str, Any] = field(default_factory=dict)


# The vocabulary of ``ServiceOrderTransitioned.action`` (generated from the transition table).
ACTIONS = tuple(a.value for a in Action)


@registry.register("exchange_order.created", topic=ORDER_EVENTS, version=1)
class ExchangeOrderCreated(Contract, kw_only=True):
    """An exchange order for the marketplace's order management (from
    ``audit.resend_without_return``, ``process.exchange`` or an arbitration exchange).
    Its shipment comes back through the merchant API as action ``exchange.shipped``."""

    exchange_order_id: str
    order_id: str
    number: str
    merchant_id: str
    customer_id: str
    sku: str
    quantity: Count
    unit_price: Decimal
    auto_approved: bool
    source: str  # the action that created it
    created_at: AwareTime

    def __post_init__(self) -> None:
        check_amount("unit_price", self.unit_price)
