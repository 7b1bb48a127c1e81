"""The /metrics platform figures are computed without the full figures (counts of the
composite index instead of every merchant's index, sums instead of every scorecard and
ranking, rows read in chunks): they must give exactly what the full figures give — the
lean index counts on generated inputs with ties and missing values, and the whole
refresh on a database of counters (SQLite and PostgreSQL)."""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pytest

from kpi.entrypoints import metrics
from kpi.handlers import figures
from kpi.domain import projection as P
from kpi.app import DEFINITION
from kpi.domain.index import (
    LOWER_IS_BETTER,
    METRICS,
    IndexPolicy,
    MerchantWindow,
    Sums,
    _exact_ranks,
    composite_index,
    index_counts,
    platform_totals,
    values,
)
from kpi.domain.scorecard import INDICATORS, rank
from kpi.models import Base, Counter, PaidTransactions
from kpi.settings import KpiSettings
from shared.clock import ManualClock
from shared.runtime import Runtime

END = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 4, tzinfo=timezone.utc)  # Wednesday, Beijing noon


def _reference(merchants, policy) -> dict[str, tuple[bool, list[str]]]:
    """Per merchant (platinum, warnings) by the rules as ``kpi.domain.index`` documents them,
    computed the plain way on Fractions, peer by peer: the oracle for the exact-rank
    shortcuts ``_category_flags`` takes."""
    def better(m, a, b):
        return a < b if LOWER_IS_BETTER[m] else a > b

    def lead(mine, others, m):
        if mine is None or not others:
            return None
        return Fraction(sum(1 for o in others if (better(m, mine, o) if m else mine > o)), len(others))

    by_cat: dict[str, list] = {}
    for mw in merchants.values():
        by_cat.setdefault(mw.category, []).append(mw)
    out = {}
    for group in by_cat.values():
        vals = [values(mw.total(), mw.paid) for mw in group]
        leads = [{m: lead(v[m], [w[m] for j, w in enumerate(vals) if j != i and w[m] is not None], m)
                  for m in METRICS} for i, v in enumerate(vals)]
        scores = []
        for ld in leads:
            present = [x for x in ld.values() if x is not None]
            scores.append(sum(present) / len(present) if present else None)
        bench = {}
        for m in METRICS:
            have = sorted((v[m] for v in vals if v[m] is not None), reverse=not LOWER_IS_BETTER[m])
            k = math.ceil(len(have) * policy.platinum_share)
            bench[m] = have[max(1, k) - 1] if have and len(have) >= max(1, policy.platinum_min_peers) else None
        def beaten(mine, others, m):  # some peer strictly better: a low lead is a warning
            return any((better(m, o, mine) if m else o > mine) for o in others)

        for i, mw in enumerate(group):
            plat = all(vals[i][m] is not None and bench[m] is not None and not better(m, bench[m], vals[i][m])
                       for m in METRICS)
            warnings = [m for m in METRICS if leads[i][m] is not None and leads[i][m] < policy.lead_warning
                        and beaten(vals[i][m], [w[m] for w in vals if w[m] is not None], m)]
            others = [x for j, x in enumerate(scores) if j != i and x is not None]
            idx_lead = lead(scores[i], others, None)
            if idx_lead is not None and idx_lead < policy.lead_warning and beaten(scores[i], others, None):
                warnings.append("index")
            out[mw.merchant_id] = (plat, warnings)
    return out


def _reference_counts(merchants, policy) -> dict[str, int]:
    ref = _reference(merchants, policy)
    return {"merchants": len(ref), "platinum": sum(p for p, _w in ref.values()),
            "warned": sum(1 for _p, w in ref.values() if w)}


def _merchants(rnd: random.Random, n: int, narrow: bool) -> dict[str, MerchantWindow]:
    """``narrow``: few distinct values (many ties, leads at the 30 % boundary); otherwise
    wide ranges. Paid 0 / nothing completed give the missing (None) values."""
    cats = ["phones", "apparel", "home"][:rnd.randint(1, 3)]
    out = {}
    for i in range(n):
        mw = MerchantWindow(f"m{i:03d}", paid=rnd.choice([0, rnd.randint(1, 4 if narrow else 9000)]),
                            category=rnd.choice(cats))
        for path in P.PATHS:
            if rnd.random() < 0.5:
                done = rnd.randint(0, 2 if narrow else 40)
                secs = done * rnd.choice([3600, 7200]) if narrow else rnd.randint(0, 10 ** 7)
                mw.paths[path] = Sums(rnd.randint(0, 2), done, secs, rnd.randint(0, done))
        out[mw.merchant_id] = mw
    return out


@pytest.mark.parametrize("seed", range(200))
def test_platinum_and_warnings_on_exact_ranks_are_those_of_the_rules(seed):
    """Both the full index and the /metrics counts (one code path, on integer ranks)
    against the rules computed plainly on Fractions."""
    rnd = random.Random(seed)
    merchants = _merchants(rnd, rnd.randint(0, 70), narrow=seed % 2 == 0)
    policy = IndexPolicy(platinum_min_peers=rnd.randint(1, 12),
                         platinum_share=rnd.choice([Fraction(1, 10), Fraction(1, 4)]),
                         lead_warning=rnd.choice([Fraction(3, 10), Fraction(1, 2)]))
    ref = _reference(merchants, policy)
    full = composite_index(merchants, END, policy)["merchants"]
    assert {x["merchant_id"]: (x["platinum"], x["warnings"]) for x in full} == ref
    assert index_counts(merchants, policy) == _reference_counts(merchants, policy)


