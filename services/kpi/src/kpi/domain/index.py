"""Composite after-sales index (docs/kpis.md, Tmall method), rolling 28 days, 1:1:1.

Window: the 28 Beijing days ending on the given date (inclusive).

Refund cases are service orders of type return, exchange or compensation (and a
repair that became an exchange); a plain repair is not a refund. Per merchant:

- refund dispute rate = cases where platform customer service intervened
  (arbitration requested, by request time) / paid transactions (ingest API, by
  day). Lower is better. No paid transactions reported → ``None``.
- refund completion time = total time from application to completion / completed
  cases (by completion time), in hours. A case completes when the refund executes,
  the exchange ships, or the order reaches a terminal state (completed, rejected,
  abandoned, closed, refunded by the system) — whichever comes first ("refund
  done or closed"). Lower is better. Nothing completed → ``None``.
- refund self-completion rate = cases the merchant completed itself / completed
  cases: only outcomes the merchant itself carried out count
  (``kpi.domain.rules.DERIVED`` ``self_completed``). Not self-completed: any order the platform
  serves (``platform`` mode, or on a manufacturer's behalf), arbitration requested
  before completion, a refund executed by the platform or by a system timer
  (auto-refund, advance compensation), a close by a timeout (feedback, ship-back),
  by the customer's abandonment or by a platform operator. A confirmation (by the
  customer or the auto-confirm timer) of an outcome the merchant decided counts.
  Higher is better. Nothing completed → ``None``.

Peers: merchants of the same top-level category. A merchant's category comes from
its catalogue when KPI knows it (``catalogue.sku_upserted``): the category most of
its SKUs carry; otherwise from its service orders: the category most of them carry
(ties: alphabetical); mapped to the top-level category by the ``category_parents``
setting (default: categories are top-level). A merchant with neither (e.g. paid
transactions posted before its catalogue was published) is in category ``unknown``.

Per category:
- industry average = the pooled value over the category's merchants (e.g. all
  their disputes / all their paid transactions), not the mean of merchants' rates;
- platinum benchmark = the best-decile value: sort the merchants' values best
  first and take the value at rank ⌈10 % × n⌉ (the worst value still inside the best
  10 %). Only with at least ``platinum_min_peers`` (default 10) merchants having a
  value; otherwise no benchmark and nobody in the category earns the label.

Per merchant:
- lead over peers, per indicator = the share of the other merchants of its
  category (with a value) whose value is strictly worse (0–100 %); ``None`` without
  such peers. A lead under 30 % raises a warning — except for a merchant at the
  category's best value (no peer strictly better: e.g. all tied), whose lead of 0 %
  only means nobody is worse;
- composite index = the 1:1:1 mean of its three leads (leads that are ``None`` are
  left out, the others weigh equally); its lead over peers is computed the same way
  and warned under 30 % too (again not at the best index score);
- platinum after-sales label = all three indicators present and each at least as
  good as the category's platinum benchmark;
- breakdown by refund path (by goods status, ``kpi.domain.rules.DERIVED`` ``refund_path``):
  ``refund_before_shipment`` — a return refunded or closed before the customer
  shipped the goods back (e.g. advance compensation, rejection); ``refund_without_return``
  — compensation orders (refund only, no goods move); ``return_and_refund`` — the
  goods were shipped back before completion; ``exchange`` — an exchange order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from kpi.domain.projection import PATHS

WINDOW_DAYS = 28
METRICS = ("dispute_rate", "completion_hours", "self_completion_rate")
LOWER_IS_BETTER = {"dispute_rate": True, "completion_hours": True, "self_completion_rate": False}
_Q = {"dispute_rate": Decimal("0.000001"), "completion_hours": Decimal("0.01"),
      "self_completion_rate": Decimal("0.0001")}
UNKNOWN = "unknown"


@dataclass
class Sums:
    disputes: int = 0
    completed: int = 0
    seconds: int = 0
    self_completed: int = 0

    def add(self, a: int, b: int, c: int, d: int) -> None:
        self.disputes += a
        self.completed += b
        self.seconds += c
        self.self_completed += d


@dataclass
class MerchantWindow:
    merchant_id: str
    paid: int = 0
    category: str = UNKNOWN
    paths: dict[str, Sums] = field(default_factory=dict)

    def total(self) -> Sums:
        t = Sums()
        for s in self.paths.values():
            t.add(s.disputes, s.completed, s.seconds, s.self_completed)
        return t


@dataclass(frozen=True)
class IndexPolicy:
    platinum_share: Fraction = Fraction(1, 10)
    platinum_min_peers: int = 10
    lead_warning: Fraction = Fraction(3, 10)


def window(end: date) -> tuple[date, date]:
    return end - timedelta(days=WINDOW_DAYS - 1), end


def ratios(s: Sums, paid: int) -> dict[str, tuple[int, int] | None]:
    """The three indicators as (numerator, denominator), ``None`` where undefined."""
    return {
        "dispute_rate": (s.disputes, paid) if paid > 0 else None,
        "completion_hours": (s.seconds, 3600 * s.completed) if s.completed else None,
        "self_completion_rate": (s.self_completed, s.completed) if s.completed else None,
    }


def values(s: Sums, paid: int) -> dict[str, Fraction | None]:
    return {m: None if r is None else Fraction(*r) for m, r in ratios(s, paid).items()}


def _show(metric: str, v: Fraction | None) -> str | None:
    if v is None:
        return None
    return str((Decimal(v.numerator) / Decimal(v.denominator)).quantize(_Q[metric], ROUND_HALF_UP))


def _pct(v: Fraction | None) -> str | None:
    return None if v is None else str((Decimal(v.numerator * 100) / Decimal(v.denominator)).quantize(
        Decimal("0.01"), ROUND_HALF_UP))


def _better(metric: str, a: Fraction, b: Fraction) -> bool:
    """a strictly better than b."""
    return a < b if LOWER_IS_BETTER[metric] else a > b


def _lead(metric: str | None, mine: Fraction | None, others: list[Fraction]) -> Fraction | None:
    """Share of peers strictly worse than ``mine``. ``others``: the peers' values sorted ascending."""
    if mine is None or not others:
        return None
    import bisect

    if metric is None or not LOWER_IS_BETTER[metric]:  # higher is better: count values below
        worse = bisect.bisect_left(others, mine)
    else:
        worse = len(others) - bisect.bisect_right(others, mine)
    return Fraction(worse, len(others))


