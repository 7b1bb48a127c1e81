"""Service-express (manufacturer) scores per evaluation period (docs/kpis.md).

The evaluation period is the scorecard week (Monday–Sunday, Beijing).

Members (``kpi.handlers.figures.service_express``): every manufacturer serving service orders
itself in a manufacturer mode (``customer_contact``, ``full_manufacturer``), from its
first such order on, whether or not consultations reach it; and every manufacturer
enrolled in consultation routing.

after-sales score = the §5.1 weighted weekly score × 100 (``None`` when the
manufacturer had no scorecard data that week).

consultation score (default weights, configurable) over the manufacturer's
routing decisions in the period:
  - answer rate (0.4): consultations its agents kept (routed to it and not
    transferred back) / consultations in its service hours;
  - in-hours availability (0.3): consultations routed to it / consultations in its
    service hours (decisions with reason ``no_agents`` or ``overflow`` count against
    it; ``out_of_hours``, ``not_enrolled``, ``unknown_sku``, ``disqualified`` and
    ``degraded`` are outside its responsibility and not counted);
  - transfer-back (0.3, lower is better): 1 − transfers / consultations routed to it.
Consultation satisfaction is part of the spec's default but no event carries it
yet; a component with an empty denominator is left out and its weight spread over
the others, like §5.1. No consultation in hours → ``None``.

Disqualification: the same score (after-sales or consultation) under the threshold
(80) in two consecutive periods. A period with no score breaks the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable


Q2 = Decimal("0.01")
DEFAULT_WEIGHTS = {"answer_rate": Decimal("0.4"), "availability": Decimal("0.3"), "transfer_back": Decimal("0.3")}
THRESHOLD = Decimal("80")


@dataclass(frozen=True)
class Decision:
    manufacturer_id: str
    at: object
    target: str
    reason: str


@dataclass(frozen=True)
class Transfer:
    manufacturer_id: str
    at: object


def _ratio(n: int, d: int) -> Decimal | None:
    return None if d == 0 else Decimal(n) / Decimal(d)


def consultation_score(in_hours: int, routed: int, transferred: int,
                       weights: dict[str, Decimal] | None = None) -> dict:
    """The consultation score of one manufacturer and period from its counts."""
    weights = weights or DEFAULT_WEIGHTS
    kept = max(routed - transferred, 0)
    parts = {"answer_rate": _ratio(kept, in_hours), "availability": _ratio(routed, in_hours),
             "transfer_back": None if routed == 0 else 1 - min(Decimal(transferred) / routed, Decimal(1))}
    present = {k: v for k, v in parts.items() if v is not None and weights.get(k)}
    score = None
    if present:
        total = sum(weights[k] for k in present)
        score = (sum(weights[k] * v for k, v in present.items()) / total * 100).quantize(Q2, ROUND_HALF_UP)
    return {"score": score, "in_hours": in_hours, "routed": routed, "transfers": transferred,
            "components": {k: None if v is None else str(v.quantize(Decimal("0.0001"), ROUND_HALF_UP))
                           for k, v in parts.items()}}


def scores_from_counters(rows: Iterable[tuple], weights: dict[str, Decimal] | None = None) -> dict[date, dict]:
    """``cons`` counters — rows of (manufacturer, week, in_hours, routed, transfers) —
    → period → manufacturer → consultation score; ``None`` without consultations in hours."""
    out: dict[date, dict[str, dict]] = {}
    for m, wk, in_hours, routed, transferred in rows:
        out.setdefault(date.fromisoformat(wk), {})[m] = consultation_score(in_hours, routed, transferred, weights)
    return out


def consultation_scores(decisions: Iterable[Decision], transfers: Iterable[Transfer],
                        weights: dict[str, Decimal] | None = None) -> dict[date, dict[str, dict]]:
    """Scores of some routing decisions and transfers (through the projection's counters)."""
    from kpi.domain.projection import add_contributions, consultation_contributions

    acc: dict = {}
    for i, d in enumerate(decisions):
        add_contributions(acc, consultation_contributions((f"d{i}", "decided", d.manufacturer_id, d.at, d.target,
                                                           d.reason, None)))
    for i, t in enumerate(transfers):
        add_contributions(acc, consultation_contributions((f"t{i}", "transferred", t.manufacturer_id, t.at, None,
                                                           "", None)))
    return scores_from_counters(((m, p, a, b, c) for (f, m, p, _d), (a, b, c, _e) in acc.items() if f == "cons"),
                                weights)


def after_sales_score(weekly_score: Decimal | None) -> Decimal | None:
    return None if weekly_score is None else (weekly_score * 100).quantize(Q2, ROUND_HALF_UP)


def below_twice(period: date, scores: dict[date, dict[str, Decimal | None]],
                threshold: Decimal = THRESHOLD) -> bool:
    """True when after-sales or consultation scored under the threshold in
    ``period`` and in the period before it (consecutive weeks)."""
    prev = period - timedelta(weeks=1)
    for kind in ("after_sales", "consultation"):
        now_s, prev_s = scores.get(period, {}).get(kind), scores.get(prev, {}).get(kind)
        if now_s is not None and prev_s is not None and now_s < threshold and prev_s < threshold:
            return True
    return False
