"""Claims due timers in batches and fires them: each claimed timer is marked
fired and its ``sla.deadline_fired`` event written to the outbox in the SAME
transaction, so a crash either fires a timer once or not at all (docs/deadlines.md).
On PostgreSQL the claim is ``FOR UPDATE SKIP LOCKED``: replicas share the work, never
a timer.

A batch is a claim (the due rows locked, earliest first) and one statement marking them
fired and returning them (on SQLite one statement, one writer, without the row locks),
and the batch's events as ONE outbox bundle
row (``shared.outbox``: sent by the relay as separate messages, in due order), built and
encoded by the shared codec (``shared.events``): the database writes, indexes, reads
back and marks one outbox row per batch instead of one per timer. A timer fires once
because the claim moves it from pending to fired under its row lock, in the transaction
that writes its event. A timer's event id is derived from the timer id, so a timer's
event is the same event however often it is written.

Each event carries its rule's cancelling facts (``cancelled_by``, from the rule table, left
out for a rule the table does not know, as the contract leaves out an empty list), so a
consumer that has already seen a later cancelling transition can ignore a stale deadline.
A timer whose row the contract refuses (it can only have been written around the
consumers, by hand) is cancelled with the reason and logged: it never stalls the others."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import JSON, String, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from shared.contracts.sla import DeadlineFired
from shared.db import UTCDateTime
from shared.events import DecodeError, make_envelope
from shared.retry import Backoff
from shared.runtime import Runtime
from sla_timer.domain.rules import CANCELLED_BY
from sla_timer.adapters.metrics import timer_metrics
from sla_timer.models import PENDING_STATE, Timer

log = logging.getLogger(__name__)

PRODUCER = "sla-timer"
EVENT_TYPE = "sla.deadline_fired"
INVALID = "invalid"  # cancelled_by of a timer whose event the contract refuses


def event_id(timer_id: str) -> uuid.UUID:
    """A timer's event is the same event however often it is written: a name-based
    UUID (version 3)."""
    return uuid.uuid3(uuid.NAMESPACE_URL, f"sla-timer/{timer_id}")


_RETURNED = (Timer.id, Timer.order_id, Timer.rule, Timer.action, Timer.order_version, Timer.order_state,
             Timer.due_at, Timer.details)
# Claim in the pending timers' due_at index order, so LIMIT stops early (ties in due_at: any order),
# then mark the claimed rows by primary key. Two statements, not one: with the ids bound as
# an array the planner sees how many rows the update touches and looks each up by its
# primary key. In one statement (the ids from the claim's CTE) it could not, and before the
# table's first analyze it read every pending timer's index entry, or the whole table, on
# each claim (bench-platform: 20,000 to 50,000 rows per claim).
_PG_CLAIM = text("""
SELECT id FROM timers WHERE state = 'pending' AND due_at <= :now
ORDER BY due_at LIMIT :lim FOR UPDATE SKIP LOCKED
""").bindparams(bindparam("now", type_=UTCDateTime()))
_PG_MARK = text("""
UPDATE timers SET state = 'fired', fired_at = :now WHERE id = ANY(:ids)
RETURNING id, order_id, rule, action, order_version, order_state, due_at, details
""").bindparams(bindparam("now", type_=UTCDateTime()), bindparam("ids", type_=ARRAY(String))).columns(
    id=String, order_id=String, rule=String, action=String, order_state=String, due_at=UTCDateTime(), details=JSON)


_NO_BITMAP_SCAN = text("SET LOCAL enable_bitmapscan = off")  # this transaction only


def fired_event(t, now: datetime):
    """The ``sla.deadline_fired`` envelope of a claimed timer row."""
    return make_envelope(
        type_=EVENT_TYPE, key=t.order_id, producer=PRODUCER, occurred_at=now, event_id=event_id(t.id),
        data=DeadlineFired(timer_id=t.id, order_id=t.order_id, rule=t.rule, action=t.action,
                           order_version=t.order_version, order_state=t.order_state, due_at=t.due_at,
                           fired_at=now, details=t.details or {}, cancelled_by=CANCELLED_BY.get(t.rule) or []))


async def fire_due(rt: Runtime, limit: int = 1000) -> int:
    """One batch: at most ``limit`` due timers, earliest first. Returns how many fired."""
    now = rt.clock.now().astimezone(timezone.utc)
    async with rt.uow() as s:
        if not rt.settings.is_sqlite:
            # An ordered index scan, never a bitmap scan: every fired or cancelled timer leaves
            # a dead ('pending', due_at) index entry in the region the claim reads; an index
            # scan marks the entries dead for the next claims and stops at LIMIT, a bitmap
            # scan (the planner's pick when few rows look due) reads them all again, every
            # claim, until a vacuum.
            await s.execute(_NO_BITMAP_SCAN)
            ids = list((await s.execute(_PG_CLAIM, {"now": now, "lim": limit})).scalars())
            rows = (await s.execute(_PG_MARK, {"now": now, "ids": ids})).all() if ids else []
        else:
            due = (select(Timer.id).where(Timer.state == PENDING_STATE, Timer.due_at <= now)
                   .order_by(Timer.due_at, Timer.id).limit(limit))
            rows = (await s.execute(
                update(Timer).where(Timer.id.in_(due.scalar_subquery()), Timer.state == "pending")
                .values(state="fired", fired_at=now).returning(*_RETURNED)
                .execution_options(synchronize_session=False))).all()
        if not rows:
            return 0
        rows.sort(key=lambda r: (r.due_at, r.id))  # RETURNING order is unspecified: due order
        events, invalid = [], []
        for r in rows:
            try:
                events.append(fired_event(r, now))
            except DecodeError as exc:
                invalid.append((r.id, str(exc)))
        if invalid:
            for tid, reason in invalid:
                log.error("timer refused by the event contract; cancelled", extra={"timer_id": tid, "error": reason})
            await s.execute(update(Timer).where(Timer.id.in_([tid for tid, _ in invalid]))
                            .values(state="cancelled", cancelled_at=now, cancelled_by=INVALID, fired_at=None)
                            .execution_options(synchronize_session=False))
        await rt.outbox.add_bundle(s, events)
    refused = {tid for tid, _ in invalid}
    timer_metrics(rt).fired_late((r.rule, (now - r.due_at).total_seconds()) for r in rows if r.id not in refused)
    return len(events)


async def next_due(rt: Runtime, after: datetime) -> datetime | None:
    """The earliest pending due time after ``after`` (the time of the claim that just found no
    more due timers). The range starts there, not at the first pending entry of the index:
    each fired timer leaves a dead pending entry before it, which an index-only scan from the
    start would visit on every call until a vacuum."""
    async with rt.sessions() as s, s.begin():
        if not rt.settings.is_sqlite:
            await s.execute(_NO_BITMAP_SCAN)  # the index in order from ``after``: not every later timer
        return await s.scalar(select(Timer.due_at).where(Timer.state == PENDING_STATE, Timer.due_at > after)
                              .order_by(Timer.due_at).limit(1))


class FiringLoop:
    """Fires batches while there are due timers, then sleeps until the next due
    time, a wake-up (new timers), or the poll interval (the virtual clock may jump)."""

    def __init__(self, rt: Runtime, batch: int, poll_s: float, min_gap_s: float = 0.0) -> None:
        self.rt, self.batch, self.poll_s, self.min_gap_s = rt, batch, poll_s, min_gap_s
        self._wake = asyncio.Event()
        self._retry = Backoff(max(0.05, min(1.0, poll_s * 5)), 5.0)  # after a failed batch (the database away)
        self.fired = 0

    def wake(self) -> None:
        self._wake.set()

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def run(self) -> None:
        while True:
            try:
                claimed_at = self.rt.clock.now()
                n = await fire_due(self.rt, self.batch)
                self._retry.reset()
                self.fired += n
                if n == self.batch:
                    continue
                if n and self.min_gap_s:
                    # timers coming due one by one (a busy day, a fast virtual clock) fire
                    # together: a claim per gap rather than one per timer; lateness grows by
                    # at most the gap
                    await self.pause(self.min_gap_s)
                    continue
                nxt = await next_due(self.rt, claimed_at)
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
                await self._retry.wait()


__all__ = ["FiringLoop", "event_id", "fire_due", "fired_event", "next_due"]
