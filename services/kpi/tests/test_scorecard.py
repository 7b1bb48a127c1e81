"""POP weekly scorecard (docs/kpis.md) with hand-computed values."""
from __future__ import annotations

from datetime import date, timedelta

from kpi_gen import D, H, bj, order

from kpi.domain.scorecard import flags, rank, weekly_scorecards

WK = date(2026, 11, 16)  # Monday
NEXT = date(2026, 11, 23)


def card(orders, merchant="m1", week=WK):
    return weekly_scorecards(orders)[week][merchant]


def test_audit_at_exactly_12h_is_on_time_and_one_second_later_is_late():
    c = bj(2026, 11, 17, 8)
    cd = card([order("m1", c, audited=c + 12 * H), order("m1", c, audited=c + 12 * H + timedelta(seconds=1))])
    f2 = cd.indicators["F2"]
    assert (f2.numerator, f2.denominator, f2.value) == (1, 2, D("0.5000"))


def test_week_boundary_sunday_2359_vs_monday_0000_beijing_by_audit_time():
    c = bj(2026, 11, 22, 12)
    sun = order("m1", c, audited=bj(2026, 11, 22, 23, 59, 59))
    mon = order("m1", c, audited=bj(2026, 11, 23, 0, 0, 0))
    weeks = weekly_scorecards([sun, mon])
    assert weeks[WK]["m1"].indicators["F2"].denominator == 1
    assert weeks[NEXT]["m1"].indicators["F2"].denominator == 1
    # the order's creation week does not matter, only the audit time
    late = order("m1", bj(2026, 11, 15, 20), audited=bj(2026, 11, 16, 9))  # created previous week
    assert weekly_scorecards([late])[WK]["m1"].indicators["F2"].numerator == 0


def test_f1_by_rating_time_f3_by_receipt_time_f4_by_shipping_time():
    c = bj(2026, 11, 10, 9)  # created the week before
    rated4 = order("m1", c, rated=(bj(2026, 11, 16, 0, 0), 4))
    rated3 = order("m1", c, rated=(bj(2026, 11, 22, 23, 59), 3))
    rated_next = order("m1", c, rated=(bj(2026, 11, 23, 0, 0), 1))
    recv_on_time = order("m1", c, received=bj(2026, 11, 22, 20), processed=bj(2026, 11, 23, 8))  # exactly 12 h
    recv_unprocessed = order("m1", c, received=bj(2026, 11, 18, 10))
    recv_prev_week = order("m1", c, received=bj(2026, 11, 15, 23), processed=bj(2026, 11, 17, 10))
    exch = order("m1", c, exchange_created=bj(2026, 11, 15, 20), exchange_shipped=bj(2026, 11, 16, 14))  # 18 h
    exch_late = order("m1", c, exchange_created=bj(2026, 11, 16, 0), exchange_shipped=bj(2026, 11, 17, 0))
    exch_unshipped = order("m1", c, exchange_created=bj(2026, 11, 17, 0))
    cd = card([rated4, rated3, rated_next, recv_on_time, recv_unprocessed, recv_prev_week, exch, exch_late,
               exch_unshipped])
    ind = {k: (v.numerator, v.denominator) for k, v in cd.indicators.items()}
    assert ind == {"F1": (1, 2), "F2": (0, 0), "F3": (1, 2), "F4": (1, 2)}
    # F2 empty → its 0.3 weight spread: (0.4*0.5 + 0.2*0.5 + 0.1*0.5) / 0.7 = 0.5
    assert cd.score == D("0.5000")
    assert cd.as_dict()["indicators"]["F2"] == {
        "name": "audit within 12 h", "numerator": 0, "denominator": 0, "value": None, "target": "0.95",
        "weight": "0.30", "met": None, "applicable": False}