def _lead_among(metric: str | None, mine: Fraction | None, sorted_all: list[Fraction]) -> Fraction | None:
    """``_lead(metric, mine, _peer_values(sorted_all, mine))`` without copying the list:
    ``sorted_all`` holds ``mine`` once for the merchant itself, which is neither strictly
    better nor strictly worse than itself, so it only leaves the count of peers."""
    if mine is None:
        return _lead(metric, mine, sorted_all)
    n = len(sorted_all) - 1
    if n <= 0:
        return None
    return Fraction(_worse(metric, mine, sorted_all), n)


def _worse(metric: str | None, mine, sorted_all: list) -> int:
    """How many of ``sorted_all`` (ascending) are strictly worse than ``mine``
    (``metric`` None: the index score, higher is better)."""
    import bisect

    if metric is None or not LOWER_IS_BETTER[metric]:
        return bisect.bisect_left(sorted_all, mine)
    return len(sorted_all) - bisect.bisect_right(sorted_all, mine)


def _peer_values(sorted_all: list[Fraction], mine: Fraction | None) -> list[Fraction]:
    """All values but one occurrence of ``mine`` (the merchant itself)."""
    if mine is None:
        return sorted_all
    import bisect

    i = bisect.bisect_left(sorted_all, mine)
    return sorted_all[:i] + sorted_all[i + 1:]


def platinum(metric: str, vals: list[Fraction], policy: IndexPolicy) -> Fraction | None:
    if len(vals) < max(1, policy.platinum_min_peers):
        return None
    best_first = sorted(vals, reverse=not LOWER_IS_BETTER[metric])
    k = max(1, math.ceil(len(vals) * policy.platinum_share))
    return best_first[k - 1]