def test_index_counts_single_merchants_and_empty():
    policy = IndexPolicy(platinum_min_peers=1)
    alone = {"a": MerchantWindow("a", 10, "phones", {"exchange": Sums(1, 2, 7200, 1)})}
    assert index_counts(alone, policy) == _reference_counts(alone, policy) == {"merchants": 1, "platinum": 1, "warned": 0}
    assert index_counts({}, policy) == {"merchants": 0, "platinum": 0, "warned": 0}


def test_exact_ranks_tell_apart_values_whose_floats_coincide():
    big = 3 * 10 ** 17
    pairs = [(1, 3), (big // 3 + 1, big), None, (2, 6), (big // 3 - 1, big), (0, 5), (0, 1)]
    # 1/3 ± 1/(3·10^17) are all the same float, yet different values
    assert pairs[0][0] / pairs[0][1] == pairs[1][0] / pairs[1][1] == pairs[4][0] / pairs[4][1]
    assert _exact_ranks(pairs) == [2, 3, None, 2, 1, 0, 0]
    assert _exact_ranks([]) == [] and _exact_ranks([None]) == [None]


async def _populate(rt, rnd: random.Random) -> None:
    """Counters of 60 merchants: scorecards of this and last week (ties: a few distinct
    rates), 28 days of index sums by path (some merchants perfect: platinum ties), main
    categories, paid transactions."""
    week = date.fromisoformat(P.week_key(NOW))
    counters, paid = [], []
    for i in range(60):
        m = f"m{i:02d}"
        for wk in (week, week - timedelta(weeks=1)):
            for ind in INDICATORS:
                if rnd.random() < 0.7:
                    counted = rnd.choice([1, 2, 4, 20])
                    counters.append(Counter(family="sc", period=wk.isoformat(), merchant_id=m, dim=ind.id,
                                            a=rnd.randint(0, counted), b=counted, c=0, d=0))
        best = rnd.random() < 0.3  # no disputes, 1 h, all by itself: ties at the benchmark
        for day in range(0, 30, 3):  # two days fall outside the 28-day window
            for path in P.PATHS:
                if rnd.random() < 0.3:
                    done = rnd.randint(0, 2)
                    a, c, d = (0, 3600, done) if best else (rnd.randint(0, 1), rnd.choice([3600, 36000]),
                                                          rnd.randint(0, done))
                    counters.append(Counter(family="ix", period=(END - timedelta(days=day)).isoformat(),
                                            merchant_id=m, dim=path, a=a, b=done, c=done * c, d=d))
            if rnd.random() < 0.5:
                paid.append(PaidTransactions(merchant_id=m, day=END - timedelta(days=day), count=rnd.randint(0, 30),
                                             updated_at=NOW))
        for cat in rnd.sample(["phones", "apparel", "home"], rnd.randint(0, 2)):
            counters.append(Counter(family="mcat", period="all", merchant_id=m, dim=cat, a=rnd.randint(1, 3),
                                    b=0, c=0, d=0))
    async with rt.sessions() as s, s.begin():
        s.add_all(counters + paid)


async def test_platform_figures_are_those_of_the_full_figures(database_url, monkeypatch):
    rt = Runtime(DEFINITION, KpiSettings(database_url=await database_url("kpi-metrics"), platinum_min_peers=3))
    rt.clock = ManualClock(NOW)
    try:
        async with rt.engine.begin() as c:
            await c.run_sync(Base.metadata.create_all)
        await _populate(rt, random.Random(5))
        monkeypatch.setattr(figures, "CHUNK_ROWS", 7)  # many chunks; a merchant's rows straddle them
        got = {k: dict((tuple(lv), v) for lv, v in samples) for k, (_d, _l, samples) in (await metrics.compute(rt)).items()}

        week = date.fromisoformat(P.week_key(NOW))
        policy = IndexPolicy(platinum_min_peers=3)
        async with rt.sessions() as s:
            cards = await figures.weekly_cards(s, [week, week - timedelta(weeks=1)])
            merchants = await figures.index_inputs(s, END, {})
        for label, wk in (("current", week), ("previous", week - timedelta(weeks=1))):
            ranking = rank(cards[wk])
            assert got["kpi_merchants_ranked"][(label,)] == len(ranking) > 0
            assert got["kpi_weekly_score_mean"][(label,)] == pytest.approx(
                sum(float(e.score) for e in ranking) / len(ranking), rel=1e-12)
            for ind in INDICATORS:
                num = sum(c.indicators[ind.id].numerator for c in cards[wk].values())
                den = sum(c.indicators[ind.id].denominator for c in cards[wk].values())
                assert got["kpi_indicator_ratio"][(ind.id, label)] == num / den
        full = _reference_counts(merchants, policy)
        assert full["platinum"] > 0 and full["warned"] > 0
        assert got["kpi_platinum_merchants"][()] == full["platinum"]
        assert got["kpi_index_warned_merchants"][()] == full["warned"]
        totals = platform_totals(merchants)
        assert got["kpi_refund_dispute_rate"][()] == float(totals["dispute_rate"])
        assert got["kpi_refund_completion_hours"][()] == float(totals["completion_hours"])
        assert got["kpi_refund_self_completion_rate"][()] == float(totals["self_completion_rate"])
    finally:
        await rt.engine.dispose()
