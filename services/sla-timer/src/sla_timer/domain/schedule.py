"""When a timer is due: a rule's duration (or a policy override) from a start
instant, in calendar time or working days of the business calendar."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.calendar import BusinessCalendar
from sla_timer.domain.rules import Rule


@dataclass(frozen=True)
class Policy:
    """An operator override of a rule for one merchant or category."""

    enabled: bool = True
    after: timedelta | None = None
    working_days: int | None = None


def due_at(rule: Rule, start: datetime, calendar: BusinessCalendar, policy: Policy | None = None) -> datetime:
    after, days = rule.after, rule.working_days
    if policy is not None and (policy.after is not None or policy.working_days is not None):
        after, days = policy.after, policy.working_days
    if days is not None:
        return calendar.add_working_days(start, days)
    assert after is not None
    return start + after


def pick_policy(overrides: dict[tuple[str, str, str], Policy], rule: str, merchant_id: str,
                category: str) -> Policy | None:
    """A merchant's override wins over its category's."""
    return overrides.get(("merchant", merchant_id, rule)) or overrides.get(("category", category, rule))
