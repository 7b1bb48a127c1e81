"""Staffing estimate (docs/kpis.md), hand-computed."""
from __future__ import annotations

from datetime import date

from kpi_gen import bj

from kpi.domain.staffing import Capacities, staffing


def test_staffing_rounds_up_to_whole_people():
    start, end = date(2026, 11, 1), date(2026, 11, 10)  # 10 days
    cons = [bj(2026, 11, 5, 10)] * 1010 + [bj(2026, 11, 11, 0)] * 999  # the latter outside the window
    audits = [bj(2026, 11, 1, 0)] * 300
    refunds = [bj(2026, 11, 10, 23, 59)] * 100
    got = staffing(cons, audits, refunds, start, end, Capacities())
    # 101/day / 100 → 2; 30/day / 150 → 1; 100/10*30 = 300 a month / 80 / 3 = 1.25 → 2
    assert (got["daily_consultations"], got["receptionists"]) == ("101.00", 2)
    assert (got["daily_audits"], got["auditors"]) == ("30.00", 1)
    assert (got["monthly_refunds"], got["refund_staff"]) == ("300.00", 2)
    none = staffing([], [], [], start, end)
    assert (none["receptionists"], none["auditors"], none["refund_staff"]) == (0, 0, 0)