def _meets(metric: str, v: Fraction | None, bench: Fraction | None) -> bool:
    return v is not None and bench is not None and not _better(metric, bench, v)


def _path_view(s: Sums, paid: int) -> dict:
    v = values(s, paid)
    return {"disputes": s.disputes, "completed": s.completed, **{m: _show(m, v[m]) for m in METRICS}}


def composite_index(merchants: dict[str, MerchantWindow], end: date, policy: IndexPolicy = IndexPolicy()) -> dict:
    """The index of every merchant and category for the window ending on ``end``."""
    by_cat: dict[str, list[MerchantWindow]] = {}
    for mw in merchants.values():
        by_cat.setdefault(mw.category, []).append(mw)
    cats_out, merchants_out = [], {}
    for cat in sorted(by_cat):
        group = by_cat[cat]
        vals = {mw.merchant_id: values(mw.total(), mw.paid) for mw in group}
        sorted_vals = {m: sorted(v[m] for v in vals.values() if v[m] is not None) for m in METRICS}
        bench = {m: platinum(m, sorted_vals[m], policy) for m in METRICS}
        leads = {}
        for mw in group:
            mine = vals[mw.merchant_id]
            leads[mw.merchant_id] = {m: _lead_among(m, mine[m], sorted_vals[m]) for m in METRICS}
        index_score = {}
        for mid, ld in leads.items():
            present = [v for v in ld.values() if v is not None]
            index_score[mid] = sum(present, Fraction(0)) / len(present) if present else None
        sorted_index = sorted(v for v in index_score.values() if v is not None)
        # the rules (benchmark met, lead under the warning line) on exact ranks, as /metrics counts them
        flags = dict(zip((mw.merchant_id for mw in group), _category_flags(group, policy)))
        avg, pooled_paid = _pooled(group)
        path_pooled = {p: Sums() for p in PATHS}
        for mw in group:
            for p, s in mw.paths.items():
                # disputes pool only where the merchant reported paid transactions (the denominator)
                path_pooled[p].add(s.disputes if mw.paid > 0 else 0, s.completed, s.seconds, s.self_completed)
        cats_out.append({
            "category": cat, "merchants": len(group), "paid_transactions": pooled_paid,
            "industry_average": {m: _show(m, avg[m]) for m in METRICS},
            "platinum_benchmark": {m: _show(m, bench[m]) for m in METRICS},
            "by_path": {p: _path_view(s, pooled_paid) for p, s in path_pooled.items()},
        })
        for mw in group:
            mid = mw.merchant_id
            mine, ld = vals[mid], leads[mid]
            idx = index_score[mid]
            idx_lead = _lead_among(None, idx, sorted_index)
            meets, warnings = flags[mid]
            t = mw.total()
            merchants_out[mid] = {
                "merchant_id": mid, "category": cat, "paid_transactions": mw.paid,
                "disputes": t.disputes, "completed": t.completed,
                **{m: _show(m, mine[m]) for m in METRICS},
                "lead_pct": {**{m: _pct(ld[m]) for m in METRICS}, "index": _pct(idx_lead)},
                "index_score": _pct(idx),
                "warnings": warnings,
                "platinum_metrics": meets,
                "platinum": all(meets.values()),
                "by_path": {p: _path_view(mw.paths.get(p, Sums()), mw.paid) for p in PATHS},
            }
    start, stop = window(end)
    return {"window": {"from": start.isoformat(), "to": stop.isoformat(), "days": WINDOW_DAYS},
            "categories": cats_out,
            "merchants": [merchants_out[m] for m in sorted(merchants_out)]}


