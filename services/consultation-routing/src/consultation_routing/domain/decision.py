"""The routing decision (docs/routing.md, "The decision") as a table of fallback rules, checked in order.

The first rule whose condition holds sends the consultation to the platform
queue with that rule's reason; when none holds, the manufacturer's queue takes
it (reason ``enrolled``)."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from consultation_routing.domain.model import Facts, Manufacturer


def in_hours(m: Manufacturer, f: Facts) -> bool:
    if not (f.working_day or m.serve_non_working_days):
        return False
    start, end = m.hours[f.consultation.channel]
    return start <= f.local.time() < end


def has_agents(m: Manufacturer, f: Facts) -> bool:
    q = f.queue
    return f.queue_fresh and q is not None and q.agents_online >= max(m.min_agents, 1)


def has_room(m: Manufacturer, f: Facts) -> bool:
    q = f.queue
    if m.max_queue_length is not None and q.queue_length >= m.max_queue_length:
        return False
    if m.max_expected_wait_s is not None and q.expected_wait_s is not None and q.expected_wait_s >= m.max_expected_wait_s:
        return False
    return True


# (reason, condition sending the consultation to the platform), in order.
FALLBACK_RULES: tuple[tuple[str, Callable[[Facts], bool]], ...] = (
    ("unknown_sku", lambda f: f.sku is None),
    ("not_enrolled", lambda f: f.manufacturer is None or f.sku.category not in f.manufacturer.categories),
    ("disqualified", lambda f: f.manufacturer.disqualified),
    ("out_of_hours", lambda f: not in_hours(f.manufacturer, f)),
    ("no_agents", lambda f: not has_agents(f.manufacturer, f)),
    ("overflow", lambda f: not has_room(f.manufacturer, f)),
)

# Reasons where the platform serves an enrolled manufacturer's customer: billable (docs/routing.md, "Billable consultations").
BILLABLE_REASONS = frozenset({"disqualified", "out_of_hours", "no_agents", "overflow"})


def decide(facts: Facts) -> str:
    """The reason code: ``enrolled`` for the manufacturer's queue, else the platform's reason."""
    for reason, applies in FALLBACK_RULES:
        if applies(facts):
            return reason
    return "enrolled"


def is_fresh(reported_at, now, ttl: timedelta) -> bool:
    """A queue report counts while at most ``ttl`` old (docs/routing.md, "The decision")."""
    return now - reported_at <= ttl
