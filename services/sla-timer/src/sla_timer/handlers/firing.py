"""Claims due timers in batches and fires them: each claimed timer is marked
fired and its ``sla.deadline_fired`` event written to the outbox in the SAME
transaction, so a crash either fires a timer once or not at all. On PostgreSQL
the claim is ``FOR UPDATE SKIP LOCKED``: replicas share the work, never a timer.

On PostgreSQL a batch is ONE statement: claim (skip-locked) → mark fired → insert the
batch's events as ONE outbox bundle row (``shared.outbox``: one line per event, sent by
the relay as separate messages, in due order; envelopes built by the database) — no row
travels through Python, which matters on the hot path since the relay shares this
process, and the database writes, indexes, reads back and marks one outbox row per batch
instead of one per timer. A timer fires once because the claim moves it from pending to
fired under its row lock, in the transaction that writes its event. SQLite (one writer,
tests and development) runs the same steps as two statements with the envelopes built
here, one outbox row each; both build the same envelope, event id included.

Each event carries its rule's cancelling facts (``cancelled_by``, from the rule table, left
out for a rule the table does not know, as the contract leaves out an empty list), so a
consumer that has already seen a later cancelling transition can ignore a stale deadline."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import func, insert, select, text, update

from shared.outbox import BUNDLE
from shared.runtime import Runtime
from shared.topics import SLA_EVENTS
from sla_timer.domain.rules import CANCELLED_BY
from sla_timer.models import Timer

log = logging.getLogger(__name__)

PRODUCER = "sla-timer"
EVENT_TYPE = "sla.deadline_fired"


def event_id(timer_id: str) -> str:
    """A timer's event is the same event however often it is written: a name-based
    UUID (version 3, MD5), which PostgreSQL can compute too (``_PG_EVENT_ID``)."""
    return str(uuid.uuid3(uuid.NAMESPACE_URL, f"sla-timer/{timer_id}"))


# uuid3(NAMESPACE_URL, 'sla-timer/' || id) in SQL: md5 of namespace bytes + name, version
# nibble 3, variant bits 10 (what Python's uuid.uuid3 does).
# (The variant digit: 8, 9, a or b by the hex digit's low two bits, looked up by position.)
_PG_EVENT_ID = (
    "(substr(h, 1, 12) || '3' || substr(h, 14, 3)"
    " || substr('89ab89ab89ab89ab', position(substr(h, 17, 1) in '0123456789abcdef'), 1)"
    " || substr(h, 18))::uuid::text"
)
_PG_TS = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
# The envelope's JSON text by concatenation (twice as fast as json_build_object, whose
# per-key work dominated the claim statement): the batch's constant parts come in as
# parameters (``_envelope_parts``), every text column goes through to_json (escaping),
# the columns are NOT NULL, and ``details`` (json, stored as given) has any raw line
# break or tab - whitespace between tokens only, in valid JSON - turned into a space,
# since a bundle line must not hold one. ``cancelled_by`` is looked up by rule in a JSON
# object of ready-made text (``_CANCEL_TAILS``), parsed once per statement (a scalar
# subquery). Same JSON as ``_payload`` builds, key order too.
_PG_ENVELOPE = (
    """'{"id":"' || """ + _PG_EVENT_ID + """ || CAST(:head AS text) || to_json(order_id)::text"""
    """ || CAST(:mid AS text) || to_json(id)::text"""
    """ || ',"order_id":' || to_json(order_id)::text || ',"rule":' || to_json(rule)::text"""
    """ || ',"action":' || to_json(action)::text || ',"order_version":' || order_version::text"""
    """ || ',"order_state":' || to_json(order_state)::text || ',"due_at":"' || """ + _PG_TS.format("due_at")
    + r""" || CAST(:tail AS text) || translate(details::text, E'\n\r\t', '   ')"""
    + """ || coalesce((SELECT CAST(:cancels AS jsonb)) ->> rule, '') || '}}'"""
)
# rule → the envelope's text after ``details`` (nothing for a rule without cancelling facts)
_CANCEL_TAILS = json.dumps({rule: ',"cancelled_by":' + json.dumps(facts, separators=(",", ":"))
                            for rule, facts in CANCELLED_BY.items() if facts})


def _envelope_parts(now: datetime) -> dict[str, str]:
    at = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")  # as _PG_TS formats
    return {"head": f'","type":{json.dumps(EVENT_TYPE)},"schema_version":1,"occurred_at":"{at}",'
                    f'"producer":{json.dumps(PRODUCER)},"key":',
            # (a parameter: in the statement's text ':null' would read as a bind parameter)
            "mid": ',"correlation_id":null,"data":{"timer_id":',
            "tail": f'","fired_at":"{at}","details":', "cancels": _CANCEL_TAILS}
# Claim in (state, due_at) index order, so LIMIT stops early (ties in due_at: any order);
# = ANY(ARRAY(...)) keeps the update on primary-key lookups (a join on the CTE was planned
# as a hash join over the whole table).
_PG_FIRE = text(f"""
WITH due AS (
    SELECT id FROM timers WHERE state = 'pending' AND due_at <= CAST(:now AS timestamptz)
    ORDER BY due_at LIMIT :lim FOR UPDATE SKIP LOCKED
), fired AS (
    UPDATE timers t SET state = 'fired', fired_at = CAST(:now AS timestamptz)
    WHERE t.id = ANY(ARRAY(SELECT id FROM due)) AND t.state = 'pending'
    RETURNING t.id, t.order_id, t.rule, t.action, t.order_version, t.order_state, t.due_at, t.details,
              md5(decode('{uuid.NAMESPACE_URL.hex}', 'hex') || convert_to('sla-timer/' || t.id, 'UTF8')) AS h
), ins AS (
    INSERT INTO outbox (event_id, topic, key, event_type, payload, created_at, attempts)
    SELECT CAST(gen_random_uuid() AS text), CAST(:topic AS text), (array_agg(order_id ORDER BY due_at, id))[1],
        CAST(:bundle AS text), string_agg(to_json(order_id)::text || E'\t' || {_PG_ENVELOPE}, E'\n' ORDER BY due_at, id),
        CAST(:now AS timestamptz), 0
    FROM fired
    HAVING count(*) > 0
    RETURNING 1
)
SELECT count(*) FROM fired
""")


def _payload(t, now: datetime) -> str:
    """The ``sla.deadline_fired`` envelope as JSON, built directly: firing is the hot
    path, and the row's fields are already typed by the table (contract checked in tests)."""
    fired_at = now.isoformat()
    data = {"timer_id": t.id, "order_id": t.order_id, "rule": t.rule, "action": t.action,
            "order_version": t.order_version, "order_state": t.order_state, "due_at": t.due_at.isoformat(),
            "fired_at": fired_at, "details": t.details or {}}
    if CANCELLED_BY.get(t.rule):
        data["cancelled_by"] = CANCELLED_BY[t.rule]
    return json.dumps({
        # Deterministic id: a timer's event is the same event however often it is written.
        "id": event_id(t.id), "type": EVENT_TYPE, "schema_version": 1,
        "occurred_at": fired_at, "producer": PRODUCER, "key": t.order_id, "correlation_id": None,
        "data": data,
    }, separators=(",", ":"))


async def fire_due(rt: Runtime, limit: int = 1000) -> int:
    """One batch: at most ``limit`` due timers, earliest first. Returns how many fired."""
    now = rt.clock.now()
    if not rt.settings.is_sqlite:
        async with rt.uow() as s:
            n = await s.scalar(_PG_FIRE, {"now": now, "lim": limit, "topic": SLA_EVENTS, "bundle": BUNDLE,
                                          **_envelope_parts(now)})
            if n:
                s.info["outbox_added"] = True
        return n or 0
    due = (select(Timer.id).where(Timer.state == "pending", Timer.due_at <= now)
           .order_by(Timer.due_at, Timer.id).limit(limit))
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
            {"event_id": event_id(r.id), "topic": SLA_EVENTS,
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


__all__ = ["FiringLoop", "event_id", "fire_due", "next_due"]
