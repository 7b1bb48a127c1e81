"""The read model's storage: applying a batch of events (bulk statements, one transaction,
the consumer's) and the indexed reads the pages make. SQLite and PostgreSQL alike."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Sequence

from sqlalchemy import Table, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.domain import readmodel as R
from console.models import (FiredDeadline, HourlyOrders, MerchantBacklog, OrderRow, RoutingHourly, StateCount,
                            TransfersHourly)
from shared.bulk import BulkWrite
from shared.db import one_of

IN_CHUNK = 1000  # bounded IN lists (SQLite's variable limit)
ORDER_COLUMNS = ("order_id", "number", "merchant_id", "state", "mode", "service_type", "category", "version",
                 "created_at", "entered_state_at", "updated_at")
ORDER_CHANGES = ("state", "version", "is_open", "entered_state_at", "updated_at")
# A batch's rows in one statement on PostgreSQL, an executemany on SQLite (shared/bulk.py).
_orders_upsert = sqlite.insert(OrderRow.__table__)
_WRITE_ORDERS = BulkWrite(
    OrderRow.__table__, (*ORDER_COLUMNS, "is_open"),
    pg_suffix="ON CONFLICT (order_id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in ORDER_CHANGES),
    portable=_orders_upsert.on_conflict_do_update(index_elements=["order_id"],
                                                  set_={c: _orders_upsert.excluded[c] for c in ORDER_CHANGES}))
# a timer fires once; a republished copy (another event id) changes nothing
_WRITE_FIRED = BulkWrite(FiredDeadline.__table__, tuple(c.name for c in FiredDeadline.__table__.columns),
                         pg_suffix="ON CONFLICT (timer_id) DO NOTHING",
                         portable=sqlite.insert(FiredDeadline.__table__).on_conflict_do_nothing(
                             index_elements=["timer_id"]))


def _insert(session: AsyncSession, table: Table):
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(table)


async def _add_counts(session: AsyncSession, table: Table, keys: tuple[str, ...], counts: dict,
                      columns: tuple[str, ...] = ("n",)) -> None:
    """Add deltas to counters (created at the delta when missing), one statement per chunk.
    ``counts``: key tuple -> delta, or key tuple -> tuple of deltas (one per column)."""
    rows = []
    for key, delta in counts.items():
        values = delta if isinstance(delta, tuple) else (delta,)
        if not any(values):
            continue
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key)), **dict(zip(columns, values))})
    if rows:
        # executemany: one statement compiled (and cached) whatever the number of rows
        stmt = _insert(session, table)
        stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                          set_={c: table.c[c] + stmt.excluded[c] for c in columns})
        await session.execute(stmt, rows)


async def apply_events(session: AsyncSession, items: Sequence[tuple[object, object]]) -> None:
    """Apply events (envelope, data), log order, in the caller's transaction."""
    order_events = [(env.type, d) for env, d in items if env.type in (R.ORDER_CREATED, R.ORDER_TRANSITIONED)]
    if order_events:
        await _apply_orders(session, order_events)
    await _WRITE_FIRED(session, [R.fired_row(d) for env, d in items if env.type == R.DEADLINE_FIRED])
    decided = Counter(R.routing_key(d) for env, d in items if env.type == R.ROUTING_DECIDED)
    if decided:
        await _add_counts(session, RoutingHourly.__table__, ("hour", "target", "reason", "channel", "manufacturer_id"),
                          decided)
    transferred = Counter(R.transfer_key(d) for env, d in items if env.type == R.ROUTING_TRANSFERRED)
    if transferred:
        await _add_counts(session, TransfersHourly.__table__, ("hour", "manufacturer_id"), transferred)


async def _apply_orders(session: AsyncSession, events: list[tuple[str, object]]) -> None:
    ids = list({d.order_id for _t, d in events})
    stored: dict[str, R.Order] = {}
    columns = [OrderRow.__table__.c[c] for c in ORDER_COLUMNS]
    for k in range(0, len(ids), IN_CHUNK):
        # plain rows, not ORM objects: nothing here is changed through the session
        rows = (await session.execute(
            select(*columns).where(one_of(session, OrderRow.order_id, ids[k:k + IN_CHUNK])))).all()
        stored.update((r[0], R.Order(*r)) for r in rows)
    ch = R.fold_orders(stored, events)
    # one row an order (``fold_orders`` keys them by id): PostgreSQL changes a row once a statement
    await _WRITE_ORDERS(session, [{**{c: getattr(o, c) for c in ORDER_COLUMNS}, "is_open": o.is_open}
                                  for o in ch.rows.values()])
    await _add_counts(session, StateCount.__table__, ("state", "mode"), ch.state_counts)
    hourly = {h: (ch.opened.get(h, 0), ch.closed.get(h, 0)) for h in set(ch.opened) | set(ch.closed)}
    await _add_counts(session, HourlyOrders.__table__, ("hour",), hourly, ("opened", "closed"))
    merchants = {m: (ch.merchant_open.get(m, 0), ch.merchant_total.get(m, 0))
                 for m in set(ch.merchant_open) | set(ch.merchant_total)}
    await _add_counts(session, MerchantBacklog.__table__, ("merchant_id",), merchants, ("open_n", "total_n"))


