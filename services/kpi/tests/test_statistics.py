"""Published statistics (SPEC §5.4), hand-computed."""
from __future__ import annotations

from kpi_gen import bj

from kpi.domain.statistics import StatOrder, statistics


def test_month_and_quarter_figures():
    oct31 = bj(2026, 10, 31, 23, 59)
    nov1 = bj(2026, 11, 1, 0, 0)
    orders = [
        StatOrder(nov1, "quality", "s1", nov1, 5, nov1, 10, nov1),
        StatOrder(nov1, "quality", "s2", nov1, 4, nov1, 9),
        StatOrder(nov1, "logistics", "s1", nov1, 2, nov1, 6),
        StatOrder(nov1, "other", "s1", nov1, 1, nov1, 8),
        StatOrder(oct31, "quality", "s3", oct31, 3, oct31, 0, oct31),  # October (Beijing), same quarter
    ]
    nov = statistics(orders, "2026-11")
    assert nov["service_orders"] == 4 and nov["arbitrations"] == 1 and nov["complaint_rate"] == "0.2500"
    assert nov["satisfaction_distribution"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 1}
    assert nov["nps"] == "25.00" and nov["nps_answers"] == 4  # (2 promoters - 1 detractor) / 4
    assert nov["top_problem_types"][0] == {"problem_type": "quality", "count": 2}
    assert nov["top_skus"] == [{"sku": "s1", "count": 3}, {"sku": "s2", "count": 1}]
    q4 = statistics(orders, "2026-Q4")
    assert q4["service_orders"] == 5 and q4["complaint_rate"] == "0.4000" and q4["nps"] == "0.00"
    empty = statistics(orders, "2026-12")
    assert empty["complaint_rate"] is None and empty["nps"] is None and empty["top_skus"] == []
