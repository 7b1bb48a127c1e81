"""Service-express scores, two-consecutive-periods rule, billing (hand-computed)."""
from __future__ import annotations

from datetime import date, timedelta

from kpi_gen import D, bj

from kpi.domain.billing import BilledConsultation, OnBehalfOrder, billing_lines
from kpi.domain.service_express import Decision, Transfer, after_sales_score, below_twice, consultation_scores

W1, W2, W3, W4 = (date(2026, 11, 2) + timedelta(weeks=k) for k in range(4))


def test_consultation_score_hand_computed():
    t = bj(2026, 11, 17, 10)
    ds = [Decision("mf", t, "manufacturer", "enrolled")] * 8 + [Decision("mf", t, "platform", "no_agents")] * 2
    ds += [Decision("mf", t, "platform", "out_of_hours")] * 5  # not its responsibility: not counted
    ts = [Transfer("mf", t)] * 2
    got = consultation_scores(ds, ts)[date(2026, 11, 16)]["mf"]
    # answer 6/10 = 0.6, availability 8/10 = 0.8, transfer-back 1 - 2/8 = 0.75
    # 100 * (0.4*0.6 + 0.3*0.8 + 0.3*0.75) = 100 * (0.24 + 0.24 + 0.225) = 70.50
    assert got["score"] == D("70.50")
    assert (got["in_hours"], got["routed"], got["transfers"]) == (10, 8, 2)


def test_consultation_score_with_nothing_routed_redistributes_weights():
    t = bj(2026, 11, 17, 10)
    got = consultation_scores([Decision("mf", t, "platform", "overflow")], [])[date(2026, 11, 16)]["mf"]
    # answer 0/1, availability 0/1, transfer-back n/a → 0
    assert got["score"] == D("0.00") and got["components"]["transfer_back"] is None


def test_after_sales_score_is_weekly_score_times_100():
    assert after_sales_score(D("0.7250")) == D("72.50") and after_sales_score(None) is None


def test_two_consecutive_periods_under_80_vs_non_consecutive():
    s = {W1: {"after_sales": D("79.99")}, W2: {"after_sales": D("70")}, W3: {"after_sales": D("85")},
         W4: {"after_sales": D("60")}}
    assert below_twice(W2, s)
    assert not below_twice(W3, s) and not below_twice(W4, s)  # W2 and W4 are not consecutive
    assert not below_twice(W1, s)  # no period before W1
    # exactly 80 is not under 80; the two low periods must be of the same score
    assert not below_twice(W2, {W1: {"after_sales": D("80")}, W2: {"after_sales": D("10")}})
    assert not below_twice(W2, {W1: {"after_sales": D("10")}, W2: {"consultation": D("10"), "after_sales": D("90")}})
    assert below_twice(W2, {W1: {"consultation": D("50")}, W2: {"consultation": D("79")}})
    # a period without a score breaks the run
    assert not below_twice(W2, {W1: {"after_sales": None}, W2: {"after_sales": D("10")}})


def test_billing_per_month_per_item_with_refs():
    prices = {1: D("3.50"), 2: D("1.20")}
    orders = [OnBehalfOrder(f"o{i}", "mf", bj(2026, 11, 30, 23, 59)) for i in range(3)]
    orders.append(OnBehalfOrder("o9", "mf", bj(2026, 12, 1, 0, 0)))  # Beijing month boundary
    cons = [BilledConsultation("c1", "mf", 1, bj(2026, 11, 5, 10)), BilledConsultation("c2", "mf", 2, bj(2026, 11, 5)),
            BilledConsultation("c3", "mf", 2, bj(2026, 11, 6))]
    lines = billing_lines(orders, cons, prices)
    assert [(x["month"], x["item"], x["quantity"], x["amount"], x["refs"]) for x in lines] == [
        ("2026-11", "consultation_package_1", 1, "3.50", ["c1"]),
        ("2026-11", "consultation_package_2", 2, "2.40", ["c2", "c3"]),
        ("2026-11", "service_order", 3, "24.78", ["o0", "o1", "o2"]),
        ("2026-12", "service_order", 1, "8.26", ["o9"]),
    ]