def windows_from_counters(counters: dict, paid: dict[tuple[str, date], int], end: date,
                          parents: dict[str, str] | None = None) -> dict[str, MerchantWindow]:
    """The index inputs of the window ending on ``end`` from in-memory counters
    ({(family, merchant, period, dim): [a, b, c, d]}, ``kpi.domain.projection.counters_of``)
    and paid transactions {(merchant, Beijing day): count} — what
    ``kpi.handlers.figures.index_inputs`` sums in SQL."""
    start, stop = window(end)
    lo, hi = start.isoformat(), stop.isoformat()
    merchants: dict[str, MerchantWindow] = {}
    cats: dict[str, dict[str, int]] = {}
    catalogue: dict[str, dict[str, int]] = {}
    for (family, m, period, dim), (a, b, c, d) in counters.items():
        if family == "ix" and lo <= period <= hi:
            mw = merchants.get(m) or merchants.setdefault(m, MerchantWindow(m))
            mw.paths.setdefault(dim, Sums()).add(a, b, c, d)
        elif family in ("mcat", "ccat"):
            into = cats if family == "mcat" else catalogue
            into.setdefault(m, {})[dim] = into.get(m, {}).get(dim, 0) + a
    for (m, day), n in paid.items():
        if start <= day <= stop and n:
            (merchants.get(m) or merchants.setdefault(m, MerchantWindow(m))).paid += n
    for m, mw in merchants.items():
        mw.category = main_category(cats.get(m, {}), parents or {}, catalogue.get(m))
    return merchants


def main_category(counts: dict[str, int], parents: dict[str, str],
                  catalogue: dict[str, int] | None = None) -> str:
    """A merchant's top-level category: the one most of its catalogue's SKUs carry
    (``catalogue``: SKUs per category) — what it sells, known before any service order —
    else the one most of its service orders carry (``counts``), else ``unknown``."""
    if catalogue and any(n > 0 for n in catalogue.values()):
        counts = catalogue
    if not counts:
        return UNKNOWN
    tops: dict[str, int] = {}
    for c, n in counts.items():
        top = parents.get(c, c)
        tops[top] = tops.get(top, 0) + n
    return min(tops, key=lambda c: (-tops[c], c))


def _pooled(group) -> tuple[dict[str, Fraction | None], int]:
    pooled, paid = Sums(), 0
    for mw in group:
        t = mw.total()
        pooled.completed += t.completed
        pooled.seconds += t.seconds
        pooled.self_completed += t.self_completed
        if mw.paid > 0:
            pooled.disputes += t.disputes
            paid += mw.paid
    return values(pooled, paid), paid


def platform_totals(merchants: dict[str, MerchantWindow]) -> dict[str, Fraction | None]:
    """Platform-wide pooled values (for the metrics)."""
    return _pooled(merchants.values())[0]


def index_counts(merchants: dict[str, MerchantWindow], policy: IndexPolicy = IndexPolicy()) -> dict[str, int]:
    """How many merchants ``composite_index`` lists, labels platinum and warns — all that
    /metrics needs — from the same rules (``_category_flags``) without the display values
    (the leads and scores as Fractions: seconds of interpreter time at 10,000 merchants,
    where this takes a few hundredths)."""
    by_cat: dict[str, list[MerchantWindow]] = {}
    for mw in merchants.values():
        by_cat.setdefault(mw.category, []).append(mw)
    out = {"merchants": len(merchants), "platinum": 0, "warned": 0}
    for group in by_cat.values():
        for meets, warnings in _category_flags(group, policy):
            out["platinum"] += all(meets.values())
            out["warned"] += bool(warnings)
    return out


