"""The SLA timer service's domain metrics (names and meanings: docs/operations.md, "Metrics").

- ``sla_timer_pending_timers{rule}``: timers armed and not yet fired or cancelled;
- ``sla_timer_overdue_timers``: pending timers due more than OVERDUE_S ago (they should have
  fired: the firing loop is stopped or behind) — both counted in the database every
  METRICS_REFRESH_S;
- ``sla_timer_firing_lateness_seconds{rule}``: fired at − due at, per fired timer (service clock);
- ``sla_timer_timers_fired_total{rule}``, ``sla_timer_timers_cancelled_total{rule}``: counted
  when the transaction that fired or cancelled them commits.
"""
from __future__ import annotations

from collections import Counter as Tally
from datetime import timedelta
from typing import Iterable

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select

from shared.metrics import after_commit
from sla_timer.domain.rules import RULES_BY_NAME
from sla_timer.models import PENDING_STATE, Timer

OVERDUE_S = 5.0  # the firing promise: a deadline fires within 5 s of being due
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)


class TimerMetrics:
    def __init__(self, rt) -> None:
        self.lateness = Histogram("sla_timer_firing_lateness_seconds",
                                  "How late timers fired: fired at minus due at (service clock)", ["rule"],
                                  registry=rt.metrics, buckets=LATENESS_BUCKETS)
        self.fired = Counter("sla_timer_timers_fired_total", "Timers fired", ["rule"], registry=rt.metrics)
        self.cancelled = Counter("sla_timer_timers_cancelled_total",
                                 "Timers cancelled before they were due (a transition ended their step)", ["rule"],
                                 registry=rt.metrics)
        rt.sampled.gauge("sla_timer_pending_timers", "Timers armed, not yet fired or cancelled", ["rule"],
                         lambda: _pending(rt))
        rt.sampled.gauge("sla_timer_overdue_timers",
                         f"Pending timers due more than {OVERDUE_S:g} s ago (should have fired)", [],
                         lambda: _overdue(rt))

    def fired_late(self, lateness: Iterable[tuple[str, float]]) -> None:
        """(rule, seconds late) of each timer a committed batch fired."""
        tally: Tally[str] = Tally()
        for rule, late in lateness:
            self.lateness.labels(rule).observe(max(0.0, late))
            tally[rule] += 1
        for rule, n in tally.items():
            self.fired.labels(rule).inc(n)

    def cancelled_at_commit(self, session, rules: Iterable[str]) -> None:
        """Count the cancelled timers (one rule name each) once ``session`` commits."""
        tally = Tally(rules)
        if tally:
            after_commit(session, lambda: [self.cancelled.labels(r).inc(n) for r, n in tally.items()])


def timer_metrics(rt) -> TimerMetrics:
    m = getattr(rt, "sla_metrics", None)
    if m is None:
        m = rt.sla_metrics = TimerMetrics(rt)
    return m


async def _pending(rt) -> list[tuple[tuple[str], int]]:
    counts = dict.fromkeys(RULES_BY_NAME, 0)  # every rule of the table, zeros included
    async with rt.sessions() as s:
        counts.update((await s.execute(select(Timer.rule, func.count()).where(Timer.state == PENDING_STATE)
                                       .group_by(Timer.rule))).all())
    return [((rule,), n) for rule, n in counts.items()]


async def _overdue(rt) -> list[tuple[tuple, int]]:
    before = rt.clock.now() - timedelta(seconds=OVERDUE_S)
    async with rt.sessions() as s:  # the partial index of pending timers
        n = await s.scalar(select(func.count()).where(Timer.state == PENDING_STATE, Timer.due_at < before))
    return [((), n or 0)]
