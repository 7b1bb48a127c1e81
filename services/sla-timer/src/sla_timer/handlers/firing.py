"""Claims due timers in batches and fires them: each claimed timer is marked
fired and its ``sla.deadline_fired`` event written to the outbox in the SAME
transaction, so a crash either fires a timer once or not at all. On PostgreSQL
the claim is ``FOR UPDATE SKIP LOCKED``: replicas share the work, never a timer."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime

from sqlalchemy import func, insert, select, update

from shared.runtime import Runtime
from shared.topics import SLA_EVENTS
from sla_timer.models import Timer

log = logging.getLogger(__name__)

PRODUCER = "sla-timer"
EVENT_TYPE = "sla.deadline_fired"


def _payload(t, now: datetime) -> str:
    """The ``sla.deadline_fired`` envelope as JSON, built directly: firing is the hot
    path, and the row's fields are already typed by the table (contract checked in tests)."""
    fired_at = now.isoformat()
    return json.dumps({
        # Deterministic id: a timer's event is the same event however often it is written.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sla-timer/{t.id}")), "type": EVENT_TYPE, "schema_version": 1,
        "occurred_at": fired_at, "producer": PRODUCER, "key": t.order_id, "correlation_id": None,
        "data": {"timer_id": t.id, "order_id": t.order_id, "rule": t.rule, "action": t.action,
                 "order_version": t.order_version, "order_state": t.order_state, "due_at": t.due_at.isoformat(),
                 "fired_at": fired_at, "details": t.details or {}},
    }, separators=(",", ":"))


async def fire_due(rt: Runtime, limit: int = 1000) -> int:
    """One batch: at most ``limit`` due timers, earliest first. Returns how many fired."""
    now = rt.clock.now()
    due = (select(Timer.id).where(Timer.state == "pending", Timer.due_at <= now)
           .order_by(Timer.due_at, Timer.id).limit(limit))
    if not rt.settings.is_sqlite:
        due = due.with_for_update(skip_locked=True)  # replicas skip each other's claims
    claim = (update(Timer).where(Timer.id.in_(due.scalar_subquery()), Timer.state == "pending")
             .values(state="fired", fired_at=now)
             .returning(Timer.id, Timer.order_id, Timer.rule, Timer.action, Timer.order_version, Timer.order_state,
                        Timer.due_at, Timer.details)
             .execution_options(synchronize_session=False))
    async with rt.uow() as s:
        rows = (await s.execute(claim)).all()
        if not rows:
            return 0
        rows.sort(key=lambda r: (r.due_at, r.id))  # RETURNING order is unspecified
        await s.execute(insert(rt.tables.outbox), [
            {"event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sla-timer/{r.id}")), "topic": SLA_EVENTS,
             "key": r.order_id, "event_type": EVENT_TYPE, "payload": _payload(r, now), "created_at": now,
             "attempts": 0}
            for r in rows])
        s.info["outbox_added"] = True
    return len(rows)


async def next_due(rt: Runtime) -> datetime | None:
    async with rt.sessions() as s:
        return await s.scalar(select(func.min(Timer.due_at)).where(Timer.state == "pending"))


class FiringLoop:
    """Fires batches while there are due timers, then sleeps until the next due
    time, a wake-up (new timers), or the poll interval (the virtual clock may jump)."""

    def __init__(self, rt: Runtime, batch: int, poll_s: float) -> None:
        self.rt, self.batch, self.poll_s = rt, batch, poll_s
        self._wake = asyncio.Event()
        self.fired = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                n = await fire_due(self.rt, self.batch)
                self.fired += n
                if n == self.batch:
                    continue
                nxt = await next_due(self.rt)
                delay = self.poll_s
                if nxt is not None:
                    delay = max(0.0, min(delay, (nxt - self.rt.clock.now()).total_seconds()))
                self._wake.clear()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the DB may be briefly away; retry
                log.warning("firing loop error", extra={"error": repr(exc)})
                await asyncio.sleep(min(1.0, self.poll_s * 5))


__all__ = ["FiringLoop", "fire_due", "next_due"]
