"""Figures computed on demand from the fact tables (a pure function of the facts,
so incremental and replayed projections give identical results)."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kpi.domain.billing import BilledConsultation, OnBehalfOrder, billing_lines
from kpi.domain.penalties import penalty_lines
from kpi.domain.service_express import Decision, Transfer, after_sales_score, consultation_scores
from kpi.domain.scorecard import flags, rank, weekly_scorecards
from kpi.facts import load_timelines
from kpi.domain.staffing import Capacities, staffing
from kpi.domain.statistics import StatOrder, statistics
from kpi.models import ConsultationFact, OrderFact, OrderMilestone

FLAG_WEEKS = 3


async def figures_for_week(session: AsyncSession, week: date) -> dict:
    weeks = weekly_scorecards(await load_timelines(session))
    cards = weeks.get(week, {})
    ranking = rank(cards)
    window = {w: weeks.get(w, {}) for w in (week - timedelta(weeks=k) for k in range(FLAG_WEEKS))}
    return {
        "scorecards": [cards[m].as_dict() | {"rank": next((e.rank for e in ranking if e.merchant_id == m), None)}
                       for m in sorted(cards)],
        "ranked": len(ranking),
        "ranking": [{"merchant_id": e.merchant_id, "score": str(e.score), "rank": e.rank, "bottom10": e.bottom10}
                    for e in ranking],
        "flags": [f for f in flags(window, FLAG_WEEKS) if f["week"] == week.isoformat()],
    }


async def penalties(session: AsyncSession, merchant_id: str | None = None) -> list[dict]:
    return penalty_lines(await load_timelines(session, merchant_id))


async def all_weeks(session: AsyncSession):
    return weekly_scorecards(await load_timelines(session))


async def service_express(session: AsyncSession, weights) -> dict:
    """period → manufacturer → {"after_sales": Decimal|None, "consultation": Decimal|None, "detail": {...}}"""
    rows = (await session.execute(select(ConsultationFact).where(ConsultationFact.kind.in_(("decided", "transferred")))
                                  )).scalars().all()
    decisions = [Decision(r.manufacturer_id, r.at, r.target or "", r.reason or "") for r in rows if r.kind == "decided"]
    transfers = [Transfer(r.manufacturer_id, r.at) for r in rows if r.kind == "transferred"]
    cons = consultation_scores(decisions, transfers, weights)
    manufacturers = {r.manufacturer_id for r in rows}
    weeks = await all_weeks(session)
    out: dict = {}
    for wk in set(weeks) | set(cons):
        for m in manufacturers:
            card = weeks.get(wk, {}).get(m)
            c = cons.get(wk, {}).get(m)
            if card is None and c is None:
                continue
            out.setdefault(wk, {})[m] = {
                "after_sales": after_sales_score(card.score if card else None),
                "consultation": c["score"] if c else None,
                "consultation_detail": c}
    return out


async def billing(session: AsyncSession, prices, order_fee, manufacturer_id: str | None = None) -> list[dict]:
    oq = select(OrderFact.order_id, OrderFact.merchant_id, OrderFact.created_at).where(OrderFact.on_behalf.is_(True))
    cq = select(ConsultationFact).where(ConsultationFact.kind == "billable")
    if manufacturer_id is not None:
        oq = oq.where(OrderFact.merchant_id == manufacturer_id)
        cq = cq.where(ConsultationFact.manufacturer_id == manufacturer_id)
    orders = [OnBehalfOrder(*r) for r in (await session.execute(oq)).all()]
    cons = [BilledConsultation(r.fact_id.split(":", 1)[1], r.manufacturer_id, r.package, r.at)
            for r in (await session.execute(cq)).scalars()]
    return billing_lines(orders, cons, prices, order_fee)


async def published_statistics(session: AsyncSession, period: str) -> dict:
    facts = {r.order_id: r for r in (await session.execute(select(OrderFact))).scalars()}
    ms: dict[str, dict] = {}
    rows = await session.execute(select(OrderMilestone).where(
        OrderMilestone.kind.in_(("rated", "recommended", "arbitration"))))
    for r in rows.scalars():
        ms.setdefault(r.order_id, {})[r.kind] = r
    orders = []
    for oid, f in facts.items():
        m = ms.get(oid, {})
        rated, rec, arb = m.get("rated"), m.get("recommended"), m.get("arbitration")
        orders.append(StatOrder(f.created_at, f.problem_type, f.sku, rated and rated.at, rated and rated.value,
                                rec and rec.at, rec and rec.value, arb and arb.at))
    return statistics(orders, period)


async def staffing_for(session: AsyncSession, merchant_id: str, start, end, cap: Capacities) -> dict:
    cons = (await session.execute(select(ConsultationFact.at).where(
        ConsultationFact.manufacturer_id == merchant_id, ConsultationFact.kind == "decided",
        ConsultationFact.target == "manufacturer"))).scalars().all()
    ms = (await session.execute(select(OrderMilestone.kind, OrderMilestone.at, OrderMilestone.amount)
                                .join(OrderFact, OrderFact.order_id == OrderMilestone.order_id)
                                .where(OrderFact.merchant_id == merchant_id,
                                       OrderMilestone.kind.in_(("audited", "processed"))))).all()
    audits = [at for kind, at, _ in ms if kind == "audited"]
    refunds = [at for kind, at, amount in ms if kind == "processed" and amount is not None]
    return {"merchant_id": merchant_id, **staffing(list(cons), audits, refunds, start, end, cap)}
