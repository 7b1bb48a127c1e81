"""The notifier service: SMS and in-site messages."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from notifier.api.routes import router
from notifier.entrypoints.consumers import order_handlers, sla_handlers
from notifier.entrypoints.dispatcher import Dispatcher
from notifier.handlers.messages import stale_deadlines
from notifier.models import Base, messaging
from notifier.adapters.providers import provider_from_settings
from notifier.settings import NotifierSettings
from notifier.adapters.template_store import seed_defaults
from notifier.parts import build, notifier_parts
from shared.runtime import ConsumerSpec, Runtime, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import ORDER_EVENTS, SLA_EVENTS

MIGRATIONS = Path(__file__).parent / "migrations"


async def on_start(rt: Runtime) -> None:
    await seed_defaults(rt)
    for stage in ("event", "dispatch"):  # exported from the start, at 0
        stale_deadlines(rt).labels(stage)
    parts = notifier_parts(rt)
    parts.dispatcher = Dispatcher(rt, provider_from_settings(rt.settings))
    rt.spawn(parts.dispatcher.run(), "sms-dispatcher")


DEFINITION = ServiceDefinition(
    name="notifier",
    title="After-sales platform: notifier",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=[router],
    consumers=[ConsumerSpec("orders", [ORDER_EVENTS], order_handlers),
               ConsumerSpec("sla", [SLA_EVENTS], sla_handlers)],
    on_start=on_start,
    parts=build,
)


def create_app(settings: NotifierSettings | None = None):
    # the notifier's metrics are registered with its parts, on /metrics from the start
    # (docs/operations.md, "Metrics")
    return create_service_app(DEFINITION, settings or load_settings(NotifierSettings))
