"""The operators' console: a service like the others (own database, migrations, consumer,
/health, /ready, /admin, /metrics), whose routes are web pages (docs/console.md)."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import shared.contracts  # noqa: F401 - registers event types
from console.adapters.platform import PlatformGateway
from console.adapters.sessions import SessionStore
from console.api import assets, web
from console.entrypoints.consumers import handlers
from console.models import Base, messaging
from console.settings import ConsoleSettings
from shared.runtime import ConsumerSpec, Runtime, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

MIGRATIONS = Path(__file__).parent / "migrations"


def _system_time() -> datetime:
    return datetime.now(timezone.utc)


async def _close_on_stop(gateway: PlatformGateway) -> None:
    """Holds the gateway's connections for the service's life (the runtime cancels it on stop)."""
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.close()


DEFINITION = ServiceDefinition(
    name="console",
    title="After-sales platform: operators' console",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=[web.router, web.public, assets.router],
    consumers=[ConsumerSpec("events", [ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS], handlers)],
)


def create_app(settings: ConsoleSettings | None = None, *, wall_clock: Callable[[], datetime] = _system_time,
               transport=None):
    """``wall_clock``: the time sign-in sessions expire by; ``transport``: an httpx transport
    for the services (tests)."""
    settings = settings or load_settings(ConsoleSettings)
    gateway = PlatformGateway(
        urls={"orders": settings.orders_url, "consultation-routing": settings.routing_url,
              "sla-timer": settings.sla_timer_url, "kpi": settings.kpi_url, "notifier": settings.notifier_url},
        token_url=settings.token_url, client_id=settings.service_client_id,
        # the platform clock (the runtime's, made below): the services check tokens against it
        client_secret=settings.service_client_secret.get_secret_value(), now=lambda: rt.clock.now(),
        cache_s=settings.service_cache_s, timeout_s=settings.service_timeout_s, transport=transport)
    definition = replace(DEFINITION, on_start=lambda runtime: runtime.spawn(_close_on_stop(gateway), "gateway"))
    app = create_service_app(definition, settings)
    rt: Runtime = app.state.runtime
    app.state.console = web.Console(gateway, SessionStore(rt.sessions), wall_clock)
    web.install(app)
    return app