def _category_flags(group: list[MerchantWindow], policy: IndexPolicy) -> list[tuple[dict[str, bool], list[str]]]:
    """Per merchant of one category (in ``group`` order): which indicators meet the
    platinum benchmark, and the warnings (indicators, then "index", whose lead over peers
    is under the line). Every comparison is between exact integer ranks rather than
    Fractions (``_exact_ranks``, ``_index_keys``); ranks order exactly as the values do,
    so benchmarks and leads are those of the values."""
    rs = [ratios(mw.total(), mw.paid) for mw in group]
    ranks = {m: _exact_ranks([r[m] for r in rs]) for m in METRICS}
    sorted_ranks = {m: sorted(x for x in ranks[m] if x is not None) for m in METRICS}
    bench = {m: platinum(m, sorted_ranks[m], policy) for m in METRICS}
    worse = {m: [None if x is None else _worse(m, x, sorted_ranks[m]) for x in ranks[m]] for m in METRICS}
    peers = {m: len(sorted_ranks[m]) - 1 for m in METRICS}  # a merchant's peers with a value
    keys = _index_keys(worse, peers, len(group))
    sorted_keys = sorted(k for k in keys if k is not None)
    out = []
    for i in range(len(group)):
        meets = {m: _meets(m, ranks[m][i], bench[m]) for m in METRICS}
        # a lead under the line warns, unless the merchant is at the best value (no peer
        # strictly better; with ties at the top the lead is 0 % only because nobody is worse)
        warnings = [m for m in METRICS
                    if worse[m][i] is not None and _below(worse[m][i], peers[m], policy.lead_warning)
                    and _better_count(m, ranks[m][i], sorted_ranks[m]) > 0]
        if keys[i] is not None and _below(_worse(None, keys[i], sorted_keys), len(sorted_keys) - 1,
                                          policy.lead_warning) and _better_count(None, keys[i], sorted_keys) > 0:
            warnings.append("index")
        out.append((meets, warnings))
    return out


def _better_count(metric: str | None, mine, sorted_all: list) -> int:
    """How many of ``sorted_all`` (ascending) are strictly better than ``mine``
    (``metric`` None: the index score, higher is better)."""
    import bisect

    if metric is None or not LOWER_IS_BETTER[metric]:
        return len(sorted_all) - bisect.bisect_right(sorted_all, mine)
    return bisect.bisect_left(sorted_all, mine)


def _below(worse: int, peers: int, limit: Fraction) -> bool:
    """``_lead_among(...) < limit`` in integers: a lead of ``worse`` / ``peers``; none without peers."""
    return peers > 0 and worse * limit.denominator < limit.numerator * peers


def _index_keys(worse: dict[str, list[int | None]], peers: dict[str, int], n: int) -> list[int | None]:
    """Each merchant's index score (the mean of its leads worse_m / peers_m over the
    metrics where it has one) times 6 × lcm(peers): an integer, as 6 is divisible by the
    number of leads averaged (1–3); the factor is the same for the whole category, so
    the keys order exactly like the scores."""
    live = [m for m in METRICS if peers[m] > 0]  # no peers: no lead for anyone
    lcm = math.lcm(*(peers[m] for m in live)) if live else 1
    keys: list[int | None] = []
    for i in range(n):
        present = [worse[m][i] * (lcm // peers[m]) for m in live if worse[m][i] is not None]
        keys.append(sum(present) * (6 // len(present)) if present else None)
    return keys


def _exact_ranks(pairs: list[tuple[int, int] | None]) -> list[int | None]:
    """Dense ranks (0, 1, …) of the rationals num / den (den > 0), ascending; equal values
    share a rank, so ranks compare exactly as the values do. Sorted by the float num / den:
    Python divides integers with correct rounding, so the floats never order two values
    the wrong way round; only values whose floats coincide are compared exactly (as
    Fractions, where they are not all equal)."""
    present = sorted((p[0] / p[1], i) for i, p in enumerate(pairs) if p is not None)
    ranks: list[int | None] = [None] * len(pairs)
    rank, j = -1, 0
    while j < len(present):
        k = j + 1
        while k < len(present) and present[k][0] == present[j][0]:
            k += 1
        run = [i for _f, i in present[j:k]]
        a, b = pairs[run[0]]
        if all(pairs[i][0] * b == a * pairs[i][1] for i in run):  # the usual case: one value
            rank += 1
            for i in run:
                ranks[i] = rank
        else:
            last = None
            for v, i in sorted((Fraction(*pairs[i]), i) for i in run):
                if v != last:
                    rank, last = rank + 1, v
                ranks[i] = rank
        j = k
    return ranks
