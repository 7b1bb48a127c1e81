"""Penalties ledger with hand-computed amounts."""
from __future__ import annotations

from kpi_gen import D, H, bj, order

from kpi.domain.penalties import penalty_lines


def _late(m, n, day=17):
    c = bj(2026, 11, day, 8)
    return [order(m, c, audited=c + 13 * H) for _ in range(n)]


def test_late_audits_count_per_ten_remainder_not_charged():
    c = bj(2026, 11, 17, 8)
    on_time = [order("m9", c, audited=c + 12 * H)] * 30  # exactly 12 h is not late
    lines = penalty_lines(_late("a", 9) + _late("b", 19) + _late("c", 20) + on_time)
    got = {x["merchant_id"]: (x["count"], x["late_orders"], x["amount"], len(x["order_ids"])) for x in lines}
    assert got == {"b": (1, 19, "2000.00", 19), "c": (2, 20, "4000.00", 20)}


def test_late_audits_counted_per_week_by_audit_time():
    # 6 late audits in each of two weeks: 12 in total but no week reaches 10
    lines = penalty_lines(_late("a", 6, day=17) + _late("a", 6, day=24))
    assert lines == []


def test_48h_penalty_and_advance_compensation_lines_name_their_orders():
    c = bj(2026, 11, 17, 8)
    p = order("a", c, received=c + H, penalty_48h=(c + 49 * H, None, D("2000.00")))
    comp = order("a", c, advance_compensation=(c + 7 * 24 * H, None, D("199.00")))
    lines = penalty_lines([p, comp])
    assert [(x["kind"], x["amount"], x["order_ids"]) for x in lines] == [
        ("unprocessed_48h", "2000.00", [p.order_id]), ("advance_compensation", "199.00", [comp.order_id])]
    assert [x["week"] for x in lines] == ["2026-11-16", "2026-11-23"]
