"""KPI API (thin): facts, weekly scorecards, rankings, flags, penalties.

Operators (platform_operator, arbitrator) see every merchant; a merchant
principal sees only its own figures and its own rank."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from kpi.domain.statistics import PERIOD
from kpi.domain.staffing import Capacities
from kpi.figures import published_statistics, staffing_for, billing, figures_for_week, penalties, service_express
from kpi.export import scorecards_csv
from kpi.handlers import close_period, requalify
from kpi.models import Disqualification
from kpi.models import OrderFact
from shared.auth import Principal, require_principal
from shared.errors import ApiError
from shared.runtime import Runtime, get_runtime

router = APIRouter(prefix="/v1", tags=["kpi"])
reader = require_principal("platform_operator", "arbitrator", "merchant_main", "merchant_staff")
operator = require_principal("platform_operator")


@router.get("/facts/service-orders/{order_id}", summary="The KPI facts recorded for one service order")
async def order_fact(order_id: str, rt: Runtime = Depends(get_runtime)) -> dict:
    async with rt.sessions() as s:
        fact = await s.get(OrderFact, order_id)
    if fact is None:
        raise ApiError(404, "fact_not_found", f"no facts for service order {order_id}")
    return {
        "order_id": fact.order_id,
        "merchant_id": fact.merchant_id,
        "category": fact.category,
        "sku": fact.sku,
        "service_type": fact.service_type,
        "problem_type": fact.problem_type,
        "amount_paid": str(fact.amount_paid),
        "created_at": fact.created_at.isoformat(),
    }


def _monday(week: date) -> date:
    if week.weekday() != 0:
        raise ApiError(422, "invalid_week", f"week must be a Monday (Beijing date), got {week.isoformat()}")
    return week


def _visible(p: Principal, merchant_id: str | None) -> str | None:
    if p.is_merchant:
        if merchant_id is not None and merchant_id != p.merchant_id:
            raise ApiError(403, "forbidden", "a merchant sees only its own figures")
        return p.merchant_id
    return merchant_id


@router.get("/scorecards/weekly", summary="POP weekly scorecards (F1–F4, score, rank) for one week")
async def weekly(week: date = Query(description="the Monday of the week (Beijing)"),
                 merchant_id: str | None = None, rt: Runtime = Depends(get_runtime),
                 p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, merchant_id)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    cards = [c for c in fig["scorecards"] if only is None or c["merchant_id"] == only]
    return {"week": wk.isoformat(), "empty_denominator": "indicator null, weight redistributed over the others",
            "scorecards": cards}


@router.get("/scorecards/weekly.csv", summary="CSV export of the weekly scorecards (empty value = not applicable)")
async def weekly_csv(week: date, merchant_id: str | None = None, rt: Runtime = Depends(get_runtime),
                     p: Principal = Depends(reader)) -> Response:
    body = await weekly(week, merchant_id, rt, p)
    return Response(scorecards_csv(body["scorecards"]), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="scorecards-{body["week"]}.csv"'})


@router.get("/rankings/weekly", summary="Weekly ranking of all merchants (a merchant sees only its own rank)")
async def ranking(week: date, rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    entries = fig["ranking"]
    if p.is_merchant:
        entries = [e for e in entries if e["merchant_id"] == p.merchant_id]
    return {"week": wk.isoformat(), "ranked": fig["ranked"], "ranking": entries}


@router.get("/flags", summary="Merchants in the bottom 10 for 3 consecutive weeks")
async def list_flags(week: date, rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    async with rt.sessions() as s:
        fig = await figures_for_week(s, wk)
    items = [f for f in fig["flags"] if not p.is_merchant or f["merchant_id"] == p.merchant_id]
    return {"week": wk.isoformat(), "flags": items}


@router.get("/penalties", summary="Penalties ledger lines (each with its orders)")
async def list_penalties(merchant_id: str | None = None, week: date | None = None,
                         rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    only = _visible(p, merchant_id)
    async with rt.sessions() as s:
        lines = await penalties(s, only)
    if week is not None:
        lines = [x for x in lines if x["week"] == _monday(week).isoformat()]
    return {"lines": lines}


def _num(v):
    return None if v is None else str(v)


@router.get("/service-express/scores", summary="Service-express after-sales and consultation scores for a period")
async def se_scores(week: date, manufacturer_id: str | None = None, rt: Runtime = Depends(get_runtime),
                    p: Principal = Depends(reader)) -> dict:
    wk = _monday(week)
    only = _visible(p, manufacturer_id)
    async with rt.sessions() as s:
        se = await service_express(s, rt.settings.consultation_weights)
    items = [{"manufacturer_id": m, "after_sales": _num(v["after_sales"]), "consultation": _num(v["consultation"]),
              "consultation_detail": None if v["consultation_detail"] is None else
              {**v["consultation_detail"], "score": _num(v["consultation_detail"]["score"])}}
             for m, v in sorted(se.get(wk, {}).items()) if only is None or m == only]
    return {"period": wk.isoformat(), "threshold": str(rt.settings.disqualify_below), "scores": items}


@router.post("/periods/{week}/close", summary="Close a week: publish bottom-10 flags and disqualifications")
async def close(week: date, rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    return await close_period(rt, _monday(week))


class RequalifyBody(BaseModel):
    note: str = Field(min_length=1, max_length=500)


@router.post("/service-express/{manufacturer_id}/requalify", summary="An operator re-qualifies a manufacturer")
async def requalify_endpoint(manufacturer_id: str, body: RequalifyBody, rt: Runtime = Depends(get_runtime),
                             p: Principal = Depends(operator)) -> dict:
    return await requalify(rt, manufacturer_id, p.subject, body.note)


@router.get("/service-express/disqualifications", summary="Manufacturers' qualification standing")
async def disqualifications(rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.execute(select(Disqualification).order_by(Disqualification.manufacturer_id))).scalars().all()
    return {"items": [{"manufacturer_id": r.manufacturer_id, "disqualified": r.disqualified,
                       "since_period": r.since_period, "changed_at": r.changed_at.isoformat(), "note": r.note}
                      for r in rows if not p.is_merchant or r.manufacturer_id == p.merchant_id]}


@router.get("/billing", summary="Billing ledger: on-behalf service orders and consultations, per month")
async def billing_endpoint(manufacturer_id: str | None = None, month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
                           rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    only = _visible(p, manufacturer_id)
    async with rt.sessions() as s:
        lines = await billing(s, rt.settings.package_prices, rt.settings.order_fee_cny, only)
    if month is not None:
        lines = [x for x in lines if x["month"] == month]
    return {"lines": lines}


@router.get("/statistics/{period}", summary="Published platform statistics for a month (2026-11) or quarter (2026-Q4)")
async def stats(period: str, rt: Runtime = Depends(get_runtime),
                p: Principal = Depends(require_principal("platform_operator", "arbitrator"))) -> dict:
    if not PERIOD.match(period):
        raise ApiError(422, "invalid_period", "period must look like 2026-11 (month) or 2026-Q4 (quarter)")
    async with rt.sessions() as s:
        return await published_statistics(s, period)


@router.get("/staffing/{merchant_id}", summary="Staffing estimate for a merchant over a window of Beijing dates")
async def staffing_endpoint(merchant_id: str, date_from: date = Query(alias="from"), date_to: date = Query(alias="to"),
                            rt: Runtime = Depends(get_runtime), p: Principal = Depends(reader)) -> dict:
    _visible(p, merchant_id)
    if date_to < date_from:
        raise ApiError(422, "invalid_window", "'to' must not be before 'from'")
    async with rt.sessions() as s:
        return await staffing_for(s, merchant_id, date_from, date_to, Capacities())
