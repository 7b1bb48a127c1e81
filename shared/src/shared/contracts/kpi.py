"""Events published by the KPI service on ``kpi.events`` (key: merchant / manufacturer id).

``kpi.manufacturer_disqualified``: a service-express manufacturer scored under 80 in
two consecutive evaluation periods (docs/kpis.md). Routing stops sending it
consultations (reason ``disqualified``); orders puts its new service orders in
``platform`` mode. ``kpi.manufacturer_requalified`` lifts it (an operator's decision).
``kpi.merchant_flagged``: a merchant was in the weekly bottom 10 three weeks running,
for quality control."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from msgspec import Meta

from shared.events import Contract, registry
from shared.topics import KPI_EVENTS

AwareTime = Annotated[datetime, Meta(tz=True)]


@registry.register("kpi.manufacturer_disqualified", topic=KPI_EVENTS, version=1)
class ManufacturerDisqualified(Contract, kw_only=True):
    """A service-express manufacturer scored under the threshold two periods running."""

    manufacturer_id: str
    periods: list[date]  # the Mondays of the consecutive evaluation periods (weeks) under the threshold
    scores: dict[str, dict[str, str | None]]  # period → {"after_sales": "72.50", "consultation": None}
    threshold: str  # "80"
    disqualified_at: AwareTime


@registry.register("kpi.manufacturer_requalified", topic=KPI_EVENTS, version=1)
class ManufacturerRequalified(Contract, kw_only=True):
    """An operator lifted a manufacturer's disqualification."""

    manufacturer_id: str
    operator_id: str
    note: str
    requalified_at: AwareTime


@registry.register("kpi.merchant_flagged", topic=KPI_EVENTS, version=1)
class MerchantFlagged(Contract, kw_only=True):
    """A merchant was in the weekly bottom 10 three weeks running (quality control)."""

    merchant_id: str
    weeks: list[date]  # the consecutive weeks in the bottom 10, the last one completes the run
    ranks: list[int]
    flagged_at: AwareTime
