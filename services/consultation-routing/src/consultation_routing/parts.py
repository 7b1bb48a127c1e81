"""What one running routing service holds besides the shared runtime (``Runtime.parts``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from consultation_routing.adapters.state import RoutingState
from consultation_routing.domain.engine import PlatformQueue, RoutingEngine, RoutingView
from consultation_routing.adapters.metrics import DecisionMetrics
from consultation_routing.adapters.publisher import DecisionPublisher
from consultation_routing.settings import ConsultationRoutingSettings
from shared.calendar import DEFAULT_CALENDAR, BusinessCalendar
from shared.runtime import Runtime


@dataclass
class Routing:
    state: RoutingState
    engine: RoutingEngine
    publisher: DecisionPublisher
    metrics: DecisionMetrics


def routing_engine(view: RoutingView, settings: ConsultationRoutingSettings, calendar: BusinessCalendar) -> RoutingEngine:
    """The engine with the platform queue and the limits from the service's settings."""
    return RoutingEngine(
        view,
        PlatformQueue(settings.platform_hotline, settings.platform_im_queue_id, settings.platform_hover_text),
        calendar, queue_ttl=timedelta(seconds=settings.queue_state_ttl_s), max_state_age_s=settings.max_state_age_s,
    )


def build(rt: Runtime) -> Routing:
    settings: ConsultationRoutingSettings = rt.settings  # type: ignore[assignment]
    state = RoutingState(rt.sessions, now=lambda: rt.clock.now(),
                         order_lookup=timedelta(days=settings.order_lookup_days))
    return Routing(
        state=state,
        engine=routing_engine(state, settings, DEFAULT_CALENDAR),
        publisher=DecisionPublisher(rt, state, capacity=settings.decision_buffer, batch=settings.decision_batch,
                                    remember_billed=settings.remember_billed, journal_dir=settings.journal_path,
                                    interval_s=settings.journal_interval_s),
        metrics=DecisionMetrics(rt.metrics),  # on /metrics from the start (docs/operations.md, "Metrics")
    )


def routing_of(rt: Runtime) -> Routing:
    parts = rt.parts
    if not isinstance(parts, Routing):
        raise TypeError(f"not a routing service runtime: {rt.name}")
    return parts
