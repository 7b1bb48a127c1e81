"""Published statistics (docs/kpis.md), hand-computed, through the projection's counters."""
from __future__ import annotations

from datetime import date

import pytest
from kpi_gen import bj, order

from kpi.domain.statistics import months_of, period_bounds, statistics_of_counters
from kpi.domain.projection import counters_of


def _orders():
    oct31 = bj(2026, 10, 31, 23, 59)
    nov1 = bj(2026, 11, 1, 0, 0)
    return [
        order("m1", nov1, problem_type="quality", sku="s1", rated=(nov1, 5), recommended=(nov1, 10), arbitration=nov1),
        order("m1", nov1, problem_type="quality", sku="s2", rated=(nov1, 4), recommended=(nov1, 9)),
        order("m2", nov1, problem_type="logistics", sku="s1", rated=(nov1, 2), recommended=(nov1, 6),
              service_type="exchange"),
        order("m2", nov1, problem_type="other", sku="s1", rated=(nov1, 1), recommended=(nov1, 8)),
        # 2026-10-31 23:59 Beijing: October (one minute before the month boundary), same quarter
        order("m3", oct31, problem_type="quality", sku="s3", rated=(oct31, 3), recommended=(oct31, 0),
              arbitration=oct31),
    ]


def test_month_and_quarter_figures():
    counters = counters_of(_orders())
    nov = statistics_of_counters("2026-11", counters, paid_transactions=50)
    assert nov["service_orders"] == 4 and nov["arbitrations"] == 1 and nov["complaint_rate"] == "0.2500"
    assert nov["satisfaction_distribution"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 1}
    assert nov["ratings"] == 4 and nov["satisfied_share"] == "0.5000"
    assert nov["nps"] == "25.00" and nov["nps_answers"] == 4  # (2 promoters - 1 detractor) / 4
    assert (nov["promoters"], nov["passives"], nov["detractors"]) == (2, 1, 1)
    # 3 returns and 1 exchange over 50 paid transactions
    assert (nov["returns"], nov["exchanges"]) == (3, 1)
    assert (nov["return_rate"], nov["exchange_rate"], nov["return_exchange_rate"]) == ("0.0600", "0.0200", "0.0800")
    assert nov["top_problem_types"][0] == {"problem_type": "quality", "count": 2, "share": "0.5000"}
    assert nov["top_problem_types"][1:] == [{"problem_type": "logistics", "count": 1, "share": "0.2500"},
                                            {"problem_type": "other", "count": 1, "share": "0.2500"}]
    assert nov["top_skus"] == [{"sku": "s1", "count": 3, "share": "0.7500"}, {"sku": "s2", "count": 1,
                                                                               "share": "0.2500"}]
    assert (nov["from"], nov["to"]) == ("2026-11-01", "2026-11-30")
    oct_ = statistics_of_counters("2026-10", counters)
    assert oct_["service_orders"] == 1 and oct_["top_skus"] == [{"sku": "s3", "count": 1, "share": "1.0000"}]
    q4 = statistics_of_counters("2026-Q4", counters, paid_transactions=100)
    assert q4["service_orders"] == 5 and q4["complaint_rate"] == "0.4000" and q4["nps"] == "0.00"
    assert q4["return_rate"] == "0.0400" and (q4["from"], q4["to"]) == ("2026-10-01", "2026-12-31")


def test_empty_denominators_are_none_never_a_division_error():
    counters = counters_of(_orders())
    empty = statistics_of_counters("2026-12", counters)
    assert empty["service_orders"] == 0 and empty["complaint_rate"] is None and empty["nps"] is None
    assert empty["top_skus"] == [] and empty["top_problem_types"] == [] and empty["satisfied_share"] is None
    # orders but no paid transactions reported: the return/exchange rates are not applicable
    nov = statistics_of_counters("2026-11", counters, paid_transactions=0)
    assert nov["return_rate"] is None and nov["exchange_rate"] is None and nov["return_exchange_rate"] is None


def test_periods():
    assert months_of("2026-Q4") == ["2026-10", "2026-11", "2026-12"] and months_of("2026-02") == ["2026-02"]
    assert period_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    for bad in ("2026-13", "2026-Q5", "2026-1", "26-11"):
        with pytest.raises(ValueError):
            months_of(bad)
