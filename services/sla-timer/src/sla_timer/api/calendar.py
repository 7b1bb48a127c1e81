from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shared.calendar import SERVICE_HOURS
from shared.clock import BEIJING
from shared.errors import ApiError
from shared.auth import Policy
from shared.runtime import Runtime, get_runtime
from sla_timer.models import CalendarOverride

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
READERS = Policy()  # any authenticated caller
OPERATOR = Policy("platform_operator")


async def _calendar(rt: Runtime):
    async with rt.sessions() as s:
        return (await rt.sla_policies.current(s)).calendar  # type: ignore[attr-defined]


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ApiError(422, "naive_datetime", "give the time with its UTC offset (e.g. +08:00 or Z)")
    return v


@router.get("/days/{day}", summary="Is this date a working day in China (holidays, 调休, operator overrides)?")
async def day_info(day: date, rt: Runtime = Depends(get_runtime), _p=Depends(READERS)) -> dict:
    cal = await _calendar(rt)
    return {"date": day.isoformat(), "working_day": cal.is_working_day(day), "holiday": cal.holiday_name(day)}


@router.get("/add-working-days", summary="The same Beijing time N working days after start")
async def add_working_days(start: datetime, n: int = Query(ge=0, le=3660), rt: Runtime = Depends(get_runtime),
                           _p=Depends(READERS)) -> dict:
    cal = await _calendar(rt)
    result = cal.add_working_days(_aware(start), n)
    return {"start": start.isoformat(), "n": n, "result": result.isoformat(),
            "result_beijing": result.astimezone(BEIJING).isoformat()}


@router.get("/add-business-hours", summary="N hours of service time (working days, channel hours) after start")
async def add_business_hours(start: datetime, hours: float = Query(ge=0, le=10000), channel: str = "after_sales",
                             rt: Runtime = Depends(get_runtime), _p=Depends(READERS)) -> dict:
    if channel not in SERVICE_HOURS:
        raise ApiError(422, "unknown_channel", f"channel must be one of {sorted(SERVICE_HOURS)}")
    cal = await _calendar(rt)
    result = cal.add_business_hours(_aware(start), hours, channel)
    return {"start": start.isoformat(), "hours": hours, "channel": channel, "result": result.isoformat(),
            "result_beijing": result.astimezone(BEIJING).isoformat()}


class DayOverride(BaseModel):
    working: bool
    note: str = Field(default="", max_length=200)


@router.put("/overrides/{day}", summary="Operator override: force a date to working day or day off")
async def set_day(day: date, body: DayOverride, rt: Runtime = Depends(get_runtime),
                  _p=Depends(OPERATOR)) -> dict:
    async with rt.uow() as s:
        o = await s.get(CalendarOverride, day)
        if o is None:
            o = CalendarOverride(day=day)
            s.add(o)
        o.working, o.note, o.updated_at = body.working, body.note, rt.clock.now()
    rt.sla_policies.invalidate()  # type: ignore[attr-defined]
    return {"date": day.isoformat(), "working": body.working, "note": body.note}
