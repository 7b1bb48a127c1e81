"""Published platform statistics (SPEC §5.4), per Beijing month ("2026-11") or
quarter ("2026-Q4"): satisfaction distribution (ratings by rating time), NPS from
the 0–10 recommendation answers (promoters 9–10 minus detractors 0–6, in percent
points of all answers; ``None`` without answers), complaint (arbitration) rate =
arbitration requests / service orders created in the period (``None`` when no
order was created), top problem types and SKUs by service orders created."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from shared.clock import to_beijing

PERIOD = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))$")


def period_keys(at: datetime) -> tuple[str, str]:
    b = to_beijing(at)
    return f"{b.year}-{b.month:02d}", f"{b.year}-Q{(b.month - 1) // 3 + 1}"


def in_period(at: datetime | None, period: str) -> bool:
    return at is not None and period in period_keys(at)


@dataclass(frozen=True)
class StatOrder:
    created_at: datetime
    problem_type: str
    sku: str
    rated_at: datetime | None = None
    stars: int | None = None
    recommend_at: datetime | None = None
    recommend: int | None = None
    arbitration_at: datetime | None = None


def statistics(orders: Iterable[StatOrder], period: str, top: int = 5) -> dict:
    created = arb = 0
    stars: Counter = Counter()
    problems: Counter = Counter()
    skus: Counter = Counter()
    promoters = detractors = answers = 0
    for o in orders:
        if in_period(o.created_at, period):
            created += 1
            problems[o.problem_type] += 1
            skus[o.sku] += 1
        if in_period(o.arbitration_at, period):
            arb += 1
        if in_period(o.rated_at, period) and o.stars is not None:
            stars[o.stars] += 1
        if in_period(o.recommend_at, period) and o.recommend is not None:
            answers += 1
            promoters += o.recommend >= 9
            detractors += o.recommend <= 6
    q = Decimal("0.0001")
    nps = None if answers == 0 else (Decimal(100 * (promoters - detractors)) / answers).quantize(Decimal("0.01"),
                                                                                                  ROUND_HALF_UP)
    return {
        "period": period,
        "service_orders": created,
        "complaint_rate": None if created == 0 else str((Decimal(arb) / created).quantize(q, ROUND_HALF_UP)),
        "arbitrations": arb,
        "satisfaction_distribution": {str(s): stars.get(s, 0) for s in range(1, 6)},
        "nps": None if nps is None else str(nps),
        "nps_answers": answers,
        "top_problem_types": [{"problem_type": k, "count": v} for k, v in
                              sorted(problems.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
        "top_skus": [{"sku": k, "count": v} for k, v in sorted(skus.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
    }
