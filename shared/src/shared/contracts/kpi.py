"""Events published by the KPI service on ``kpi.events`` (key: merchant / manufacturer id).

``kpi.manufacturer_disqualified``: a service-express manufacturer scored under 80 in
two consecutive evaluation periods (SPEC §5.2). Routing stops sending it
consultations (reason ``disqualified``); orders puts its new service orders in
``platform`` mode. ``kpi.manufacturer_requalified`` lifts it (an operator's decision).
``kpi.merchant_flagged``: a merchant was in the weekly bottom 10 three weeks running
(SPEC §5.1), for quality control."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from shared.events import registry
from shared.topics import KPI_EVENTS


@registry.register("kpi.manufacturer_disqualified", topic=KPI_EVENTS, version=1)
class ManufacturerDisqualified(BaseModel):
    manufacturer_id: str
    periods: list[date]  # the Mondays of the consecutive evaluation periods (weeks) under the threshold
    scores: dict[str, dict[str, str | None]]  # period → {"after_sales": "72.50", "consultation": None}
    threshold: str  # "80"
    disqualified_at: datetime


@registry.register("kpi.manufacturer_requalified", topic=KPI_EVENTS, version=1)
class ManufacturerRequalified(BaseModel):
    manufacturer_id: str
    operator_id: str
    note: str
    requalified_at: datetime


@registry.register("kpi.merchant_flagged", topic=KPI_EVENTS, version=1)
class MerchantFlagged(BaseModel):
    merchant_id: str
    weeks: list[date]  # the consecutive weeks in the bottom 10, the last one completes the run
    ranks: list[int]
    flagged_at: datetime
