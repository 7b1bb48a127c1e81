"""Composite after-sales index (docs/kpis.md): rolling 28 days, 1:1:1, industry
average, platinum benchmark (best decile), lead over peers with the 30 % warning,
platinum label, breakdown by refund path — hand-computed."""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from kpi_gen import H, bj, order

from kpi.domain.index import IndexPolicy, composite_index, platinum, windows_from_counters
from kpi.domain.projection import counters_of

END = date(2026, 11, 28)  # window 2026-11-01 … 2026-11-28 (Beijing)
D = timedelta(days=1)


def _scenario():
    orders = []
    # A (phones): 4 completed cases, one dispute
    c = bj(2026, 11, 2, 10)
    orders.append(order("A", c, shipped_back=c + 20 * H, received=c + 30 * H, refund=(c + 48 * H, "199.00", "merchant"),
                        closed=c + 60 * H))  # return and refund, 48 h, by itself
    c = bj(2026, 11, 5)
    orders.append(order("A", c, arbitration=c + 24 * H, refund=(c + 48 * H, "199.00", "platform")))  # 48 h, dispute
    c = bj(2026, 11, 10)
    orders.append(order("A", c, service_type="exchange", exchange_created=c + 12 * H, exchange_shipped=c + 24 * H))
    c = bj(2026, 11, 20)
    orders.append(order("A", c, service_type="compensation", advance_compensation=(c + 168 * H, None, "199.00"),
                        refund=(c + 168 * H, "199.00", "system"), closed=c + 168 * H))  # 168 h, by the system
    # B (phones): two fast cases of its own
    c = bj(2026, 11, 10)
    orders.append(order("B", c, refund=(c + 12 * H, "50.00", "merchant")))
    orders.append(order("B", c + D, closed=c + D + 6 * H, closed_role="merchant_main"))  # rejected at audit
    # C (phones): no paid transactions reported; closed by the arbitrator
    c = bj(2026, 11, 12)
    orders.append(order("C", c, arbitration=c + 24 * H, closed=c + 48 * H, closed_role="arbitrator"))
    # F (apparel): window boundaries by completion time (Beijing)
    c = bj(2026, 10, 25)
    orders.append(order("F", c, category="apparel", closed=bj(2026, 10, 31, 23, 59, 59), closed_role="customer"))
    orders.append(order("F", c, category="apparel", closed=bj(2026, 11, 1, 0, 0, 0), closed_role="customer"))
    orders.append(order("F", c, category="apparel", closed=bj(2026, 11, 28, 23, 59, 59), closed_role="customer"))
    orders.append(order("F", c, category="apparel", closed=bj(2026, 11, 29, 0, 0, 0), closed_role="customer"))
    # a plain repair is not a refund case
    orders.append(order("B", bj(2026, 11, 10), service_type="repair", processed=bj(2026, 11, 11),
                        closed=bj(2026, 11, 12), closed_role="customer"))
    paid = {("A", date(2026, 11, 1)): 60, ("A", date(2026, 11, 28)): 40, ("A", date(2026, 10, 31)): 50,
            ("B", date(2026, 11, 15)): 200, ("G", date(2026, 11, 3)): 10, ("A", date(2026, 11, 29)): 7}
    return orders, paid


def _index(policy=IndexPolicy(platinum_min_peers=2)):
    orders, paid = _scenario()
    return composite_index(windows_from_counters(counters_of(orders), paid, END), END, policy)


