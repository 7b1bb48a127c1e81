"""Business calendar: China's public holidays and adjusted working days (调休),
Beijing time. Holiday data comes from the ``holidays`` package; an operator
override table (dates forced to holiday or to working day) covers next year's
announcement before the package knows it.

Calendar-time rules (e.g. the 12 h audit deadline) do not use this; working-day
and business-hour rules do."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from shared.clock import BEIJING

# Service hours per channel, Beijing time, [start, end).
SERVICE_HOURS: dict[str, tuple[time, time]] = {
    "phone": (time(9, 0), time(18, 0)),
    "im": (time(9, 0), time(21, 0)),
    "after_sales": (time(9, 0), time(18, 0)),
}


@lru_cache(maxsize=64)
def _china(year: int) -> holidays.HolidayBase:
    return holidays.China(years=[year])


@dataclass
class BusinessCalendar:
    """``overrides`` maps a date to True (working day) or False (day off)."""

    overrides: dict[date, bool] = field(default_factory=dict)

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        cn = _china(day.year)
        return cn.is_working_day(day)

    def holiday_name(self, day: date) -> str | None:
        if self.overrides.get(day) is False:
            return "operator holiday"
        return _china(day.year).get(day)

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The same Beijing wall-clock time on the n-th working day after ``start``'s date."""
        if n < 0:
            raise ValueError("n must be >= 0")
        local = start.astimezone(BEIJING)
        day = local.date()
        remaining = n
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)

    def add_business_hours(self, start: datetime, hours: float, channel: str = "after_sales") -> datetime:
        """Advance ``hours`` of service time (working days, within the channel's hours)."""
        if hours < 0:
            raise ValueError("hours must be >= 0")
        open_t, close_t = SERVICE_HOURS[channel]
        left = timedelta(hours=hours)
        cur = start.astimezone(BEIJING)
        for _ in range(3660):  # ten years of days at most
            day = cur.date()
            opening = datetime.combine(day, open_t, BEIJING)
            closing = datetime.combine(day, close_t, BEIJING)
            if self.is_working_day(day) and cur < closing:
                cur = max(cur, opening)
                available = closing - cur
                if left <= available:
                    return (cur + left).astimezone(start.tzinfo)
                left -= available
            cur = datetime.combine(day + timedelta(days=1), time(0), BEIJING)
        raise ValueError("business-hour arithmetic ran past ten years")

    def in_service_hours(self, at: datetime, channel: str, *, working_days_only: bool = True) -> bool:
        open_t, close_t = SERVICE_HOURS[channel]
        local = at.astimezone(BEIJING)
        if working_days_only and not self.is_working_day(local.date()):
            return False
        return open_t <= local.timetz().replace(tzinfo=None) < close_t


DEFAULT_CALENDAR = BusinessCalendar()