# ------------------------------------------------------------------------------------------ reads
def _order(r: OrderRow) -> dict:
    return {"order_id": r.order_id, "number": r.number, "merchant_id": r.merchant_id, "state": r.state,
            "mode": r.mode, "service_type": r.service_type, "category": r.category, "version": r.version,
            "created_at": r.created_at, "entered_state_at": r.entered_state_at, "updated_at": r.updated_at}


async def state_counts(s: AsyncSession) -> list[tuple[str, str, int]]:
    rows = (await s.execute(select(StateCount.state, StateCount.mode, StateCount.n).where(StateCount.n != 0))).all()
    return [(r.state, r.mode, r.n) for r in rows]


async def hourly_orders(s: AsyncSession, since: datetime) -> dict[datetime, tuple[int, int]]:
    rows = (await s.execute(select(HourlyOrders).where(HourlyOrders.hour >= since))).scalars().all()
    return {r.hour: (r.opened, r.closed) for r in rows}


async def oldest_open(s: AsyncSession, limit: int, merchant_id: str | None = None) -> list[dict]:
    q = select(OrderRow).where(OrderRow.is_open == True)  # noqa: E712 - "= 1": the index ix_orders_open_created
    if merchant_id is not None:
        q = q.where(OrderRow.merchant_id == merchant_id)
    rows = (await s.scalars(q.order_by(OrderRow.created_at).limit(limit))).all()
    return [_order(r) for r in rows]


async def top_backlogs(s: AsyncSession, limit: int) -> list[dict]:
    rows = (await s.scalars(select(MerchantBacklog).where(MerchantBacklog.open_n > 0)
                            .order_by(MerchantBacklog.open_n.desc()).limit(limit))).all()
    return [{"merchant_id": r.merchant_id, "open": r.open_n, "total": r.total_n} for r in rows]


async def merchant_count(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(MerchantBacklog)) or 0)


async def merchant_backlog(s: AsyncSession, merchant_id: str) -> dict | None:
    r = await s.get(MerchantBacklog, merchant_id)
    return None if r is None else {"merchant_id": r.merchant_id, "open": r.open_n, "total": r.total_n}


async def entered_state(s: AsyncSession, order_ids: list[str]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for k in range(0, len(order_ids), IN_CHUNK):
        rows = (await s.execute(select(OrderRow.order_id, OrderRow.entered_state_at)
                                .where(one_of(s, OrderRow.order_id, order_ids[k:k + IN_CHUNK])))).all()
        out.update((r.order_id, r.entered_state_at) for r in rows)
    return out


async def open_fired(s: AsyncSession, action: str, limit: int) -> tuple[int, list[dict]]:
    """Fired deadlines of ``action`` whose order is still in the state the timer was armed
    for (the breach or escalation is not resolved yet), oldest first, and how many."""
    cond = and_(FiredDeadline.action == action, OrderRow.order_id == FiredDeadline.order_id,
                OrderRow.state == FiredDeadline.order_state)
    total = int(await s.scalar(select(func.count()).select_from(FiredDeadline).join(OrderRow, OrderRow.order_id ==
                                                                                     FiredDeadline.order_id)
                               .where(cond)) or 0)
    rows = (await s.execute(select(FiredDeadline, OrderRow.number, OrderRow.merchant_id)
                            .join(OrderRow, OrderRow.order_id == FiredDeadline.order_id).where(cond)
                            .order_by(FiredDeadline.fired_at).limit(limit))).all()
    return total, [{**_fired(f), "number": number, "merchant_id": merchant} for f, number, merchant in rows]


def _fired(f: FiredDeadline) -> dict:
    return {"timer_id": f.timer_id, "order_id": f.order_id, "rule": f.rule, "action": f.action, "level": f.level,
            "to": f.to, "indicator": f.indicator, "order_state": f.order_state, "due_at": f.due_at,
            "fired_at": f.fired_at, "lateness_s": (f.fired_at - f.due_at).total_seconds()}


async def fired_since(s: AsyncSession, since: datetime) -> list[dict]:
    rows = (await s.scalars(select(FiredDeadline).where(FiredDeadline.fired_at >= since)
                            .order_by(FiredDeadline.fired_at.desc()))).all()
    return [_fired(f) for f in rows]


async def routing_since(s: AsyncSession, since: datetime) -> list[dict]:
    rows = (await s.execute(select(RoutingHourly.hour, RoutingHourly.target, RoutingHourly.reason,
                                   RoutingHourly.channel, RoutingHourly.manufacturer_id, RoutingHourly.n)
                            .where(RoutingHourly.hour >= since))).all()
    return [dict(r._mapping) for r in rows]


async def transfers_since(s: AsyncSession, since: datetime) -> dict[str, int]:
    rows = (await s.execute(select(TransfersHourly.manufacturer_id, func.sum(TransfersHourly.n))
                            .where(TransfersHourly.hour >= since).group_by(TransfersHourly.manufacturer_id))).all()
    return {m: int(n) for m, n in rows}

