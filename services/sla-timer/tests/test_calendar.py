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


async def test_a_whole_years_official_schedule_is_loaded_by_operators_and_audited(sla, tokens):
    """No ``holidays`` release has China's 2027 调休 yet: operators load the State Council's
    schedule for a year in one request; the working-day arithmetic follows it at once."""
    from datetime import date, timedelta

    # A year's schedule shaped like the official notice: holidays, and weekends worked instead.
    holidays = ([date(2027, 1, 1)] + [date(2027, 2, 5) + timedelta(days=i) for i in range(9)]
                + [date(2027, 4, 5), date(2027, 5, 1), date(2027, 5, 2), date(2027, 5, 3), date(2027, 5, 4),
                   date(2027, 5, 5), date(2027, 6, 9), date(2027, 9, 15)]
                + [date(2027, 10, 1) + timedelta(days=i) for i in range(7)])
    working = [date(2027, 2, 20), date(2027, 4, 25), date(2027, 5, 8), date(2027, 9, 26), date(2027, 10, 9)]
    body = {"holidays": [d.isoformat() for d in holidays], "working_days": [d.isoformat() for d in working],
            "note": "国办发明电〔2026〕X号"}
    merchant = tokens.headers("merchant_main", "m-1-main", merchant_id="m-1")
    r = await sla.client.put("/v1/calendar/years/2027", json=body, headers=merchant)
    assert r.status_code == 403
    r = await sla.client.put("/v1/calendar/years/2027", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"year": 2027, "holidays": len(holidays), "working_days": 5,
                        "changed": len(holidays) + 5}
    for d in working:  # Saturdays and Sundays worked
        assert d.weekday() >= 5
        assert (await sla.client.get(f"/v1/calendar/days/{d}")).json()["working_day"] is True
    for d in holidays:
        assert (await sla.client.get(f"/v1/calendar/days/{d}")).json()["working_day"] is False
    # 2 working days after Friday 2027-02-19 10:00: Sat 20 (调休) then Mon 22
    r = await sla.client.get("/v1/calendar/add-working-days", params={"start": "2027-02-19T10:00:00+08:00", "n": 2})
    assert r.json()["result_beijing"].startswith("2027-02-22T10:00")
    # the same schedule again changes nothing; every day was audited once
    r = await sla.client.put("/v1/calendar/years/2027", json=body)
    assert r.json()["changed"] == 0
    log = (await sla.client.get("/v1/audit-log", params={"kind": "calendar_override", "limit": 500})).json()
    assert log["total"] == len(holidays) + 5
    # dates outside the year, or both a holiday and a working day, are refused
    bad = await sla.client.put("/v1/calendar/years/2027", json={"holidays": ["2028-01-01"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "date_outside_year"
    bad = await sla.client.put("/v1/calendar/years/2027",
                               json={"holidays": ["2027-02-20"], "working_days": ["2027-02-20"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "conflicting_dates"
