"""Response models of the KPI API: what each route returns, for the OpenAPI document
(and the clients and schemathesis that check answers against it).

The handlers build plain dicts (``kpi.handlers.figures``, ``kpi.domain.*``); FastAPI validates
them against these models and serializes the result. The models only describe those
dicts, so they must not change a byte of the answer:

- every key the handler always writes is a required field, ``X | None`` where it can be
  ``null``; a key written only sometimes is a separate model (the penalties' late-audit
  line), never a default that would add a ``null``;
- dates and times stay the strings the handlers write (``format`` in the schema): a
  pydantic ``datetime`` would re-render ``+00:00`` as ``Z``;
- money and rates are decimal strings with the number of places the domain quantizes to
  (the patterns below);
- ``extra="forbid"``: a key a handler adds without its model is a failed response (and a
  failed test), never silently dropped from the answer.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _places(n: int, what: str) -> object:
    """A decimal string with exactly ``n`` places (``Decimal.quantize`` output)."""
    return Field(pattern=rf"^-?\d+\.\d{{{n}}}$", description=what)


DateStr = Annotated[str, Field(json_schema_extra={"format": "date"}, description="ISO date (a Beijing day)")]
DateTimeStr = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO time, UTC offset")]
Money = Annotated[str, _places(2, "CNY amount, 2 decimals")]
Rate4 = Annotated[str, _places(4, "ratio 0–1, 4 decimals")]
Score2 = Annotated[str, _places(2, "score 0–100, 2 decimals")]
Pct2 = Annotated[str, _places(2, "percent 0–100, 2 decimals")]
DecimalStr = Annotated[str, Field(pattern=r"^-?\d+(?:\.\d+)?$", description="decimal number (a setting)")]
MonthStr = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", description="Beijing month, YYYY-MM")]


# ---------------------------------------------------------------- facts

class OrderFactOut(Out):
    """One ``order_facts`` row (``kpi.domain.projection.FIELDS``): ``*_cents`` columns as money
    (``amount_cents`` → ``amount_paid``, ``refund_cents`` → ``refund``, ...), times as ISO
    strings, ``null`` where the milestone has not happened."""

    order_id: str
    snap_version: int | None
    merchant_id: str
    category: str | None
    sku: str | None
    service_type: str | None
    problem_type: str | None
    amount_paid: Money | None
    created_at: DateTimeStr | None
    on_behalf: bool | None
    mode: str | None = Field(description="fulfilment mode of the order (null: recorded before the mode was kept)")
    audited_at: DateTimeStr | None
    audit_action: str | None
    received_at: DateTimeStr | None
    processed_at: DateTimeStr | None
    process_action: str | None
    exchange_created_at: DateTimeStr | None
    exchange_shipped_at: DateTimeStr | None
    shipped_back_at: DateTimeStr | None
    rated_at: DateTimeStr | None
    stars: int | None
    recommend_at: DateTimeStr | None
    recommend: int | None
    arbitration_at: DateTimeStr | None
    refund_at: DateTimeStr | None
    refund: Money | None
    refund_by: str | None
    closed_at: DateTimeStr | None
    closed_role: str | None
    advance_at: DateTimeStr | None
    advance: Money | None
    penalty_at: DateTimeStr | None
    penalty: Money | None


# ---------------------------------------------------------------- scorecards, ranking, flags

class IndicatorOut(Out):
    name: str
    numerator: int
    denominator: int
    value: Rate4 | None = Field(description="numerator / denominator; null: no orders (not applicable)")
    target: DecimalStr
    weight: DecimalStr
    met: bool | None
    applicable: bool


class Indicators(Out):
    F1: IndicatorOut
    F2: IndicatorOut
    F3: IndicatorOut
    F4: IndicatorOut


class ScorecardOut(Out):
    merchant_id: str
    week: DateStr
    score: Rate4 | None = Field(description="weighted score 0–1; null: no indicator applicable")
    indicators: Indicators
    rank: int | None = Field(description="null: not ranked (no score)")


class WeeklyScorecards(Out):
    week: DateStr
    empty_denominator: str
    scorecards: list[ScorecardOut]


class RankEntryOut(Out):
    merchant_id: str
    score: Rate4
    rank: int = Field(description="competition ranking: ties share a rank")
    bottom10: bool


class WeeklyRanking(Out):
    week: DateStr
    ranked: int = Field(description="merchants ranked that week (all of them, also for a merchant caller)")
    ranking: list[RankEntryOut]


class FlagOut(Out):
    merchant_id: str
    week: DateStr
    weeks: list[DateStr] = Field(description="the consecutive weeks in the bottom 10, oldest first")


class Flags(Out):
    week: DateStr
    flags: list[FlagOut]


# ---------------------------------------------------------------- penalties

class PenaltyLine(Out):
    merchant_id: str
    week: DateStr
    kind: Literal["unprocessed_48h", "advance_compensation"]
    count: int
    amount: Money
    order_ids: list[str]


class LateAuditLine(Out):
    merchant_id: str
    week: DateStr
    kind: Literal["late_audit"]
    count: int = Field(description="blocks of 10 late audits charged")
    late_orders: int
    amount: Money
    order_ids: list[str]


class Penalties(Out):
    lines: list[Annotated[Union[LateAuditLine, PenaltyLine], Field(discriminator="kind")]]


# ---------------------------------------------------------------- service express

class ConsultationComponents(Out):
    answer_rate: Rate4 | None
    availability: Rate4 | None
    transfer_back: Rate4 | None


class ConsultationDetail(Out):
    score: Score2 | None
    in_hours: int
    routed: int
    transfers: int
    components: ConsultationComponents


class ServiceExpressScore(Out):
    manufacturer_id: str
    after_sales: Score2 | None
    consultation: Score2 | None
    consultation_detail: ConsultationDetail | None


class ServiceExpressScores(Out):
    period: DateStr
    threshold: DecimalStr
    scores: list[ServiceExpressScore]


class PeriodClosed(Out):
    week: DateStr
    flagged: list[str] = Field(description="merchants flagged by this close (none when closed before)")
    disqualified: list[str] = Field(description="manufacturers disqualified by this close")


class Requalified(Out):
    manufacturer_id: str
    disqualified: bool
    note: str


class DisqualificationOut(Out):
    manufacturer_id: str
    disqualified: bool
    since_period: DateStr
    changed_at: DateTimeStr
    note: str


class Disqualifications(Out):
    items: list[DisqualificationOut]


# ---------------------------------------------------------------- billing

class BillingLine(Out):
    month: MonthStr
    manufacturer_id: str
    item: str = Field(pattern=r"^(?:service_order|consultation_package_\d+)$")
    quantity: int
    unit_price: DecimalStr
    amount: Money
    refs: list[str] = Field(description="the service order or consultation ids billed")


class Billing(Out):
    lines: list[BillingLine]


# ---------------------------------------------------------------- statistics

class StarsDistribution(Out):
    stars_1: int = Field(alias="1")
    stars_2: int = Field(alias="2")
    stars_3: int = Field(alias="3")
    stars_4: int = Field(alias="4")
    stars_5: int = Field(alias="5")


class ProblemTypeCount(Out):
    problem_type: str
    count: int
    share: Rate4 | None


class SkuCount(Out):
    sku: str
    count: int
    share: Rate4 | None


class Statistics(Out):
    period: str = Field(pattern=r"^\d{4}-(?:\d{2}|Q[1-4])$", description="the month (2026-11) or quarter (2026-Q4)")
    from_: DateStr = Field(alias="from")
    to: DateStr
    service_orders: int
    paid_transactions: int
    returns: int
    exchanges: int
    return_rate: Rate4 | None
    exchange_rate: Rate4 | None
    return_exchange_rate: Rate4 | None
    arbitrations: int
    complaint_rate: Rate4 | None
    satisfaction_distribution: StarsDistribution
    ratings: int
    satisfied_share: Rate4 | None
    nps: Annotated[str, _places(2, "NPS in percent points, -100..100")] | None
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    top_problem_types: list[ProblemTypeCount]
    top_skus: list[SkuCount]


# ---------------------------------------------------------------- staffing

class Window(Out):
    from_: DateStr = Field(alias="from")
    to: DateStr
    days: int


class Staffing(Out):
    merchant_id: str
    window: Window
    daily_consultations: Annotated[str, _places(2, "per day")]
    daily_audits: Annotated[str, _places(2, "per day")]
    monthly_refunds: Annotated[str, _places(2, "per 30 days")]
    receptionists: int
    auditors: int
    refund_staff: int


# ---------------------------------------------------------------- composite index

DisputeRate = Annotated[str, _places(6, "disputes / paid transactions, 6 decimals")]
Hours = Annotated[str, _places(2, "hours, 2 decimals")]
Metric = Literal["dispute_rate", "completion_hours", "self_completion_rate", "index"]


class IndexValues(Out):
    dispute_rate: DisputeRate | None
    completion_hours: Hours | None
    self_completion_rate: Rate4 | None


class PathView(Out):
    disputes: int
    completed: int
    dispute_rate: DisputeRate | None
    completion_hours: Hours | None
    self_completion_rate: Rate4 | None


class ByPath(Out):
    """Keys: ``kpi.domain.projection.PATHS``."""

    refund_before_shipment: PathView
    refund_without_return: PathView
    return_and_refund: PathView
    exchange: PathView


class CategoryIndex(Out):
    category: str
    merchants: int
    paid_transactions: int
    industry_average: IndexValues
    platinum_benchmark: IndexValues = Field(description="null values: fewer peers than platinum_min_peers")
    by_path: ByPath


class Leads(Out):
    dispute_rate: Pct2 | None
    completion_hours: Pct2 | None
    self_completion_rate: Pct2 | None
    index: Pct2 | None


class PlatinumMetrics(Out):
    dispute_rate: bool
    completion_hours: bool
    self_completion_rate: bool


class MerchantIndex(Out):
    merchant_id: str
    category: str
    paid_transactions: int
    disputes: int
    completed: int
    dispute_rate: DisputeRate | None
    completion_hours: Hours | None
    self_completion_rate: Rate4 | None
    lead_pct: Leads
    index_score: Pct2 | None
    warnings: list[Metric] = Field(description="leads under 30%")
    platinum_metrics: PlatinumMetrics
    platinum: bool
    by_path: ByPath


class IndexMethod(Out):
    window_days: int
    weights: str
    platinum_benchmark: str
    industry_average: str
    lead_pct: str
    category: str
    self_completion_rate: str
    index_score: str
    platinum: str
    platinum_min_peers: int


class CompositeIndex(Out):
    date: DateStr
    window: Window
    method: IndexMethod
    categories: list[CategoryIndex]
    merchants: list[MerchantIndex]


# ---------------------------------------------------------------- paid transactions

class PaidIngested(Out):
    received: int
    inserted: int
    updated: int
    unchanged: int


class PaidCount(Out):
    merchant_id: str
    date: DateStr
    count: int


class PaidTransactionsOut(Out):
    items: list[PaidCount]
    total: int
