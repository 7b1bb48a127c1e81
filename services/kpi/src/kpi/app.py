"""The KPI service: scorecards, penalties, billing, composite index and statistics
computed from events (and the paid-transaction counts its ingest API receives)."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from kpi.api.routes import router
from kpi.models import Base, messaging
from kpi.parts import build, kpi_parts
from kpi.settings import KpiSettings
from shared.runtime import Runtime, ServiceDefinition, create_service_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _start(rt: Runtime) -> None:
    from kpi.entrypoints import metrics
    from kpi.entrypoints.consumers import start_consumer

    start_consumer(rt)  # one group over the order, SLA, routing and catalogue topics (batched)
    kpi_parts(rt).figures = metrics.install(rt)


DEFINITION = ServiceDefinition(
    name="kpi",
    title="After-sales platform: KPIs",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=[router],
    on_start=_start,
    parts=build,
)


def create_app(settings: KpiSettings | None = None):
    return create_service_app(DEFINITION, settings or load_settings(KpiSettings))
