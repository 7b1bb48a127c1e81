"""Reading an order's timers, for the callers allowed to see them."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from shared.auth import Principal
from shared.errors import ApiError
from shared.runtime import Runtime
from sla_timer.domain.access import can_read_timers, staff_has_rights
from sla_timer.models import PENDING_STATE, Timer


def _iso(v):
    return v.isoformat() if v is not None else None


def _out(t: Timer) -> dict:
    return {"id": t.id, "rule": t.rule, "action": t.action, "details": t.details, "state": t.state,
            "due_at": _iso(t.due_at), "order_version": t.order_version, "order_state": t.order_state,
            "created_at": _iso(t.created_at), "fired_at": _iso(t.fired_at), "cancelled_at": _iso(t.cancelled_at),
            "cancelled_by": t.cancelled_by}


async def timers_of_order(rt: Runtime, p: Principal, order_id: str) -> dict:
    if p.role == "merchant_staff" and not staff_has_rights(p):
        raise ApiError(403, "missing_permission", "reading an order's timers needs the audit or process permission")
    async with rt.sessions() as s:
        rows = (await s.scalars(select(Timer).where(Timer.order_id == order_id)
                                .order_by(Timer.due_at, Timer.rule))).all()
    if not p.is_platform:
        # Every timer of an order carries the same merchant; timers from before the merchant
        # was kept carry none and are nobody's but the platform's.
        known = next((t for t in rows if t.merchant_id is not None), None)
        if known is None or not can_read_timers(p, known.merchant_id, known.category):
            # Another merchant's order looks exactly like an unknown one.
            raise ApiError(404, "order_not_found", f"no timers known for service order {order_id}")
    return {"order_id": order_id, "items": [_out(t) for t in rows]}


async def due_summary(rt: Runtime, now: datetime) -> dict:
    """Pending timers per rule: already due but not fired yet (the firing loop's backlog),
    due within the next hour, within the next 24 hours. One indexed range read
    (``ix_timers_pending_due``), whatever the number of pending timers further out."""
    hour, day = now + timedelta(hours=1), now + timedelta(days=1)
    q = (select(Timer.rule, Timer.action,
                func.sum(case((Timer.due_at <= now, 1), else_=0)),
                func.sum(case((Timer.due_at <= hour, 1), else_=0)),
                func.count())
         .where(Timer.state == PENDING_STATE, Timer.due_at <= day)
         .group_by(Timer.rule, Timer.action).order_by(Timer.rule, Timer.action))
    async with rt.sessions() as s:
        rows = (await s.execute(q)).all()
    return {"now": now.isoformat(), "items": [
        {"rule": rule, "action": action, "overdue": int(overdue or 0), "next_hour": int(next_hour or 0),
         "next_day": int(next_day or 0)} for rule, action, overdue, next_hour, next_day in rows]}
