"""The consultation-routing service: manufacturer or platform queue (docs/routing.md)."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from consultation_routing.api.operators import router as operators_router
from consultation_routing.api.route import router as route_router
from consultation_routing.parts import Routing, build, routing_of
from consultation_routing.entrypoints.consumers import catalogue_handlers, order_handlers
from consultation_routing.entrypoints.qualification import qualification_handlers
from consultation_routing.models import Base, messaging
from consultation_routing.settings import ConsultationRoutingSettings
from shared.runtime import ConsumerSpec, Runtime, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import CATALOGUE_EVENTS, KPI_EVENTS, ORDER_EVENTS

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


# Service orders older than ORDER_LOOKUP_DAYS are forgotten this often.
FORGET_ORDERS_EVERY_S = 3600.0


async def refresh_loop(routing: Routing, interval_s: float) -> None:
    forgotten_at = time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        try:
            await routing.state.refresh()
        except Exception as exc:  # noqa: BLE001 - the state ages; decisions degrade past the limit
            log.warning("routing state refresh failed", extra={"error": repr(exc)})
        if time.monotonic() - forgotten_at >= FORGET_ORDERS_EVERY_S:
            forgotten_at = time.monotonic()
            try:
                await routing.state.forget_old_orders()
            except Exception as exc:  # noqa: BLE001 - tried again next time
                log.warning("forgetting old service orders failed", extra={"error": repr(exc)})


async def start_routing(rt: Runtime) -> None:
    routing = routing_of(rt)
    # the holiday tables are built on first use: build them now, not on a storefront request
    today = rt.clock.now().date()
    for day in (today, today.replace(month=12, day=31) + timedelta(days=1)):
        routing.engine.is_working_day(day)
    try:
        await routing.state.refresh()
    except Exception as exc:  # noqa: BLE001 - start anyway, answering `degraded` until a refresh succeeds
        log.warning("initial routing state load failed", extra={"error": repr(exc)})
    rt.spawn(refresh_loop(routing, rt.settings.refresh_interval_s), "routing-state-refresh")
    rt.spawn(routing.publisher.run(), "routing-decision-writer")


def create_app(settings: ConsultationRoutingSettings | None = None):
    settings = settings or load_settings(ConsultationRoutingSettings)
    definition = ServiceDefinition(
        name="consultation-routing",
        title="After-sales platform: consultation routing",
        metadata=Base.metadata,
        tables=messaging,
        migrations_dir=MIGRATIONS,
        routers=[route_router, operators_router],
        consumers=[ConsumerSpec("catalogue", [CATALOGUE_EVENTS], catalogue_handlers),
                   ConsumerSpec("orders", [ORDER_EVENTS], order_handlers),
                   ConsumerSpec("qualification", [KPI_EVENTS], qualification_handlers)],
        on_start=start_routing,
        parts=build,
    )
    return create_service_app(definition, settings)