def test_merchant_figures_leads_warnings_and_platinum():
    idx = _index()
    assert idx["window"] == {"from": "2026-11-01", "to": "2026-11-28", "days": 28}
    m = {x["merchant_id"]: x for x in idx["merchants"]}
    a, b, c = m["A"], m["B"], m["C"]
    # A: 1 dispute / 100 paid (60 + 40 in the window); (48 + 48 + 24 + 168) / 4 = 72 h; 2 of 4 by itself
    assert (a["paid_transactions"], a["disputes"], a["completed"]) == (100, 1, 4)
    assert (a["dispute_rate"], a["completion_hours"], a["self_completion_rate"]) == ("0.010000", "72.00", "0.5000")
    # B: 0 / 200; (12 + 6) / 2 = 9 h; 2 of 2 (the repair does not count)
    assert (b["dispute_rate"], b["completion_hours"], b["self_completion_rate"], b["completed"]) == (
        "0.000000", "9.00", "1.0000", 2)
    # C: no paid transactions → no dispute rate (never a division error); 48 h; 0 of 1
    assert (c["dispute_rate"], c["completion_hours"], c["self_completion_rate"]) == (None, "48.00", "0.0000")
    # leads: share of the category's other merchants strictly worse
    assert a["lead_pct"] == {"dispute_rate": "0.00", "completion_hours": "0.00", "self_completion_rate": "50.00",
                             "index": "0.00"}
    assert b["lead_pct"] == {"dispute_rate": "100.00", "completion_hours": "100.00",
                             "self_completion_rate": "100.00", "index": "100.00"}
    assert c["lead_pct"] == {"dispute_rate": None, "completion_hours": "50.00", "self_completion_rate": "0.00",
                             "index": "50.00"}
    # index = 1:1:1 mean of the leads: A (0 + 0 + 50) / 3, B 100, C (50 + 0) / 2
    assert (a["index_score"], b["index_score"], c["index_score"]) == ("16.67", "100.00", "25.00")
    assert a["warnings"] == ["dispute_rate", "completion_hours", "index"]
    assert b["warnings"] == [] and c["warnings"] == ["self_completion_rate"]
    # platinum benchmark (best decile of 2–3 values = the best one) → B only
    assert (a["platinum"], b["platinum"], c["platinum"]) == (False, True, False)
    assert b["platinum_metrics"] == {"dispute_rate": True, "completion_hours": True, "self_completion_rate": True}


def test_category_average_benchmark_and_refund_paths():
    idx = _index()
    cats = {x["category"]: x for x in idx["categories"]}
    phones = cats["phones"]
    assert (phones["merchants"], phones["paid_transactions"]) == (3, 300)
    # pooled: disputes of the merchants reporting paid transactions 1 / 300;
    # hours: A 48+48+24+168 = 288, B 12+6 = 18, C 48 → 354 / 7 = 50.571…; self (2 + 2 + 0) / 7
    assert phones["industry_average"] == {"dispute_rate": "0.003333", "completion_hours": "50.57",
                                          "self_completion_rate": "0.5714"}
    assert phones["platinum_benchmark"] == {"dispute_rate": "0.000000", "completion_hours": "9.00",
                                            "self_completion_rate": "1.0000"}
    # by refund path (goods status): A's return shipped back, A's exchange, A's compensation; the rest
    # ended before any goods moved (C's dispute is not pooled: C reported no paid transactions)
    assert phones["by_path"] == {
        "refund_before_shipment": {"disputes": 1, "completed": 4, "dispute_rate": "0.003333",
                                   "completion_hours": "28.50", "self_completion_rate": "0.5000"},
        "refund_without_return": {"disputes": 0, "completed": 1, "dispute_rate": "0.000000",
                                  "completion_hours": "168.00", "self_completion_rate": "0.0000"},
        "return_and_refund": {"disputes": 0, "completed": 1, "dispute_rate": "0.000000",
                              "completion_hours": "48.00", "self_completion_rate": "1.0000"},
        "exchange": {"disputes": 0, "completed": 1, "dispute_rate": "0.000000", "completion_hours": "24.00",
                     "self_completion_rate": "1.0000"},
    }
    a = next(x for x in idx["merchants"] if x["merchant_id"] == "A")
    assert {p: (v["completed"], v["disputes"]) for p, v in a["by_path"].items()} == {
        "refund_before_shipment": (1, 1), "refund_without_return": (1, 0), "return_and_refund": (1, 0),
        "exchange": (1, 0)}


