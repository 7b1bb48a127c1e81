from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select

from shared.auth import Policy, Principal
from shared.runtime import Runtime, get_runtime
from sla_timer.models import Timer

router = APIRouter(prefix="/v1", tags=["timers"])
TIMER_READERS = Policy("platform_operator", "merchant_main", "merchant_staff", scope="the order's merchant")


def _iso(v):
    return v.isoformat() if v is not None else None


@router.get("/service-orders/{order_id}/timers", summary="The timers of one service order (pending, fired, cancelled)")
async def timers_of_order(order_id: str, rt: Runtime = Depends(get_runtime),
                          p: Principal = Depends(TIMER_READERS)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.scalars(select(Timer).where(Timer.order_id == order_id)
                                .order_by(Timer.due_at, Timer.rule))).all()
    return {
        "order_id": order_id,
        "items": [
            {"id": t.id, "rule": t.rule, "action": t.action, "details": t.details, "state": t.state,
             "due_at": _iso(t.due_at), "order_version": t.order_version, "order_state": t.order_state,
             "created_at": _iso(t.created_at), "fired_at": _iso(t.fired_at), "cancelled_at": _iso(t.cancelled_at),
             "cancelled_by": t.cancelled_by}
            for t in rows
        ],
    }
