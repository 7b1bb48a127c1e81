"""Events of consultation routing on ``routing.events`` (docs/routing.md, docs/events.md § 3).

``routing.decided`` / ``routing.transferred`` / ``routing.billable_consultation``
are published by the consultation-routing service (key: manufacturer id, or
``platform`` when no manufacturer is known) for KPI and billing.

``catalogue.sku_upserted`` (key: SKU, topic ``catalogue.events``) keeps the routing
catalogue current; the routing service consumes it. The orders service publishes it
(through its outbox) for every SKU a merchant's catalogue gains or changes, at
onboarding and through the catalogue API. It has its own topic so that the routing
service does not read back its own stream of decisions."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from shared.events import Contract, registry
from shared.topics import CATALOGUE_EVENTS, ROUTING_EVENTS

CHANNELS = ("phone", "im")
ENTRY_POINTS = (
    "product_page", "shop_page", "search_list", "home_page", "order_list", "order_recycle_bin", "after_sales_page",
)
PHASES = ("pre_sale", "after_sale")
TARGETS = ("manufacturer", "platform")
REASONS = ("enrolled", "not_enrolled", "out_of_hours", "disqualified", "no_agents", "overflow", "unknown_sku",
           "degraded")
Channel = Literal["phone", "im"]
AwareTime = Annotated[datetime, Meta(tz=True)]


@registry.register("routing.decided", topic=ROUTING_EVENTS, version=1)
class RoutingDecided(Contract, kw_only=True):
    """A storefront consultation was routed to a manufacturer's queue or to the platform."""

    decision_id: str
    decided_at: AwareTime
    channel: Channel
    entry_point: str
    phase: Literal["pre_sale", "after_sale"]
    target: Literal["manufacturer", "platform"]
    reason: str
    sku: str | None = None
    manufacturer_id: str | None = None
    category: str | None = None
    queue_id: str | None = None
    customer_id: str | None = None
    sales_order_id: str | None = None
    service_order_id: str | None = None


@registry.register("routing.transferred", topic=ROUTING_EVENTS, version=1)
class ConsultationTransferred(Contract, kw_only=True):
    """队列转接: a manufacturer agent handed the consultation to the platform queue."""

    transfer_id: str
    decision_id: str
    manufacturer_id: str
    agent_id: str
    reason: str
    transferred_at: AwareTime
    sku: str | None = None


@registry.register("routing.billable_consultation", topic=ROUTING_EVENTS, version=1)
class BillableConsultation(Contract, kw_only=True):
    """The platform serves a consultation on an enrolled manufacturer's behalf (docs/routing.md).

    ``cause`` is the routing reason (out_of_hours, disqualified, no_agents, overflow)
    or ``transfer``; ``package`` (1 or 2) prices it."""

    consultation_id: str  # the decision id
    manufacturer_id: str
    package: Annotated[int, Meta(ge=1, le=2)]
    cause: str
    channel: Channel
    category: str | None = None
    occurred_at: AwareTime


Name = Annotated[str, Meta(min_length=1, max_length=100)]


@registry.register("catalogue.sku_upserted", topic=CATALOGUE_EVENTS, version=1)
class SkuUpserted(Contract, kw_only=True):
    """A SKU of a merchant's catalogue: ``manufacturer_id`` is the merchant whose
    catalogue holds it. ``merchant_kind`` (added later, optional): routing lets a
    manufacturer's catalogue take a SKU id a POP seller's also lists, never the reverse."""

    sku: Name
    manufacturer_id: Name
    category: Name
    merchant_kind: Literal["manufacturer", "pop_seller"] | None = None
