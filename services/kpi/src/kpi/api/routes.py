"""KPI API (thin): facts, weekly scorecards, rankings, flags, penalties,
service-express scores, billing, composite index, statistics, staffing, CSV
exports, and the paid-transactions ingest.

Operators (platform_operator, arbitrator) see every merchant; a merchant
principal sees only its own figures and its own rank (and, for the composite
index, its category's aggregates: industry average and platinum benchmark).

Every query and path parameter is bounded by FastAPI before a handler runs (see
"Parameter bounds" below): a value out of range is a 422 ``validation_error``."""
from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from kpi.api import schemas as S
from kpi.domain import projection as P
from kpi.domain.index import IndexPolicy
from kpi.domain.staffing import Capacities
from kpi.api.export import index_csv, scorecards_csv
from kpi.handlers.figures import billing, composite, figures_for_week, penalties, published_statistics, service_express, \
    staffing_for
from kpi.handlers.periods import close_period, requalify
from kpi.models import Disqualification, OrderFact, PaidTransactions
from kpi.parts import kpi_parts
from shared.auth import Policy, Principal
from shared.errors import ApiError
from shared.runtime import Runtime, get_runtime

router = APIRouter(prefix="/v1", tags=["kpi"])
reader = Policy("platform_operator", "arbitrator", "merchant_main", "merchant_staff",
                scope="a merchant reads only its own figures (and its category's aggregates)")
operator = Policy("platform_operator")
platform = Policy("platform_operator", "arbitrator")

# ---------------------------------------------------------------- parameter bounds
# Every date the API takes lies in FIRST_DAY..LAST_DAY: far wider than any business
# need, and narrow enough that the figures' date arithmetic (weeks back for the flags,
# the 28-day window, the day after a window, the month after a month) never leaves
# Python's date range. FastAPI checks these (and the id and period formats) before
# the handler runs, so a bad value is a 422 validation_error, never a 500.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
YEAR = r"(?:20\d\d|2100)"  # the years of FIRST_DAY..LAST_DAY
MONTH_PATTERN = rf"^{YEAR}-(?:0[1-9]|1[0-2])$"
PERIOD_PATTERN = rf"^{YEAR}-(?:0[1-9]|1[0-2]|Q[1-4])$"
ID_MAX = 200  # merchant / manufacturer ids, categories: what the projection stores (models.ID)
ORDER_ID_MAX = 64  # order_facts.order_id
# no control characters: PostgreSQL refuses NUL in text (a 500), and none is ever in an id
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
MAX_WINDOW_DAYS = 366  # from/to windows (staffing, paid transactions)


def day_query(description: str, **kw):
    return Query(ge=FIRST_DAY, le=LAST_DAY, description=f"{description}; {FIRST_DAY}..{LAST_DAY}", **kw)


class CsvResponse(Response):
    """A CSV export: documented as ``text/csv`` (a string) in the OpenAPI document."""

    media_type = "text/csv"


def id_query(description: str | None = None):
    return Query(None, min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description=description)


def id_path(description: str | None = None, max_length: int = ID_MAX):
    return Path(min_length=1, max_length=max_length, pattern=ID_PATTERN, description=description)


