from __future__ import annotations

from datetime import date, datetime, timezone

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Policy, Principal
from shared.calendar import SERVICE_HOURS
from shared.clock import BEIJING
from shared.errors import ApiError
from shared.runtime import Runtime, get_runtime
from sla_timer.api.schemas import BusinessHoursOut, DayInfo, DayOverrideOut, WorkingDaysOut
from sla_timer.handlers.overrides import set_day_override, set_year_schedule

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
READERS = Policy()  # any authenticated caller
OPERATOR = Policy("platform_operator")

# The years the holiday data covers; outside them date arithmetic would only guess (and
# near year 1 or 9999 overflow), so such dates are refused (422).
FIRST_DAY, LAST_DAY = date(1950, 1, 1), date(2100, 12, 31)
FIRST_START = datetime(1950, 1, 1, tzinfo=timezone.utc)
LAST_START = datetime(2100, 12, 31, tzinfo=timezone.utc)
DAY_RANGE = f"between {FIRST_DAY} and {LAST_DAY}"


def _day(description: str):
    return Path(ge=FIRST_DAY, le=LAST_DAY, description=f"{description}, {DAY_RANGE}")


def _start():
    return Query(ge=FIRST_START, le=LAST_START,
                 description=f"ISO 8601 with its UTC offset, {DAY_RANGE}")


async def _calendar(rt: Runtime):
    async with rt.sessions() as s:
        return (await rt.sla_policies.current(s)).calendar  # type: ignore[attr-defined]


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ApiError(422, "naive_datetime", "give the time with its UTC offset (e.g. +08:00 or Z)")
    return v


@router.get("/days/{day}", response_model=DayInfo,
            summary="Is this date a working day in China (holidays, 调休, operator overrides)?")
async def day_info(day: date = _day("the date"), rt: Runtime = Depends(get_runtime),
                   _p=Depends(READERS)) -> dict:
    cal = await _calendar(rt)
    return {"date": day.isoformat(), "working_day": cal.is_working_day(day), "holiday": cal.holiday_name(day)}


@router.get("/add-working-days", response_model=WorkingDaysOut,
            summary="The same Beijing time N working days after start")
async def add_working_days(start: datetime = _start(), n: int = Query(ge=0, le=3660),
                           rt: Runtime = Depends(get_runtime), _p=Depends(READERS)) -> dict:
    cal = await _calendar(rt)
    result = cal.add_working_days(_aware(start), n)
    return {"start": start.isoformat(), "n": n, "result": result.isoformat(),
            "result_beijing": result.astimezone(BEIJING).isoformat()}


@router.get("/add-business-hours", response_model=BusinessHoursOut,
            summary="N hours of service time (working days, channel hours) after start")
async def add_business_hours(start: datetime = _start(), hours: float = Query(ge=0, le=10000),
                             channel: str = Query("after_sales", max_length=32),
                             rt: Runtime = Depends(get_runtime), _p=Depends(READERS)) -> dict:
    if channel not in SERVICE_HOURS:
        raise ApiError(422, "unknown_channel", f"channel must be one of {sorted(SERVICE_HOURS)}")
    cal = await _calendar(rt)
    try:
        result = cal.add_business_hours(_aware(start), hours, channel)
    except ValueError as e:  # more than ten years of days looked at (operator days off)
        raise ApiError(422, "out_of_range", str(e)) from None
    return {"start": start.isoformat(), "hours": hours, "channel": channel, "result": result.isoformat(),
            "result_beijing": result.astimezone(BEIJING).isoformat()}


class DayOverride(BaseModel):
    working: bool
    note: str = Field(default="", max_length=200)


@router.put("/overrides/{day}", response_model=DayOverrideOut,
            summary="Operator override: force a date to working day or day off (recorded in the audit log)")
async def set_day(body: DayOverride, day: date = _day("the date to override"), rt: Runtime = Depends(get_runtime),
                  p: Principal = Depends(OPERATOR)) -> dict:
    return await set_day_override(rt, p, day=day, working=body.working, note=body.note)


class YearSchedule(BaseModel):
    """The State Council's schedule for one year (国务院办公厅关于…部分节假日安排的通知)."""

    holidays: list[date] = Field(max_length=60, description="every day off of the public holidays")
    working_days: list[date] = Field(default_factory=list, max_length=20,
                                     description="adjusted working days (调休), usually weekends")
    note: str = Field(default="", max_length=200, description="e.g. the notice's number")


class YearScheduleOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: int
    holidays: int
    working_days: int
    changed: int


@router.put("/years/{year}", response_model=YearScheduleOut,
            summary="Operator: load a whole year's official holiday schedule (days off and 调休 working days)")
async def set_year(body: YearSchedule, year: int = Path(ge=FIRST_DAY.year, le=LAST_DAY.year),
                   rt: Runtime = Depends(get_runtime), p: Principal = Depends(OPERATOR)) -> dict:
    days = body.holidays + body.working_days
    stray = sorted({d.isoformat() for d in days if d.year != year})
    if stray:
        raise ApiError(422, "date_outside_year", f"every date must be in {year}", {"dates": stray})
    both = sorted({d.isoformat() for d in set(body.holidays) & set(body.working_days)})
    if both:
        raise ApiError(422, "conflicting_dates", "a date cannot be both a holiday and a working day",
                       {"dates": both})
    return await set_year_schedule(rt, p, year=year, holidays=sorted(set(body.holidays)),
                                   working_days=sorted(set(body.working_days)), note=body.note)
