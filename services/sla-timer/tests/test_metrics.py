"""The timer service's domain metrics (docs/operations.md, "Metrics"): pending and overdue
timers by rule from the database, firing lateness and fired counts from the firing
statement (both backends), cancellations counted when their transaction commits."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from shared.clock import ManualClock
from shared.migrations import upgrade
from sla_timer.app import MIGRATIONS, create_app
from sla_timer.handlers.firing import fire_due
from sla_timer.handlers.orders import Plan, apply_plans
from sla_timer.adapters.metrics import timer_metrics
from sla_timer.models import Timer
from sla_timer.settings import SlaTimerSettings

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


class Abort(Exception):
    """Rolls a transaction back."""


def samples(rt) -> dict[tuple[str, frozenset], float]:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(rt.metrics).decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(rt, name: str, **labels) -> float:
    return samples(rt).get((name, frozenset(labels.items())), 0.0)


def timer(order_id: str, rule: str, due: datetime) -> dict:
    return {"id": str(uuid.uuid4()), "order_id": order_id, "rule": rule, "action": "escalate", "details": {},
            "state": "pending", "due_at": due, "order_version": 1, "order_state": "pending_audit", "created_at": T0,
            "cancelled_at": None, "cancelled_by": None, "merchant_id": "m-1", "category": "phones"}


async def test_pending_overdue_fired_lateness_and_cancelled(database_url):
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    app = create_app(SlaTimerSettings(environment="test", database_url=url, log_json=False))
    rt = app.state.runtime
    clock = ManualClock(T0)
    rt.clock = rt.outbox.clock = clock
    try:
        async with rt.uow() as s:
            await s.execute(insert(Timer), [
                timer("o-1", "auto_refund", T0 - timedelta(seconds=3)),  # fires 3 s late
                timer("o-2", "auto_refund", T0 - timedelta(seconds=40)),  # 40 s late
                timer("o-3", "audit_escalation", T0 - timedelta(milliseconds=200)),
                timer("o-4", "first_response", T0 + timedelta(hours=1)),  # not due
                timer("o-5", "first_response", T0 + timedelta(hours=2))])
        await rt.sampled.refresh()
        assert value(rt, "sla_timer_pending_timers", rule="auto_refund") == 2
        assert value(rt, "sla_timer_pending_timers", rule="first_response") == 2
        assert value(rt, "sla_timer_pending_timers", rule="repair") == 0  # every rule listed
        assert value(rt, "sla_timer_overdue_timers") == 1  # only the 40 s one is more than 5 s overdue

        assert await fire_due(rt) == 3
        assert value(rt, "sla_timer_timers_fired_total", rule="auto_refund") == 2
        assert value(rt, "sla_timer_timers_fired_total", rule="audit_escalation") == 1
        assert value(rt, "sla_timer_firing_lateness_seconds_count", rule="auto_refund") == 2
        assert abs(value(rt, "sla_timer_firing_lateness_seconds_sum", rule="auto_refund") - 43) < 0.01
        assert value(rt, "sla_timer_firing_lateness_seconds_bucket", rule="auto_refund", le="5.0") == 1
        assert value(rt, "sla_timer_firing_lateness_seconds_bucket", rule="auto_refund", le="60.0") == 2
        assert value(rt, "sla_timer_firing_lateness_seconds_bucket", rule="audit_escalation", le="0.25") == 1
        await rt.sampled.refresh()
        assert value(rt, "sla_timer_overdue_timers") == 0
        assert value(rt, "sla_timer_pending_timers", rule="auto_refund") == 0

        metrics = timer_metrics(rt)
        # rolled back: not counted
        with pytest.raises(Abort):
            async with rt.sessions() as s, s.begin():
                await apply_plans(s, [Plan("o-4", reason="claim", cancel={"first_response"})], T0, metrics)
                raise Abort
        assert value(rt, "sla_timer_timers_cancelled_total", rule="first_response") == 0
        # committed: a stored timer cancelled, and one started and cancelled in the same batch
        async with rt.sessions() as s, s.begin():
            await apply_plans(s, [Plan("o-4", reason="claim", cancel={"first_response"}),
                                  Plan("o-6", start=[timer("o-6", "audit_deadline", T0 + timedelta(days=1))]),
                                  Plan("o-6", reason="audit.reject", cancel={"audit_deadline"})], T0, metrics)
        assert value(rt, "sla_timer_timers_cancelled_total", rule="first_response") == 1
        assert value(rt, "sla_timer_timers_cancelled_total", rule="audit_deadline") == 1
        await rt.sampled.refresh()
        assert value(rt, "sla_timer_pending_timers", rule="first_response") == 1
    finally:
        await rt.engine.dispose()