def _window(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ApiError(422, "invalid_window", "'to' must not be before 'from'")
    if (date_to - date_from).days + 1 > MAX_WINDOW_DAYS:
        raise ApiError(422, "window_too_long", f"at most {MAX_WINDOW_DAYS} days per request")


@router.get("/facts/service-orders/{order_id}", response_model=S.OrderFactOut,
            summary="The KPI facts recorded for one service order")
async def order_fact(order_id: str = id_path("service order id", ORDER_ID_MAX), rt: Runtime = Depends(get_runtime),
                     p: Principal = Depends(reader)) -> dict:
    async with rt.sessions() as s:
        fact = await s.get(OrderFact, order_id)
    only = _visible(p, None)
    if fact is None or fact.merchant_id is None or (only is not None and fact.merchant_id != only):
        raise ApiError(404, "fact_not_found", f"no facts for service order {order_id}")
    out = {}
    for c in P.FIELDS:
        v = getattr(fact, c)
        if c.endswith("_cents"):
            out[c[:-6] if c != "amount_cents" else "amount_paid"] = P.money(v)
        else:
            out[c] = v.isoformat() if isinstance(v, datetime) else v
    return out


def _monday(week: date) -> date:
    if week.weekday() != 0:
        raise ApiError(422, "invalid_week", f"week must be a Monday (Beijing date), got {week.isoformat()}")
    return week


def _visible(p: Principal, merchant_id: str | None) -> str | None:
    """The one merchant whose rows the caller may read (None: every merchant). A merchant
    principal reads only its own: asking for another is a 403. Every reader endpoint
    filters through this, so isolation is decided in one place."""
    if p.is_merchant:
        if not p.merchant_id:  # fail closed (the policy already refuses such tokens)
            raise ApiError(401, "unauthorized", "the token names no merchant")
        if merchant_id is not None and merchant_id != p.merchant_id:
            raise ApiError(403, "forbidden", "a merchant sees only its own figures")
        return p.merchant_id
    return merchant_id


def _today(rt: Runtime) -> date:
    return date.fromisoformat(P.day_key(rt.clock.now()))


@router.get("/scorecards/weekly", response_model=S.WeeklyScorecards,
            summary="POP weekly scorecards (F1–F4, score, rank) for one week")
async def weekly(week: date = day_query("the Monday of the week (Beijing)"),
                 merchant_id: str | None = id_query(), rt: Runtime = Depends(get_runtime),
                 p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, merchant_id)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    cards = [c for c in fig["scorecards"] if only is None or c["merchant_id"] == only]
    return {"week": wk.isoformat(), "empty_denominator": "indicator null, weight redistributed over the others",
            "scorecards": cards}


@router.get("/scorecards/weekly.csv", response_class=CsvResponse,
            summary="CSV export of the weekly scorecards (empty value = not applicable)")
async def weekly_csv(week: date = day_query("the Monday of the week (Beijing)"),
                     merchant_id: str | None = id_query(), rt: Runtime = Depends(get_runtime),
                     p: Principal = Depends(reader)) -> Response:
    body = await weekly(week, merchant_id, rt, p)
    return CsvResponse(scorecards_csv(body["scorecards"]),
                       headers={"content-disposition": f'attachment; filename="scorecards-{body["week"]}.csv"'})


@router.get("/rankings/weekly", response_model=S.WeeklyRanking,
            summary="Weekly ranking of all merchants (a merchant sees only its own rank)")
async def ranking(week: date = day_query("the Monday of the week (Beijing)"), rt: Runtime = Depends(get_runtime),
                  p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, None)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    entries = [e for e in fig["ranking"] if only is None or e["merchant_id"] == only]
    return {"week": wk.isoformat(), "ranked": fig["ranked"], "ranking": entries}


@router.get("/flags", response_model=S.Flags, summary="Merchants in the bottom 10 for 3 consecutive weeks")
async def list_flags(week: date = day_query("the Monday of the week (Beijing)"), rt: Runtime = Depends(get_runtime),
                     p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, None)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    items = [f for f in fig["flags"] if only is None or f["merchant_id"] == only]
    return {"week": wk.isoformat(), "flags": items}


@router.get("/penalties", response_model=S.Penalties, summary="Penalties ledger lines (each with its orders)")
async def list_penalties(merchant_id: str | None = id_query(),
                         week: date | None = day_query("the Monday of the week (Beijing)", default=None),
                         rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    only = _visible(p, merchant_id)
    wk = _monday(week) if week is not None else None
    async with rt.sessions() as s:
        lines = await penalties(s, only, wk)
    return {"lines": lines}


def _num(v):
    return None if v is None else str(v)


@router.get("/service-express/scores", response_model=S.ServiceExpressScores,
            summary="Service-express after-sales and consultation scores for a period")
async def se_scores(week: date = day_query("the Monday of the period (Beijing)"),
                    manufacturer_id: str | None = id_query(), rt: Runtime = Depends(get_runtime),
                    p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, manufacturer_id)
    async with rt.sessions() as s:
        se = await service_express(s, rt.settings.consultation_weights, [wk], only)
    items = [{"manufacturer_id": m, "after_sales": _num(v["after_sales"]), "consultation": _num(v["consultation"]),
              "consultation_detail": None if v["consultation_detail"] is None else
              {**v["consultation_detail"], "score": _num(v["consultation_detail"]["score"])}}
             for m, v in sorted(se.get(wk, {}).items()) if only is None or m == only]
    return {"period": wk.isoformat(), "threshold": str(rt.settings.disqualify_below), "scores": items}


@router.post("/periods/{week}/close", response_model=S.PeriodClosed,
             summary="Close a week: publish bottom-10 flags and disqualifications")
async def close(week: date = Path(ge=FIRST_DAY, le=LAST_DAY,
                                  description=f"the Monday of the week (Beijing); {FIRST_DAY}..{LAST_DAY}"),
                rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    return await close_period(rt, _monday(week))


class RequalifyBody(BaseModel):
    note: str = Field(min_length=1, max_length=500)


@router.post("/service-express/{manufacturer_id}/requalify", response_model=S.Requalified,
             summary="An operator re-qualifies a manufacturer")
async def requalify_endpoint(body: RequalifyBody, manufacturer_id: str = id_path(), rt: Runtime = Depends(get_runtime),
                             p: Principal = Depends(operator)) -> dict:
    return await requalify(rt, manufacturer_id, p.subject, body.note)


@router.get("/service-express/disqualifications", response_model=S.Disqualifications,
            summary="Manufacturers' qualification standing")
async def disqualifications(rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    only = _visible(p, None)
    q = select(Disqualification).order_by(Disqualification.manufacturer_id)
    if only is not None:
        q = q.where(Disqualification.manufacturer_id == only)
    async with rt.sessions() as s:
        rows = (await s.execute(q)).scalars().all()
    return {"items": [{"manufacturer_id": r.manufacturer_id, "disqualified": r.disqualified,
                       "since_period": r.since_period, "changed_at": r.changed_at.isoformat(), "note": r.note}
                      for r in rows]}


@router.get("/billing", response_model=S.Billing,
            summary="Billing ledger: on-behalf service orders and consultations, per month")
async def billing_endpoint(manufacturer_id: str | None = id_query(),
                           month: str | None = Query(None, pattern=MONTH_PATTERN, description="Beijing month, 2026-11"),
                           rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    only = _visible(p, manufacturer_id)
    async with rt.sessions() as s:
        lines = await billing(s, rt.settings.package_prices, rt.settings.order_fee_cny, only, month)
    return {"lines": lines}


@router.get("/statistics/{period}", response_model=S.Statistics,
            summary="Published platform statistics for a month (2026-11) or quarter (2026-Q4)")
async def stats(period: str = Path(pattern=PERIOD_PATTERN, description="a month (2026-11) or quarter (2026-Q4)"),
                top: int = Query(5, ge=1, le=50), rt: Runtime = Depends(get_runtime),
                p: Principal = Depends(platform)) -> dict:
    async with rt.sessions() as s:
        return await published_statistics(s, period, top)


@router.get("/staffing/{merchant_id}", response_model=S.Staffing,
            summary="Staffing estimate for a merchant over a window of Beijing dates")
async def staffing_endpoint(merchant_id: str = id_path(), date_from: date = day_query("first Beijing day", alias="from"),
                            date_to: date = day_query("last Beijing day", alias="to"),
                            rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    _visible(p, merchant_id)
    _window(date_from, date_to)
    async with rt.sessions() as s:
        return await staffing_for(s, merchant_id, date_from, date_to, Capacities())


# ---------------------------------------------------------------- composite index (§5.3)

INDEX_METHOD = {
    "window_days": 28,
    "weights": "1:1:1",
    "platinum_benchmark": "best-decile value of the category's merchants: values sorted best first, the one at "
                          "rank ceil(10% x n); only with at least platinum_min_peers merchants having a value",
    "industry_average": "pooled over the category's merchants (sum of numerators / sum of denominators)",
    "lead_pct": "share of the other merchants of the category (with a value) strictly worse; warning under 30%, "
                "except at the category's best value (no peer strictly better)",
    "category": "the category most of the merchant's catalogue SKUs carry, else most of its service orders, "
                "mapped to its top-level category",
    "self_completion_rate": "cases whose outcome the merchant itself carried out / completed cases (not: orders "
                            "the platform serves, arbitration, platform or timer refunds, timeout closes, "
                            "abandonment)",
    "index_score": "1:1:1 mean of the three leads",
    "platinum": "all three indicators at least as good as the category's platinum benchmark",
}


async def _index(rt: Runtime, p: Principal, on: date | None, merchant_id: str | None, category: str | None) -> dict:
    only = _visible(p, merchant_id)
    end = on or _today(rt)
    policy = IndexPolicy(platinum_min_peers=rt.settings.platinum_min_peers)
    async with rt.sessions() as s:
        body = await composite(s, end, rt.settings.category_parents, policy)
    merchants = [m for m in body["merchants"] if (only is None or m["merchant_id"] == only)
                 and (category is None or m["category"] == category)]
    cats = {m["category"] for m in merchants} if (only is not None or category is not None) else None
    categories = [c for c in body["categories"] if cats is None or c["category"] in cats]
    if only is not None and not merchants:
        raise ApiError(404, "no_index", f"no refunds nor paid transactions for {only} in the window")
    return {"date": end.isoformat(), "window": body["window"], "method": {
        **INDEX_METHOD, "platinum_min_peers": rt.settings.platinum_min_peers}, "categories": categories,
        "merchants": merchants}


@router.get("/composite-index", response_model=S.CompositeIndex,
            summary="Composite after-sales index (rolling 28 days): merchants and categories")
async def composite_index(on: date | None = day_query("last Beijing day of the window (default: today)",
                                                      default=None, alias="date"),
                          merchant_id: str | None = id_query(), category: str | None = id_query(),
                          rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    return await _index(rt, p, on, merchant_id, category)


@router.get("/composite-index.csv", response_class=CsvResponse,
            summary="CSV export of the composite index (one row per merchant)")
async def composite_index_csv(on: date | None = day_query("last Beijing day of the window (default: today)",
                                                          default=None, alias="date"),
                              merchant_id: str | None = id_query(), category: str | None = id_query(),
                              rt: Runtime = Depends(get_runtime),
                              p: Principal = Depends(reader)) -> Response:
    body = await _index(rt, p, on, merchant_id, category)
    return CsvResponse(index_csv(body["merchants"]),
                       headers={"content-disposition": f'attachment; filename="composite-index-{body["date"]}.csv"'})


# ---------------------------------------------------------------- paid transactions ingest

Day = date  # (a field below is called "date")


class PaidItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # no surrounding spaces, no control characters
    merchant_id: str = Field(min_length=1, max_length=ID_MAX,
                             pattern=r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$")
    date: Day = Field(ge=FIRST_DAY, le=LAST_DAY, description="Beijing calendar day (and not after today)")
    count: StrictInt = Field(ge=0, le=10**12, description="paid transactions of the merchant that day")


class PaidBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[PaidItem] = Field(min_length=1)


@router.post("/paid-transactions", response_model=S.PaidIngested,
             summary="Ingest paid-transaction counts per merchant and Beijing day "
                     "(idempotent upsert; the marketplace's order system)")
async def ingest_paid(body: PaidBatch, rt: Runtime = Depends(get_runtime),
                      p: Principal = Depends(operator)) -> dict:
    """Each item sets the count of paid transactions of one merchant on one Beijing
    day (replacing what was posted before): posting the same batch again changes
    nothing. The denominator of the refund dispute rate (§5.3) and of the
    published return/exchange rates (§5.4)."""
    limit = rt.settings.paid_transactions_max_items
    if len(body.items) > limit:
        raise ApiError(413, "too_many_items", f"at most {limit} items per request, got {len(body.items)}")
    today = _today(rt)
    wanted: dict[tuple[str, date], int] = {}
    conflicts, future = [], []
    for i, it in enumerate(body.items):
        if it.date > today:
            future.append({"index": i, "merchant_id": it.merchant_id, "date": it.date.isoformat()})
        key = (it.merchant_id, it.date)
        if key in wanted and wanted[key] != it.count:
            conflicts.append({"index": i, "merchant_id": it.merchant_id, "date": it.date.isoformat()})
        wanted[key] = it.count
    if future:
        raise ApiError(422, "future_date", f"counts can be posted up to today ({today.isoformat()}, Beijing)",
                       future[:100])
    if conflicts:
        raise ApiError(422, "conflicting_items", "the same merchant and day appear with different counts",
                       conflicts[:100])
    now = rt.clock.now()
    t = PaidTransactions.__table__
    async with rt.uow() as s:
        existing: dict[tuple[str, date], int] = {}
        keys = sorted(wanted)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = await s.execute(select(t.c.merchant_id, t.c.day, t.c.count).where(
                t.c.merchant_id.in_({k[0] for k in chunk}), t.c.day.in_({k[1] for k in chunk})))
            existing.update({(m, d): n for m, d, n in rows.all() if (m, d) in wanted})
        changed = [{"merchant_id": m, "day": d, "count": n, "updated_at": now}
                   for (m, d), n in sorted(wanted.items()) if existing.get((m, d)) != n]
        if changed:
            ins = (postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert)(t)
            stmt = ins.on_conflict_do_update(index_elements=["merchant_id", "day"],
                                             set_={"count": ins.excluded.count, "updated_at": ins.excluded.updated_at})
            for i in range(0, len(changed), 500):
                await s.execute(stmt, changed[i:i + 500])
    inserted = sum(1 for c in changed if (c["merchant_id"], c["day"]) not in existing)
    result = {"received": len(body.items), "inserted": inserted, "updated": len(changed) - inserted,
              "unchanged": len(wanted) - len(changed)}
    counter = kpi_parts(rt).paid_items
    for k in ("inserted", "updated", "unchanged"):
        counter.labels(k).inc(result[k])
    return result


@router.get("/paid-transactions", response_model=S.PaidTransactionsOut,
            summary="Paid-transaction counts per merchant and day")
async def list_paid(merchant_id: str | None = id_query(), date_from: date = day_query("first Beijing day", alias="from"),
                    date_to: date = day_query("last Beijing day", alias="to"), rt: Runtime = Depends(get_runtime),
                    p: Principal = Depends(reader)) -> dict:
    only = _visible(p, merchant_id)
    _window(date_from, date_to)
    t = PaidTransactions.__table__
    q = select(t.c.merchant_id, t.c.day, t.c.count).where(t.c.day >= date_from, t.c.day <= date_to)
    if only is not None:
        q = q.where(t.c.merchant_id == only)
    async with rt.sessions() as s:
        rows = (await s.execute(q.order_by(t.c.merchant_id, t.c.day))).all()
    return {"items": [{"merchant_id": m, "date": d.isoformat(), "count": n} for m, d, n in rows],
            "total": sum(n for _, _, n in rows)}
