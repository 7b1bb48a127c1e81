"""China's calendar with 调休, Beijing time (2026: Spring Festival Feb 15–23, National Day Oct 1–7)."""
from datetime import date, datetime, timedelta

import pytest

from shared.calendar import BusinessCalendar
from shared.clock import BEIJING

cal = BusinessCalendar()


@pytest.mark.parametrize(
    "day, working",
    [
        (date(2026, 2, 13), True),   # Friday before the holiday
        (date(2026, 2, 14), True),   # Saturday, adjusted working day (调休)
        (date(2026, 2, 17), False),  # Spring Festival
        (date(2026, 2, 23), False),  # day off substituted for Feb 28
        (date(2026, 2, 28), True),   # Saturday, adjusted working day
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),
        (date(2026, 10, 10), True),  # Saturday, adjusted working day
        (date(2026, 11, 21), False),  # ordinary Saturday
        (date(2026, 11, 23), True),  # ordinary Monday
    ],
)
def test_working_days(day, working):
    assert cal.is_working_day(day) is working


def test_add_working_days_skips_the_spring_festival():
    start = datetime(2026, 2, 13, 10, 0, tzinfo=BEIJING)
    # Feb 14 (调休 Saturday) is day 1; Feb 15–23 are off; Feb 24 and 25 are days 2 and 3.
    assert cal.add_working_days(start, 3) == datetime(2026, 2, 25, 10, 0, tzinfo=BEIJING)


def test_add_business_hours_carries_over_closing_time_and_holidays():
    assert cal.add_business_hours(datetime(2026, 9, 30, 17, 0, tzinfo=BEIJING), 2) == datetime(
        2026, 10, 8, 10, 0, tzinfo=BEIJING
    )
    # Starting before opening counts from 9:00.
    assert cal.add_business_hours(datetime(2026, 11, 23, 7, 0, tzinfo=BEIJING), 1) == datetime(
        2026, 11, 23, 10, 0, tzinfo=BEIJING
    )


@pytest.mark.parametrize(
    "hh, mm, channel, inside",
    [(8, 59, "phone", False), (9, 0, "phone", True), (17, 59, "phone", True), (18, 0, "phone", False),
     (20, 59, "im", True), (21, 0, "im", False)],
)
def test_service_hour_boundaries(hh, mm, channel, inside):
    assert cal.in_service_hours(datetime(2026, 11, 23, hh, mm, tzinfo=BEIJING), channel) is inside


def test_operator_override_wins_over_the_package():
    next_year = BusinessCalendar(overrides={date(2026, 11, 23): False, date(2026, 11, 22): True})
    assert not next_year.is_working_day(date(2026, 11, 23))
    assert next_year.is_working_day(date(2026, 11, 22))
    assert next_year.add_working_days(datetime(2026, 11, 21, 9, 0, tzinfo=BEIJING), 1).date() == date(2026, 11, 22)
    assert next_year.add_working_days(datetime(2026, 11, 22, 9, 0, tzinfo=BEIJING), 1) - timedelta(days=2) == datetime(
        2026, 11, 22, 9, 0, tzinfo=BEIJING
    )