def test_window_boundaries_and_empty_denominators():
    idx = _index()
    m = {x["merchant_id"]: x for x in idx["merchants"]}
    # F: completions at 2026-11-01 00:00 and 2026-11-28 23:59:59 count; 10-31 23:59:59 and 11-29 00:00 do not
    assert m["F"]["completed"] == 2 and m["F"]["category"] == "apparel"
    # F alone in its category: no peers → no lead, no warning; no paid transactions → no dispute rate
    assert m["F"]["lead_pct"] == {"dispute_rate": None, "completion_hours": None, "self_completion_rate": None,
                                  "index": None}
    assert m["F"]["warnings"] == [] and m["F"]["index_score"] is None
    # G: paid transactions but no service orders → category "unknown", dispute rate 0, nothing completed
    g = m["G"]
    assert (g["category"], g["dispute_rate"], g["completion_hours"], g["self_completion_rate"]) == (
        "unknown", "0.000000", None, None)
    assert g["platinum"] is False
    # with the default policy (at least 10 merchants with a value) there is no benchmark and no label
    idx10 = _index(IndexPolicy())
    assert all(v is None for c in idx10["categories"] for v in c["platinum_benchmark"].values())
    assert not any(x["platinum"] for x in idx10["merchants"])
    # an empty window
    assert composite_index({}, END) == {"window": {"from": "2026-11-01", "to": "2026-11-28", "days": 28},
                                        "categories": [], "merchants": []}


def test_platinum_benchmark_is_the_best_decile_value():
    hours = [Fraction(h) for h in range(1, 21)]  # 20 merchants: 1 … 20 hours
    # best first, rank ceil(10 % x 20) = 2 → 2 hours (lower is better)
    assert platinum("completion_hours", hours, IndexPolicy()) == 2
    rates = [Fraction(k, 20) for k in range(1, 21)]  # self-completion: higher is better
    assert platinum("self_completion_rate", rates, IndexPolicy()) == Fraction(19, 20)
    assert platinum("completion_hours", hours[:11], IndexPolicy()) == 2  # rank ceil(1.1) = 2
    assert platinum("completion_hours", hours[:10], IndexPolicy()) == 1  # rank ceil(1.0) = 1
    assert platinum("completion_hours", hours[:9], IndexPolicy()) is None  # fewer than 10 peers with a value


def test_lead_among_all_values_equals_lead_among_the_peers():
    """The lead is computed on the category's sorted values with the merchant's own value
    in it (no copy per merchant); it is the share of the OTHER merchants strictly worse."""
    import random
    from fractions import Fraction

    from kpi.domain.index import METRICS, _lead, _lead_among, _peer_values

    rnd = random.Random(4)
    for _ in range(300):
        vals = sorted(Fraction(rnd.randint(0, 6), rnd.choice((1, 2, 3))) for _ in range(rnd.randint(1, 12)))
        for metric in (*METRICS, None):
            for mine in vals + [None]:
                assert _lead_among(metric, mine, vals) == _lead(metric, mine, _peer_values(vals, mine))
    assert _lead_among(None, Fraction(1), [Fraction(0), Fraction(1), Fraction(1), Fraction(2)]) == Fraction(1, 3)
    assert _lead_among("completion_hours", Fraction(1), [Fraction(0), Fraction(1), Fraction(2)]) == Fraction(1, 2)


