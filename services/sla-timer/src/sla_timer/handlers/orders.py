"""Order events → timers started and cancelled, in the idempotent consumer (a
redelivered event does nothing). Each event becomes a :class:`Plan` (rules to
cancel, timers to start); a single event applies its plan at once, a fetched batch
applies all plans in one transaction with bulk statements, with the same result
as applying them one after another."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import case, literal, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import batched
from shared.contracts.orders import ServiceOrderCreated, ServiceOrderTransitioned
from shared.ids import new_ids
from shared.runtime import Runtime
from sla_timer.domain.rules import facts_of_created, facts_of_transition, rules_cancelled, rules_started
from sla_timer.domain.schedule import due_at, pick_policy
from sla_timer.handlers.armed import publish_armed
from sla_timer.handlers.policies import Policies
from sla_timer.adapters.metrics import timer_metrics
from sla_timer.models import Timer

TIMERS = Timer.__table__
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
IN_CHUNK = 1000  # bounded IN lists (SQLite's variable limit)


@dataclass
class Plan:
    """What one order event does: cancel these pending rules first, then start these timers."""

    order_id: str
    reason: str = ""
    cancel: set[str] = field(default_factory=set)
    start: list[dict] = field(default_factory=list)
    # When the cancelling event happened: a timer already due by then is not cancelled but
    # fires (late) — it was earned before the event (e.g. a 48 h penalty the receipt and the
    # late decision, consumed together, would otherwise erase).
    at: datetime | None = None


def timer_rows(pol: Policies, *, facts: set[str], order_id: str, version: int, state: str, merchant_id: str,
               category: str, problem_type: str, at: datetime, now: datetime, extra: dict | None = None) -> list[dict]:
    rows = []
    rules = rules_started(facts, problem_type)
    ids = new_ids(len(rules))
    for rule, tid in zip(rules, ids):
        policy = pick_policy(pol.overrides, rule.name, merchant_id, category) if pol.overrides else None
        if policy is not None and not policy.enabled:
            continue
        rows.append({
            # Without extras the rule's own (never mutated) dict: insert_timers encodes it once.
            "id": tid, "order_id": order_id, "rule": rule.name, "action": rule.action,
            "details": {**rule.details, **extra} if extra else rule.details, "state": "pending",
            "due_at": due_at(rule, at, pol.calendar, policy), "order_version": version, "order_state": state,
            "created_at": now, "cancelled_at": None, "cancelled_by": None,
            "merchant_id": merchant_id, "category": category,
        })
    return rows


def plan_created(pol: Policies, data: ServiceOrderCreated, now: datetime) -> Plan:
    return Plan(data.order_id, start=timer_rows(
        pol, facts=facts_of_created(), order_id=data.order_id, version=data.version, state=data.state,
        merchant_id=data.merchant_id, category=data.category, problem_type=data.problem_type,
        at=data.created_at, now=now))


def plan_transitioned(pol: Policies, data: ServiceOrderTransitioned, now: datetime) -> Plan:
    facts = facts_of_transition(data.action, data.from_state, data.to_state, data.details)
    extra = {}
    if data.action == "fill_shipment" and data.order.merchant_contact_phone:
        extra["merchant_contact_phone"] = data.order.merchant_contact_phone
    # Cancel first: an action may end one round of a rule and start the next.
    return Plan(data.order_id, reason=data.action, cancel=rules_cancelled(facts), at=data.occurred_at,
                start=timer_rows(
        pol, facts=facts, order_id=data.order_id, version=data.version, state=data.to_state,
        merchant_id=data.order.merchant_id, category=data.order.category, problem_type=data.order.problem_type,
        at=data.occurred_at, now=now, extra=extra))


# PostgreSQL: one statement text for every batch, the orders and their cancelling events'
# times as two array parameters (an IN list and a CASE over the batch's orders were a new
# statement, compiled, prepared and planned again, at every batch)
_CANCEL_PG = text(
    "UPDATE timers SET state = 'cancelled', cancelled_at = :now, cancelled_by = :reason "
    "FROM unnest(CAST(:orders AS varchar[]), CAST(:ats AS timestamptz[])) AS x(order_id, at) "
    "WHERE timers.order_id = x.order_id AND timers.state = 'pending' "
    "AND timers.rule = ANY(CAST(:rules AS varchar[])) AND timers.due_at > x.at "
    "RETURNING timers.rule")


async def cancel_pending(session: AsyncSession, *, order_ids: Sequence[str], rules: set[str], reason: str,
                         now: datetime, at: dict[str, datetime] | None = None) -> list[str]:
    """Cancel the pending timers of these rules; with ``at`` (order → the cancelling event's
    time) only those due after it (one due before it was earned and fires). Returns the
    rule of each timer cancelled. ``order_ids``: each order once."""
    at = at or {}
    if session.bind.dialect.name == "postgresql":
        return list((await session.execute(_CANCEL_PG, {
            "now": now, "reason": reason, "orders": list(order_ids), "ats": [at.get(o, _EPOCH) for o in order_ids],
            "rules": sorted(rules)})).scalars())
    cancelled: list[str] = []
    for k in range(0, len(order_ids), IN_CHUNK):
        chunk = order_ids[k:k + IN_CHUNK]
        where = [TIMERS.c.order_id.in_(chunk), TIMERS.c.state == "pending", TIMERS.c.rule.in_(sorted(rules))]
        if at:
            typed = TIMERS.c.due_at.type  # bound as the column stores times (SQLite: text)
            where.append(TIMERS.c.due_at > case({o: literal(at[o], typed) for o in chunk if o in at},
                                                value=TIMERS.c.order_id, else_=literal(_EPOCH, typed)))
        cancelled += (await session.execute(update(TIMERS).where(*where)
                                            .values(state="cancelled", cancelled_at=now, cancelled_by=reason)
                                            .returning(TIMERS.c.rule))).scalars()
    return cancelled


_COLS = ("id", "order_id", "rule", "action", "details", "state", "due_at", "order_version", "order_state",
         "created_at", "cancelled_at", "cancelled_by", "merchant_id", "category")


async def insert_timers(session: AsyncSession, rows: list[dict]) -> None:
    """One bulk insert. On PostgreSQL a binary COPY inside the session's transaction:
    no per-row bind processing, which dominated a consumed batch's cost."""
    if session.bind.dialect.name != "postgresql":
        await session.execute(insert(TIMERS), rows)
        return
    conn = await session.connection()
    apg = (await conn.get_raw_connection()).driver_connection
    if not apg.is_in_transaction():  # the driver opens the transaction at the first statement
        await session.execute(text("SELECT 1"))
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    encoded: dict[int, str] = {}  # by object: most rows share their rule's details dict

    def details(d: dict) -> str:
        text_ = encoded.get(id(d))
        if text_ is None:
            text_ = encoded[id(d)] = dumps(d)
        return text_

    await apg.copy_records_to_table("timers", columns=_COLS, records=[
        (r["id"], r["order_id"], r["rule"], r["action"], details(r["details"]), r["state"], r["due_at"],
         r["order_version"], r["order_state"], r["created_at"], r["cancelled_at"], r["cancelled_by"],
         r["merchant_id"], r["category"])
        for r in rows])


