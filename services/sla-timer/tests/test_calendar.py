"""Holiday and 调休 arithmetic around the Spring Festival and National Day, Beijing time."""
from __future__ import annotations

from datetime import date, datetime, timezone

from shared.calendar import BusinessCalendar
from shared.clock import BEIJING

CAL = BusinessCalendar()


def bj(*a) -> datetime:
    return datetime(*a, tzinfo=BEIJING)


def test_spring_festival_2026_days_off_and_adjusted_saturdays():
    assert CAL.is_working_day(date(2026, 2, 14))  # Saturday worked (调休)
    assert CAL.is_working_day(date(2026, 2, 28))  # Saturday worked (调休)
    for d in range(15, 24):
        assert not CAL.is_working_day(date(2026, 2, d)), d
    assert CAL.is_working_day(date(2026, 2, 24))


def test_national_day_2026():
    assert CAL.is_working_day(date(2026, 9, 20))  # Sunday worked
    assert CAL.is_working_day(date(2026, 10, 10))  # Saturday worked
    for d in range(1, 8):
        assert not CAL.is_working_day(date(2026, 10, d)), d


def test_add_working_days_across_national_day():
    # Wed 2026-09-30 15:00 → next working days: 10-08, 10-09, 10-10 (Sat, 调休)
    assert CAL.add_working_days(bj(2026, 9, 30, 15), 1) == bj(2026, 10, 8, 15)
    assert CAL.add_working_days(bj(2026, 9, 30, 15), 3) == bj(2026, 10, 10, 15)
    assert CAL.add_working_days(bj(2026, 9, 30, 15), 4) == bj(2026, 10, 12, 15)


def test_add_business_hours_across_spring_festival():
    # Fri 2026-02-13 17:00, after-sales hours 9–18: 1 h that day, 9 h on Sat 02-14, then 02-24.
    assert CAL.add_business_hours(bj(2026, 2, 13, 17), 1) == bj(2026, 2, 13, 18)
    assert CAL.add_business_hours(bj(2026, 2, 13, 17), 10) == bj(2026, 2, 14, 18)
    assert CAL.add_business_hours(bj(2026, 2, 13, 17), 12) == bj(2026, 2, 24, 11)
    # IM is open until 21:00.
    assert CAL.add_business_hours(bj(2026, 2, 13, 17), 4, "im") == bj(2026, 2, 13, 21)


def test_operator_override_for_next_years_announcement():
    cal = BusinessCalendar(overrides={date(2027, 2, 6): True, date(2027, 2, 8): False})
    assert cal.is_working_day(date(2027, 2, 6))  # a Saturday declared working
    assert not cal.is_working_day(date(2027, 2, 8))
    assert cal.holiday_name(date(2027, 2, 8)) == "operator holiday"
    assert cal.add_working_days(bj(2027, 2, 5, 10), 1) == bj(2027, 2, 6, 10)


def test_results_are_utc_when_given_utc():
    start = datetime(2026, 9, 30, 7, tzinfo=timezone.utc)
    assert CAL.add_working_days(start, 1) == datetime(2026, 10, 8, 7, tzinfo=timezone.utc)