def test_self_completion_counts_only_the_merchants_own_outcomes():
    """Only outcomes the merchant itself carried out: never an order the platform serves,
    never a timeout close or the customer's abandonment; a confirmation (customer or timer)
    of the merchant's own outcome counts."""
    from kpi.domain.projection import derived

    c = bj(2026, 11, 10, 9)
    cases = {
        "platform-mode exchange": (order("P", c, mode="platform", service_type="exchange",
                                         exchange_created=c + H, exchange_shipped=c + 5 * H), False),
        "served on behalf, refunded": (order("P", c, mode="platform", on_behalf=True,
                                             refund=(c + H, "199.00", "merchant")), False),
        "own exchange": (order("M", c, mode="full_manufacturer", service_type="exchange", exchange_created=c + H,
                               exchange_shipped=c + 5 * H), True),
        "own refund": (order("M", c, refund=(c + H, "199.00", "merchant")), True),
        "timer refund": (order("M", c, refund=(c + H, "199.00", "system")), False),
        "ship-back timeout": (order("M", c, audited=c + H, closed=c + 720 * H, closed_role="system"), False),
        "feedback timeout": (order("M", c, audited=c + H, closed=c + 360 * H, closed_role="system"), False),
        "customer abandoned": (order("M", c, closed=c + H, closed_role="customer"), False),
        "rejected": (order("M", c, audited=c + H, closed=c + H, closed_role="merchant_staff"), True),
        "auto-confirmed outcome": (order("M", c, processed=c + 2 * H, closed=c + 170 * H, closed_role="system"), True),
        "confirmed resend": (order("M", c, service_type="exchange", exchange_created=c + H, closed=c + 3 * H,
                                   closed_role="customer"), True),
        "closed by an operator": (order("M", c, processed=c + H, closed=c + 2 * H, closed_role="platform_operator"),
                                  False),
        "arbitration first": (order("M", c, arbitration=c + H, refund=(c + 2 * H, "199.00", "merchant")), False),
    }
    assert {k: derived(o)["self_completed"] for k, (o, _) in cases.items()} == {k: v for k, (_, v) in cases.items()}


def test_peers_by_catalogue_and_no_warning_at_a_tied_best_value():
    c = bj(2026, 11, 10, 9)
    orders = [order("P1", c, refund=(c + 10 * H, "199.00", "merchant")),
              order("P2", c, refund=(c + 10 * H, "199.00", "merchant")),
              # its orders are mostly apparel, its catalogue mostly phones: the catalogue decides
              order("X", c, category="apparel", refund=(c + 20 * H, "199.00", "merchant")),
              order("X", c, category="apparel", refund=(c + 20 * H, "199.00", "merchant"))]
    t = bj(2026, 11, 1)
    catalogue = [("G", "g-1", "phones", t), ("G", "g-2", "phones", t), ("G", "g-3", "apparel", t),
                 ("X", "x-1", "phones", t)]
    paid = {("G", date(2026, 11, 20)): 100, ("P1", date(2026, 11, 20)): 100, ("P2", date(2026, 11, 20)): 100,
            ("Z", date(2026, 11, 20)): 5}
    idx = composite_index(windows_from_counters(counters_of(orders, catalogue=catalogue), paid, END), END)
    m = {x["merchant_id"]: x for x in idx["merchants"]}
    assert {k: v["category"] for k, v in m.items()} == {"G": "phones", "P1": "phones", "P2": "phones",
                                                        "X": "phones", "Z": "unknown"}
    phones = next(x for x in idx["categories"] if x["category"] == "phones")
    assert (phones["merchants"], phones["paid_transactions"]) == (4, 300)
    # P1, P2 and G share the best dispute rate (0), P1 and P2 the best hours and self-completion:
    # a 0 % lead at the best value is no warning; X is slower than both (warned)
    assert m["P1"]["lead_pct"]["dispute_rate"] == "0.00" and m["P1"]["lead_pct"]["completion_hours"] == "50.00"
    assert m["P1"]["warnings"] == [] and m["P2"]["warnings"] == []
    assert m["X"]["warnings"] == ["completion_hours", "index"]
    # G ties at the best dispute rate (no warning there); its index, the mean of its leads (0), is
    # below P1's and P2's (16.67): that lead is warned
    assert m["G"]["warnings"] == ["index"] and m["P1"]["index_score"] == "16.67"
    assert m["G"]["lead_pct"] == {"dispute_rate": "0.00", "completion_hours": None, "self_completion_rate": None,
                                  "index": "0.00"}