def test_weighted_score_hand_computed():
    c = bj(2026, 11, 17, 8)
    orders = [order("m1", c, rated=(c + H, s)) for s in (5, 4, 4, 2)]  # F1 3/4
    orders += [order("m1", c, audited=c + H), order("m1", c, audited=c + 13 * H)]  # F2 1/2
    orders += [order("m1", c, received=c + H, processed=c + 2 * H)]  # F3 1/1
    orders += [order("m1", c, exchange_created=c, exchange_shipped=c + 19 * H)]  # F4 0/1
    # 0.4*0.75 + 0.3*0.5 + 0.2*1 + 0.1*0 = 0.65
    assert card(orders).score == D("0.6500")
    assert card(orders).as_dict()["indicators"]["F1"]["met"] is False


def test_no_data_means_no_score_and_no_rank():
    assert weekly_scorecards([]) == {}
    c = bj(2026, 11, 17, 8)
    only_created = order("m9", c)
    assert weekly_scorecards([only_created]) == {}


def _merchant_with_score(m, week_monday, on_time, total):
    c = bj(week_monday.year, week_monday.month, week_monday.day, 9)
    return [order(m, c, audited=c + (H if i < on_time else 13 * H)) for i in range(total)]


def test_ranking_ties_share_rank_competition_style():
    orders = (_merchant_with_score("a", WK, 4, 4) + _merchant_with_score("b", WK, 2, 4)
              + _merchant_with_score("c", WK, 2, 4) + _merchant_with_score("d", WK, 1, 4))
    r = rank(weekly_scorecards(orders)[WK])
    assert [(e.merchant_id, str(e.score), e.rank) for e in r] == [
        ("a", "1.0000", 1), ("b", "0.5000", 2), ("c", "0.5000", 2), ("d", "0.2500", 4)]
    assert all(e.bottom10 for e in r)  # fewer than 10 merchants: everyone is in the bottom 10


def _week_of_12(week_monday, low):
    """12 merchants; ``low`` merchants get 0/10, the others i/10 for a spread."""
    orders = []
    for i in range(12):
        m = f"m{i:02d}"
        orders += _merchant_with_score(m, week_monday, 0 if m in low else 10, 10)
    return orders


def test_bottom10_with_ties_at_the_boundary():
    orders = []
    for i in range(12):
        orders += _merchant_with_score(f"m{i:02d}", WK, i, 12)  # scores 0/12 .. 11/12
    r = {e.merchant_id: e for e in rank(weekly_scorecards(orders)[WK])}
    assert not r["m11"].bottom10 and not r["m10"].bottom10 and r["m09"].bottom10 and r["m00"].bottom10
    assert r["m00"].rank == 12
    # two merchants tied just above the bottom 10 both stay out (10 scored strictly lower is not < 10)
    orders += _merchant_with_score("x", WK, 10, 12)
    r = {e.merchant_id: e for e in rank(weekly_scorecards(orders)[WK])}
    assert not r["x"].bottom10 and not r["m10"].bottom10 and r["m10"].rank == r["x"].rank == 2


def test_flag_after_three_consecutive_bottom10_weeks_not_after_a_gap():
    w1, w2, w3, w4 = (WK + timedelta(weeks=k) for k in range(4))
    # 12 merchants each week; m00 is at the bottom in w1, w2, w3 (flag at w3 only);
    # m01 is at the bottom in w1, w2, w4 (no run of 3 → never flagged).
    orders = []
    for wk in (w1, w2, w3, w4):
        for i in range(12):
            m = f"m{i:02d}"
            score = 10 if i >= 10 else i  # m10, m11 always on top
            if wk == w3 and m == "m01":
                score = 11  # out of the bottom 10 in w3
            if wk == w3 and m == "m10":
                score = 0
            orders += _merchant_with_score(m, wk, score, 12)
    got = flags(weekly_scorecards(orders))
    flagged = {(f["merchant_id"], f["week"]) for f in got}
    assert ("m00", w3.isoformat()) in flagged and ("m00", w4.isoformat()) in flagged
    assert not any(m == "m01" for m, _ in flagged)
    assert not any(w == w2.isoformat() for _, w in flagged)
    assert next(f for f in got if f["merchant_id"] == "m00" and f["week"] == w3.isoformat())["weeks"] == [
        w1.isoformat(), w2.isoformat(), w3.isoformat()]
