"""The SLA timer service: durable deadlines of service orders (docs/deadlines.md)."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from shared.runtime import ConsumerSpec, Runtime, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import ORDER_EVENTS
from sla_timer.api import ROUTERS
from sla_timer.handlers.orders import order_handlers
from sla_timer.models import Base, messaging
from sla_timer.parts import attach
from sla_timer.settings import SlaTimerSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def _on_start(rt: Runtime) -> None:
    attach(rt)
    if rt.settings.fire_enabled:
        rt.spawn(rt.sla_firing.run(), "firing-loop")  # type: ignore[attr-defined]


DEFINITION = ServiceDefinition(
    name="sla-timer",
    title="After-sales platform: SLA timers",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=ROUTERS,
    consumers=[ConsumerSpec("orders", [ORDER_EVENTS], lambda rt: order_handlers(attach(rt)))],
    on_start=_on_start,
)


def create_app(settings: SlaTimerSettings | None = None):
    app = create_service_app(DEFINITION, settings or load_settings(SlaTimerSettings))
    attach(app.state.runtime)
    return app
