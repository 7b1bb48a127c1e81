"""Prometheus metrics of the platform-level KPI figures, on the service's /metrics.

A background task recomputes the figures from the counters every
``KPI_METRICS_REFRESH_S`` (default 30 s) and a collector registered on the
service's registry serves the last values (a scrape never queries the database).
Periods are relative to the service clock, Beijing time: ``week`` = current /
previous (Monday–Sunday), ``month`` = current / previous. A figure whose
denominator is empty is left out of the scrape rather than reported as 0.

  kpi_indicator_ratio{indicator,week}           platform-wide F1–F4 (met / counted, all merchants)
  kpi_weekly_score_mean{week}                   mean weekly score of the ranked merchants (0–1)
  kpi_merchants_ranked{week}
  kpi_penalties_cny{kind,week}                  late_audit, unprocessed_48h, advance_compensation
  kpi_billing_cny{item,month}                   service_order, consultation_package_1/2
  kpi_service_orders{month}, kpi_return_rate{month}, kpi_exchange_rate{month},
  kpi_complaint_rate{month}, kpi_nps{month}, kpi_satisfied_share{month}
  kpi_refund_dispute_rate, kpi_refund_completion_hours, kpi_refund_self_completion_rate
                                                composite index inputs, platform-wide, last 28 days
  kpi_platinum_merchants, kpi_index_warned_merchants
  kpi_flags_published, kpi_manufacturers_disqualified
  kpi_metrics_refresh_seconds, kpi_metrics_refreshed_timestamp_seconds
plus, updated as they happen: kpi_event_lag_seconds (histogram, event published →
figures committed), kpi_projection_batch_seconds, kpi_paid_transactions_items_total
and the consumer's processed/duplicate/parked counters.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from kpi.domain import projection as P
from kpi.domain.index import IndexPolicy, MerchantWindow, index_counts, platform_totals
from kpi.domain.penalties import penalty_totals
from kpi.domain.scorecard import INDICATORS
from kpi.handlers.figures import C, index_inputs, indicator_sums, published_statistics, weekly_score_sums
from kpi.models import Disqualification, FlagRecord

log = logging.getLogger(__name__)


class FiguresCollector:
    def __init__(self) -> None:
        self.values: dict[str, tuple[str, list[str], list[tuple[list[str], float]]]] = {}

    def collect(self):
        for name, (doc, labels, samples) in sorted(self.values.items()):
            g = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, v in samples:
                g.add_metric(label_values, v)
            yield g

    def describe(self):
        return []


def _f(v) -> float | None:
    return None if v is None else float(v)


async def compute(rt) -> dict:
    """name → (help, label names, [(label values, value)])."""
    s = rt.settings
    now = rt.clock.now()
    today = P.day_iso(P.bj_day(now))
    from datetime import date

    this_week = date.fromisoformat(P.week_key(now))
    weeks = {"current": this_week, "previous": this_week - timedelta(weeks=1)}
    this_month = today[:7]
    y, m = int(this_month[:4]), int(this_month[5:])
    months = {"current": this_month, "previous": f"{y - (m == 1)}-{(m - 2) % 12 + 1:02d}"}
    out: dict = {}

    def put(name, doc, labels, samples):
        out[name] = (doc, labels, [(lv, float(v)) for lv, v in samples if v is not None])

    async with rt.sessions() as session:
        sums = await indicator_sums(session, list(weeks.values()))
        scores = await weekly_score_sums(session, list(weeks.values()))
        ratio, means, ranked = [], [], []
        for label, wk in weeks.items():
            for ind in INDICATORS:
                num, den = sums.get((wk, ind.id), (0, 0))
                ratio.append(([ind.id, label], num / den if den else None))
            n, total = scores.get(wk, (0, Decimal(0)))
            ranked.append(([label], n))
            means.append(([label], float(total) / n if n else None))
        put("kpi_indicator_ratio", "Platform-wide scorecard indicator (met / counted, all merchants)",
            ["indicator", "week"], ratio)
        put("kpi_weekly_score_mean", "Mean weekly score of the ranked merchants (0-1)", ["week"], means)
        put("kpi_merchants_ranked", "Merchants with a weekly score", ["week"], ranked)

        pen = []
        for label, wk in weeks.items():
            rows = (await session.execute(select(C.merchant_id, C.period, C.dim, C.a, C.c).where(
                C.family == "pen", C.period == wk.isoformat()))).all()
            for kind, cents in penalty_totals(rows).items():
                pen.append(([kind, label], cents / 100))
        put("kpi_penalties_cny", "Penalties charged to merchants (CNY)", ["kind", "week"], pen)

        bill = []
        for label, mo in months.items():
            rows = (await session.execute(select(C.dim, func.sum(C.a)).where(
                C.family == "bill", C.period == mo).group_by(C.dim))).all()
            for item, n in rows:
                price = s.order_fee_cny if item == "service_order" else s.package_prices.get(
                    int(item.rsplit("_", 1)[1]), Decimal(0))
                bill.append(([item, label], float(price * int(n))))
        put("kpi_billing_cny", "Billed to manufacturers for service on their behalf (CNY)", ["item", "month"], bill)

        stats = {label: await published_statistics(session, mo) for label, mo in months.items()}
        for name, key, doc in (("kpi_service_orders", "service_orders", "Service orders created"),
                               ("kpi_return_rate", "return_rate", "Returns / paid transactions"),
                               ("kpi_exchange_rate", "exchange_rate", "Exchanges / paid transactions"),
                               ("kpi_complaint_rate", "complaint_rate", "Arbitration requests / service orders"),
                               ("kpi_nps", "nps", "Net promoter score (-100..100)"),
                               ("kpi_satisfied_share", "satisfied_share", "Ratings of 4-5 stars / ratings")):
            put(name, doc, ["month"], [([label], _f(st[key])) for label, st in stats.items()])

        # each merchant's totals only: the counts below do not look at the refund paths
        merchants = await index_inputs(session, date.fromisoformat(today), s.category_parents, by_path=False)
        flags = await session.scalar(select(func.count()).select_from(FlagRecord))
        disq = await session.scalar(select(func.count()).select_from(Disqualification).where(
            Disqualification.disqualified.is_(True)))
    policy = IndexPolicy(platinum_min_peers=s.platinum_min_peers)
    # Counts, not the index of every merchant (composite_index with its display values
    # took ~3 s at 10,000 merchants, the interpreter lock mostly held, and the event
    # consumer sharing it fell behind); a few hundredths of a second, still off the loop.
    counts, totals = await asyncio.to_thread(_index_figures, merchants, policy)
    put("kpi_refund_dispute_rate", "Refunds with platform intervention / paid transactions, last 28 days", [],
        [([], _f(totals["dispute_rate"]))])
    put("kpi_refund_completion_hours", "Mean hours from application to refund done or closed, last 28 days", [],
        [([], _f(totals["completion_hours"]))])
    put("kpi_refund_self_completion_rate", "Refunds completed by the merchant itself / completed, last 28 days", [],
        [([], _f(totals["self_completion_rate"]))])
    put("kpi_platinum_merchants", "Merchants with the platinum after-sales label (last 28 days)", [],
        [([], counts["platinum"])])
    put("kpi_index_warned_merchants",
        "Merchants leading fewer than 30% of their peers on an indicator (not at the category's best value)", [],
        [([], counts["warned"])])
    put("kpi_flags_published", "Bottom-10 flags published to quality control", [], [([], flags or 0)])
    put("kpi_manufacturers_disqualified", "Service-express manufacturers currently disqualified", [],
        [([], disq or 0)])
    return out


def _index_figures(merchants: dict[str, MerchantWindow], policy: IndexPolicy) -> tuple[dict, dict]:
    return index_counts(merchants, policy), platform_totals(merchants)


async def refresh(rt, collector: FiguresCollector) -> None:
    """Recompute the figures once and publish them to the collector."""
    started = time.perf_counter()
    values = await compute(rt)
    values["kpi_metrics_refresh_seconds"] = ("Time to recompute the platform figures", [],
                                             [([], time.perf_counter() - started)])
    values["kpi_metrics_refreshed_timestamp_seconds"] = ("When the platform figures were recomputed", [],
                                                         [([], rt.clock.now().timestamp())])
    collector.values = values


async def refresher(rt, collector: FiguresCollector) -> None:
    while True:
        try:
            await refresh(rt, collector)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep the last values, try again later
            log.exception("platform figures for /metrics could not be recomputed")
        await asyncio.sleep(rt.settings.metrics_refresh_s)


def install(rt) -> FiguresCollector:
    collector = FiguresCollector()
    rt.metrics.register(collector)
    rt.spawn(refresher(rt, collector), "metrics-refresher")
    return collector
