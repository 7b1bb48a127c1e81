"""Building KPI timelines by hand (Beijing wall-clock times)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from kpi.domain.timeline import Milestone, OrderTimeline
from shared.clock import BEIJING

_n = 0


def bj(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BEIJING).astimezone(timezone.utc)


def order(merchant: str, created: datetime, **milestones) -> OrderTimeline:
    """milestones: kind=datetime or kind=(datetime, value) or kind=(datetime, None, amount)."""
    global _n
    _n += 1
    o = OrderTimeline(f"o-{_n:06d}", merchant, created)
    for kind, v in milestones.items():
        if isinstance(v, tuple):
            o.milestones[kind] = Milestone(*v)
        else:
            o.milestones[kind] = Milestone(v)
    return o


H = timedelta(hours=1)
D = Decimal
