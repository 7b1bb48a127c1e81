"""The consultation-routing service: manufacturer or platform queue (SPEC §4)."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from consultation_routing.api.operators import router as operators_router
from consultation_routing.api.route import RouteFastPath, RoutingApp
from consultation_routing.api.route import router as route_router
from consultation_routing.components import Routing
from consultation_routing.consumers import catalogue_handlers, order_handlers
from consultation_routing.qualification import qualification_handlers
from consultation_routing.engine import RoutingEngine
from consultation_routing.models import Base, messaging
from consultation_routing.publisher import DecisionPublisher
from consultation_routing.settings import ConsultationRoutingSettings
from consultation_routing.state import RoutingState
from shared.calendar import DEFAULT_CALENDAR
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
    routing: Routing = rt.routing
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
    )
    app = create_service_app(definition, settings)
    rt: Runtime = app.state.runtime
    state = RoutingState(rt.sessions, now=lambda: rt.clock.now(),
                         order_lookup=timedelta(days=settings.order_lookup_days))
    routing = Routing(
        state=state,
        engine=RoutingEngine(state, settings, DEFAULT_CALENDAR),
        publisher=DecisionPublisher(rt, state, capacity=settings.decision_buffer, batch=settings.decision_batch,
                                    remember_billed=settings.remember_billed, journal_dir=settings.journal_path,
                                    interval_s=settings.journal_interval_s),
    )
    rt.routing = routing
    app.state.routing = routing
    # The shared factory builds a plain FastAPI app; as a RoutingApp it sends every request
    # through the fast path first, which passes everything but GET /v1/route to the stack.
    app.__class__ = RoutingApp
    app.state.route_fast_path = RouteFastPath(app.call_stack, owner=app)
    return app
