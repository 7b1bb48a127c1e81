"""What one running KPI service holds besides the shared runtime (``Runtime.parts``)."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from kpi.entrypoints.metrics import FiguresCollector
from shared.runtime import Runtime


@dataclass
class KpiParts:
    paid_items: Counter  # kpi_paid_transactions_items{result}: items posted to the ingest
    figures: FiguresCollector | None = None  # the platform figures on /metrics, refreshed once started


def build(rt: Runtime) -> KpiParts:
    return KpiParts(paid_items=Counter("kpi_paid_transactions_items", "Paid-transaction items posted", ["result"],
                                       registry=rt.metrics))


def kpi_parts(rt: Runtime) -> KpiParts:
    parts = rt.parts
    if not isinstance(parts, KpiParts):
        raise TypeError(f"not a KPI service runtime: {rt.name}")
    return parts
