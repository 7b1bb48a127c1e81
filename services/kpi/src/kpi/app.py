"""The KPI service: scorecards, penalties and billing computed from events."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from kpi.api import router
from kpi.consumers import order_handlers, routing_handlers, sla_handlers
from kpi.models import Base, messaging
from kpi.settings import KpiSettings
from shared.runtime import ConsumerSpec, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(
    name="kpi",
    title="After-sales platform: KPIs",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=[router],
    consumers=[ConsumerSpec("orders", [ORDER_EVENTS], order_handlers),
               ConsumerSpec("sla", [SLA_EVENTS], sla_handlers),
               ConsumerSpec("routing", [ROUTING_EVENTS], routing_handlers)],
)


def create_app(settings: KpiSettings | None = None):
    return create_service_app(DEFINITION, settings or load_settings(KpiSettings))