async def apply_plans(session: AsyncSession, plans: Sequence[Plan], now: datetime, metrics=None) -> int:
    """Apply plans in order with one bulk cancel per (reason, rules) group and one bulk
    insert. Timers started and cancelled within the batch are cancelled in memory (and
    stored as cancelled); the database cancels only hit timers that existed before the
    batch, each (order, rule) once, by the first event that cancels it. Returns how
    many of the started timers are still pending at the end (to wake the firing loop).
    ``metrics`` (TimerMetrics) counts the cancellations once the transaction commits."""
    fresh: dict[str, list[dict]] = defaultdict(list)  # order -> timers started in this batch
    db_cancelled: dict[str, set[str]] = defaultdict(set)
    groups: dict[tuple[str, frozenset[str]], list[str]] = defaultdict(list)
    cancel_at: dict[str, datetime] = {}
    rows: list[dict] = []
    for p in plans:
        if p.cancel:
            for row in fresh.get(p.order_id, ()):
                if row["state"] == "pending" and row["rule"] in p.cancel and (p.at is None or row["due_at"] > p.at):
                    row.update(state="cancelled", cancelled_at=now, cancelled_by=p.reason)
            todo = p.cancel - db_cancelled[p.order_id]
            if todo:
                db_cancelled[p.order_id] |= todo
                groups[(p.reason, frozenset(todo))].append(p.order_id)
                if p.at is not None:
                    cancel_at.setdefault(p.order_id, p.at)
        fresh[p.order_id].extend(p.start)
        rows.extend(p.start)
    cancelled = [r["rule"] for r in rows if r["state"] == "cancelled"]  # started and cancelled in this batch
    for (reason, rules), order_ids in groups.items():
        cancelled += await cancel_pending(session, order_ids=order_ids, rules=set(rules), reason=reason, now=now,
                                          at=cancel_at)
    if rows:
        await insert_timers(session, rows)
    if metrics is not None:
        metrics.cancelled_at_commit(session, cancelled)
    return sum(1 for r in rows if r["state"] == "pending")


def order_handlers(rt: Runtime):
    policies: Policies = rt.sla_policies  # type: ignore[attr-defined]
    wake = rt.sla_wake  # type: ignore[attr-defined]

    def plan(pol: Policies, data, now: datetime) -> Plan:
        if isinstance(data, ServiceOrderCreated):
            return plan_created(pol, data, now)
        return plan_transitioned(pol, data, now)

    async def one(session, env, data) -> None:
        now = rt.clock.now()
        pol = await policies.current(session)
        plans = [plan(pol, data, now)]
        if await apply_plans(session, plans, now, timer_metrics(rt)):
            wake()
        await publish_armed(rt, session, plans, now)  # sla.deadlines_armed (handlers/armed.py)

    async def many(session, items) -> None:
        now = rt.clock.now()
        pol = await policies.current(session)
        plans = [plan(pol, data, now) for _, data in items]
        if await apply_plans(session, plans, now, timer_metrics(rt)):
            wake()
        await publish_armed(rt, session, plans, now)

    handler = batched(one, many)
    return {"service_order.created": handler, "service_order.transitioned": handler}
