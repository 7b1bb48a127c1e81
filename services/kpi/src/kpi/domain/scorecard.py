"""POP self-service weekly scorecard (docs/kpis.md), ranking and bottom-10 flags.

Week membership follows the spec: F1 by rating time, F2 by audit time, F3 by
receipt time, F4 by completion (exchange shipped) time; weeks run Monday 00:00 to
Sunday 23:59:59.999999 Beijing time. Per order, ``kpi.domain.projection.contributions``
decides in which week and indicator it counts and whether it met the target:

- F1: rated 4 or 5 stars / all ratings;
- F2: audited ≤ 12 h after creation (exactly 12 h is on time; calendar hours,
  weekends and holidays count) / orders audited;
- F3: processed ≤ 12 h after receipt / orders received — an order received in the
  week and not (yet) processed counts as late;
- F4: exchange order shipped ≤ 18 h after the decision that created it / exchange
  orders shipped (an exchange counts once it shipped).

Empty denominators: an indicator with no orders in the week is ``None`` ("not
applicable") and its weight is redistributed proportionally over the indicators
that have data; a merchant with no data at all has no score and is not ranked.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

Q4 = Decimal("0.0001")


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    target: Decimal
    weight: Decimal


INDICATORS = (
    Indicator("F1", "after-sales satisfaction", Decimal("0.85"), Decimal("0.40")),
    Indicator("F2", "audit within 12 h", Decimal("0.95"), Decimal("0.30")),
    Indicator("F3", "processing within 12 h of receipt", Decimal("0.90"), Decimal("0.20")),
    Indicator("F4", "exchange shipped within 18 h", Decimal("0.90"), Decimal("0.10")),
)


@dataclass
class IndicatorValue:
    numerator: int = 0
    denominator: int = 0

    @property
    def value(self) -> Decimal | None:
        if self.denominator == 0:
            return None
        return (Decimal(self.numerator) / Decimal(self.denominator)).quantize(Q4, ROUND_HALF_UP)


@dataclass
class Scorecard:
    merchant_id: str
    week: date
    indicators: dict[str, IndicatorValue] = field(default_factory=dict)

    @property
    def score(self) -> Decimal | None:
        """Weighted sum of the indicator rates (0–1), weights of empty indicators
        redistributed over the others."""
        parts = [(ind.weight, v) for ind in INDICATORS if (v := self.indicators[ind.id].value) is not None]
        if not parts:
            return None
        total_w = sum(w for w, _ in parts)
        return (sum(w * v for w, v in parts) / total_w).quantize(Q4, ROUND_HALF_UP)

    def as_dict(self) -> dict:
        out = {"merchant_id": self.merchant_id, "week": self.week.isoformat(),
               "score": None if self.score is None else str(self.score), "indicators": {}}
        for ind in INDICATORS:
            v = self.indicators[ind.id]
            out["indicators"][ind.id] = {
                "name": ind.name, "numerator": v.numerator, "denominator": v.denominator,
                "value": None if v.value is None else str(v.value), "target": str(ind.target),
                "weight": str(ind.weight), "met": None if v.value is None else v.value >= ind.target,
                "applicable": v.value is not None,
            }
        return out


def scorecards_from_counters(rows: Iterable[tuple],
                             weeks: dict[date, dict[str, Scorecard]] | None = None) -> dict[date, dict[str, Scorecard]]:
    """Scorecards from ``sc`` counters: rows of (merchant_id, week, indicator, met, counted),
    added to ``weeks`` if given (rows read in chunks, a merchant's rows in any of them)."""
    weeks = {} if weeks is None else weeks
    days: dict[str, date] = {}
    for m, wk, ind, met, counted in rows:
        if not counted:
            continue
        d = days.get(wk)
        if d is None:
            d = days[wk] = date.fromisoformat(wk)
        cards = weeks.setdefault(d, {})
        card = cards.get(m)
        if card is None:
            card = cards[m] = Scorecard(m, d, {i.id: IndicatorValue() for i in INDICATORS})
        iv = card.indicators[ind]
        iv.numerator += met
        iv.denominator += counted
    return weeks


def weekly_scorecards(orders) -> dict[date, dict[str, Scorecard]]:
    """All scorecards (week → merchant → scorecard) of some orders' facts."""
    from kpi.domain.projection import counters_of

    return scorecards_from_counters((m, p, d, a, b) for (f, m, p, d), (a, b, _c, _d) in counters_of(orders).items()
                                    if f == "sc")


@dataclass(frozen=True)
class RankEntry:
    merchant_id: str
    score: Decimal
    rank: int  # competition ranking: ties share a rank (1, 2, 2, 4)
    bottom10: bool  # fewer than 10 merchants scored strictly lower


def rank(cards: dict[str, Scorecard], bottom: int = 10) -> list[RankEntry]:
    scored = sorted(((s, m) for m, c in cards.items() if (s := c.score) is not None), key=lambda t: (-t[0], t[1]))
    asc = sorted(s for s, _ in scored)
    out = []
    for s, m in scored:
        worse = bisect_left(asc, s)  # merchants scoring strictly lower
        better = len(asc) - bisect_right(asc, s)
        out.append(RankEntry(m, s, better + 1, worse < bottom))
    return out


def flags(weeks: dict[date, dict[str, Scorecard]], consecutive: int = 3, bottom: int = 10) -> list[dict]:
    """Merchants in the bottom 10 for ``consecutive`` consecutive weeks, one flag
    per (merchant, week that completes a run)."""
    bottom_by_week = {w: {e.merchant_id for e in rank(cards, bottom) if e.bottom10} for w, cards in weeks.items()}
    out = []
    for w in sorted(bottom_by_week):
        run = [w - timedelta(weeks=k) for k in range(consecutive)]
        for m in sorted(bottom_by_week[w]):
            if all(m in bottom_by_week.get(x, ()) for x in run):
                out.append({"merchant_id": m, "week": w.isoformat(), "weeks": [x.isoformat() for x in reversed(run)]})
    return out
