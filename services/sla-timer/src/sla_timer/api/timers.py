from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from shared.auth import Policy, Principal
from shared.runtime import Runtime, get_runtime
from sla_timer.api.schemas import DueTimersOut, TimersOut
from sla_timer.handlers.timers import due_summary
from sla_timer.handlers.timers import timers_of_order as read_timers

router = APIRouter(prefix="/v1", tags=["timers"])
TIMER_READERS = Policy("platform_operator", "arbitrator", "merchant_main", "merchant_staff",
                       scope="the order's merchant (staff: audit or process permission, the order's category)")


@router.get("/service-orders/{order_id}/timers", response_model=TimersOut,
            summary="The timers of one service order (pending, fired, cancelled)",
            responses={404: {"description": "No timers known for this order, or another merchant's order"}})
async def timers_of_order(order_id: str = Path(min_length=1, max_length=64),
                          rt: Runtime = Depends(get_runtime), p: Principal = Depends(TIMER_READERS)) -> dict:
    return await read_timers(rt, p, order_id)


@router.get("/timers/due", response_model=DueTimersOut,
            summary="Pending timers per rule: overdue, due within the hour and within 24 hours (operators)")
async def due_timers(rt: Runtime = Depends(get_runtime),
                     p: Principal = Depends(Policy("platform_operator"))) -> dict:
    return await due_summary(rt, rt.clock.now())
