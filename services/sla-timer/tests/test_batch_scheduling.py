"""A batch of order events applied with bulk statements ends exactly where applying
them one by one ends: timers started and cancelled inside the batch, cancels of
timers stored before it (first cancelling event wins), restarts after a cancel."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from shared import db
from shared.migrations import upgrade
from sla_timer.app import MIGRATIONS
from sla_timer.handlers.orders import Plan, apply_plans
from sla_timer.models import Timer

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def row(order_id: str, rule: str, due: datetime) -> dict:
    return {"id": str(uuid.uuid4()), "order_id": order_id, "rule": rule, "action": "escalate", "details": {"k": 1},
            "state": "pending", "due_at": due, "order_version": 1, "order_state": "pending_audit", "created_at": T0,
            "cancelled_at": None, "cancelled_by": None, "merchant_id": "m-1", "category": "phones"}


def plans(a: str, b: str) -> list[Plan]:
    return [
        Plan(a, reason="claim", cancel={"first_response", "first_response_manager"}),
        Plan(b, start=[row(b, "first_response", T0 + timedelta(minutes=30)), row(b, "audit_deadline", T0)]),
        Plan(b, reason="claim", cancel={"first_response"}),
        Plan(a, reason="assign", cancel={"first_response"}),  # already cancelled by the claim
        Plan(a, reason="audit.approve_return", cancel={"audit_deadline"},
             start=[row(a, "ship_back_timeout", T0 + timedelta(days=30))]),
        Plan(a, reason="fill_shipment", cancel={"ship_back_timeout"},  # started in this batch, ended in it
             start=[row(a, "auto_refund", T0 + timedelta(days=15))]),
    ]


async def state_of(sessions, order_ids) -> list[tuple]:
    async with sessions() as s:
        rows = (await s.execute(select(Timer.order_id, Timer.rule, Timer.state, Timer.cancelled_by)
                                .where(Timer.order_id.in_(order_ids)))).all()
    names = {order_ids[0]: "a", order_ids[1]: "b"}
    return sorted((names[o], r, st, by) for o, r, st, by in rows)


async def test_batch_equals_one_by_one(database_url):
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    try:
        results = []
        for mode in ("batch", "single"):
            a, b = f"a-{mode}", f"b-{mode}"
            async with sessions() as s, s.begin():  # timers stored before the batch
                await apply_plans(s, [Plan(a, start=[row(a, "first_response", T0), row(a, "first_response_manager", T0),
                                                     row(a, "audit_deadline", T0)])], T0)
            started = 0
            async with sessions() as s, s.begin():
                if mode == "batch":
                    started = await apply_plans(s, plans(a, b), T0)
                else:
                    for p in plans(a, b):
                        started += await apply_plans(s, [p], T0)
            results.append(await state_of(sessions, [a, b]))
            # Pending when its transaction ends (wakes the firing loop): 2 of the 4 started.
            assert started == (2 if mode == "batch" else 4)
        assert results[0] == results[1]
        assert results[0] == [
            ("a", "audit_deadline", "cancelled", "audit.approve_return"),
            ("a", "auto_refund", "pending", None),
            ("a", "first_response", "cancelled", "claim"),
            ("a", "first_response_manager", "cancelled", "claim"),
            ("a", "ship_back_timeout", "cancelled", "fill_shipment"),
            ("b", "audit_deadline", "pending", None),
            ("b", "first_response", "cancelled", "claim"),
        ]
    finally:
        await engine.dispose()


async def test_a_timer_already_due_when_the_cancelling_event_happened_fires(database_url):
    """The chaos run: the receipt and the late decision (9 days later) consumed together
    created the 48 h penalty timer already overdue and cancelled it at once — an earned
    penalty never charged. A timer due before the cancelling event stays pending (it fires);
    one due after it is cancelled — in one batch and one by one, on both databases."""
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    received, decided = T0, T0 + timedelta(days=9)
    try:
        for mode in ("batch", "single"):
            late, early = f"late-{mode}", f"early-{mode}"
            async with sessions() as s, s.begin():  # stored before: an early decision cancels its timer
                await apply_plans(s, [Plan(early, start=[row(early, "processing_penalty", received + timedelta(hours=48))])], T0)
            plans = [
                Plan(late, start=[row(late, "processing_penalty", received + timedelta(hours=48))]),
                Plan(late, reason="process.refund", cancel={"processing_penalty"}, at=decided),
                Plan(early, reason="process.refund", cancel={"processing_penalty"}, at=received + timedelta(hours=47)),
            ]
            if mode == "batch":
                async with sessions() as s, s.begin():
                    await apply_plans(s, plans, decided)
            else:
                for p in plans:
                    async with sessions() as s, s.begin():
                        await apply_plans(s, [p], decided)
            async with sessions() as s:
                states = dict((await s.execute(select(Timer.order_id, Timer.state)
                                               .where(Timer.order_id.in_([late, early])))).all())
            assert states == {late: "pending", early: "cancelled"}, (mode, states)
    finally:
        await engine.dispose()
