"""Figures read from the projection's tables: mostly sums of counters (a few
indexed reads of order facts list the orders behind a penalty or a bill). They are
pure functions of the facts, so incremental and replayed projections agree."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kpi.domain import projection as P
from kpi.domain.billing import BilledConsultation, OnBehalfOrder, billing_lines
from kpi.domain.index import IndexPolicy, MerchantWindow, Sums, composite_index, main_category, window
from kpi.domain.penalties import penalty_lines
from kpi.domain.scorecard import Scorecard, flags, rank, scorecards_from_counters
from kpi.domain.service_express import after_sales_score, scores_from_counters
from kpi.domain.staffing import Capacities, staffing
from kpi.domain.statistics import months_of, period_bounds, statistics
from kpi.models import ConsultationFact, Counter, OrderFact, PaidTransactions

FLAG_WEEKS = 3
CHUNK_ROWS = 500
TOTAL = "total"  # the one path of a merchant's window read without the breakdown by path
C = Counter.__table__.c
F = OrderFact.__table__.c


async def weekly_cards(session: AsyncSession, weeks: list[date] | None = None,
                       merchant_id: str | None = None) -> dict[date, dict[str, Scorecard]]:
    q = select(C.merchant_id, C.period, C.dim, C.a, C.b).where(C.family == "sc")
    if weeks is not None:
        q = q.where(C.period.in_([w.isoformat() for w in weeks]))
    if merchant_id is not None:
        q = q.where(C.merchant_id == merchant_id)
    return scorecards_from_counters((await session.execute(q)).all())


async def indicator_sums(session: AsyncSession, weeks: list[date]) -> dict[tuple[date, str], tuple[int, int]]:
    """(week, indicator) → (met, counted) over all merchants, summed by the database."""
    rows = await session.execute(select(C.period, C.dim, func.sum(C.a), func.sum(C.b)).where(
        C.family == "sc", C.period.in_([w.isoformat() for w in weeks]), C.b != 0).group_by(C.period, C.dim))
    return {(date.fromisoformat(p), d): (int(a), int(b)) for p, d, a, b in rows.all()}


async def weekly_score_sums(session: AsyncSession, weeks: list[date]) -> dict[date, tuple[int, Decimal]]:
    """week → (merchants with a score, the sum of their scores): the ranking's size and
    mean without ranking. Read and scored a chunk at a time, the event loop getting a
    turn between (a score costs ~10 µs of Decimal arithmetic; 10,000 merchants a week)."""
    q = select(C.merchant_id, C.period, C.dim, C.a, C.b).where(
        C.family == "sc", C.period.in_([w.isoformat() for w in weeks]))
    cards: dict[date, dict[str, Scorecard]] = {}
    async for rows in chunks(session, q):
        scorecards_from_counters(rows, cards)
    out = {}
    for wk, wc in cards.items():
        n, total = 0, Decimal(0)
        for i, card in enumerate(wc.values(), 1):
            if (score := card.score) is not None:
                n, total = n + 1, total + score
            if i % CHUNK_ROWS == 0:
                await asyncio.sleep(0)
        out[wk] = (n, total)
    return out


async def all_weeks(session: AsyncSession) -> dict[date, dict[str, Scorecard]]:
    return await weekly_cards(session)


async def figures_for_week(session: AsyncSession, week: date) -> dict:
    window_weeks = [week - timedelta(weeks=k) for k in range(FLAG_WEEKS)]
    weeks = await weekly_cards(session, window_weeks)
    cards = weeks.get(week, {})
    ranking = rank(cards)
    ranks = {e.merchant_id: e.rank for e in ranking}
    return {
        "scorecards": [cards[m].as_dict() | {"rank": ranks.get(m)} for m in sorted(cards)],
        "ranked": len(ranking),
        "ranking": [{"merchant_id": e.merchant_id, "score": str(e.score), "rank": e.rank, "bottom10": e.bottom10}
                    for e in ranking],
        "flags": [f for f in flags(weeks, FLAG_WEEKS) if f["week"] == week.isoformat()],
        "weeks": weeks,
    }


class _PenaltyFacts(NamedTuple):
    """The columns of an order fact the penalties ledger reads."""

    order_id: str
    merchant_id: str | None
    audited_at: object
    audit_late: bool
    penalty_at: object
    penalty_cents: int | None
    advance_at: object
    advance_cents: int | None
    received_at: object
    processed_at: object
    closed_at: object


async def penalties(session: AsyncSession, merchant_id: str | None = None, week: date | None = None) -> list[dict]:
    q = select(*[F[c] for c in _PenaltyFacts._fields])
    if week is None:
        q = q.where(or_(F.audit_late.is_(True), F.penalty_at.isnot(None), F.advance_at.isnot(None)))
    else:
        lo = P.day_start_utc(week)
        hi = lo + timedelta(days=7)
        q = q.where(or_(and_(F.audit_late.is_(True), F.audited_at >= lo, F.audited_at < hi),
                        and_(F.penalty_at >= lo, F.penalty_at < hi), and_(F.advance_at >= lo, F.advance_at < hi)))
    if merchant_id is not None:
        q = q.where(F.merchant_id == merchant_id)
    lines = penalty_lines(_PenaltyFacts._make(r) for r in (await session.execute(q)).all())
    if week is not None:
        lines = [x for x in lines if x["week"] == week.isoformat()]
    return lines


async def service_express(session: AsyncSession, weights, weeks: list[date] | None = None,
                          manufacturer_id: str | None = None) -> dict:
    """period → manufacturer → {"after_sales", "consultation", "consultation_detail"}, for the
    service-express members:
    - every manufacturer with service orders it serves itself in a manufacturer mode
      (``sx`` counters), from the week of its first such order: scored in every week with
      such orders or with after-sales (scorecard) data — whether or not a consultation
      was ever routed to it;
    - every manufacturer enrolled in consultation routing (routing decisions or transfers
      name it): in every week with scorecard data or consultations."""
    q = select(C.merchant_id, C.period, C.a, C.b, C.c).where(C.family == "cons")
    if weeks is not None:
        q = q.where(C.period.in_([w.isoformat() for w in weeks]))
    if manufacturer_id is not None:
        q = q.where(C.merchant_id == manufacturer_id)
    cons = scores_from_counters((await session.execute(q)).all(), weights)
    cf = ConsultationFact.__table__.c
    mq = select(cf.manufacturer_id).where(cf.kind.in_(("decided", "transferred")),
                                          cf.manufacturer_id.isnot(None)).distinct()
    if manufacturer_id is not None:
        mq = mq.where(cf.manufacturer_id == manufacturer_id)
    enrolled = set((await session.execute(mq)).scalars())
    # manufacturer-mode members: their first week, and the weeks asked for with such orders
    sq = select(C.merchant_id, func.min(C.period)).where(C.family == "sx").group_by(C.merchant_id)
    wq = select(C.merchant_id, C.period).where(C.family == "sx")
    if weeks is not None:
        wq = wq.where(C.period.in_([w.isoformat() for w in weeks]))
    if manufacturer_id is not None:
        sq, wq = sq.where(C.merchant_id == manufacturer_id), wq.where(C.merchant_id == manufacturer_id)
    since = {m: date.fromisoformat(p) for m, p in (await session.execute(sq)).all()}
    with_orders: dict[date, set[str]] = {}
    for m, p in (await session.execute(wq)).all():
        with_orders.setdefault(date.fromisoformat(p), set()).add(m)
    manufacturers = enrolled | set(since)
    cards = await weekly_cards(session, weeks, manufacturer_id) if manufacturers else {}
    out: dict = {}
    for wk in set(cards) | set(cons) | set(with_orders):
        for m in manufacturers:
            if m not in enrolled and wk < since[m]:
                continue  # not a member yet (no manufacturer-mode order so far)
            card = cards.get(wk, {}).get(m)
            c = cons.get(wk, {}).get(m)
            if card is None and c is None and m not in with_orders.get(wk, ()):
                continue
            out.setdefault(wk, {})[m] = {
                "after_sales": after_sales_score(card.score if card else None),
                "consultation": c["score"] if c else None,
                "consultation_detail": c}
    return out


def _month_range(month: str):
    y, m = map(int, month.split("-"))
    lo = P.day_start_utc(date(y, m, 1))
    hi = P.day_start_utc(date(y + (m == 12), m % 12 + 1, 1))
    return lo, hi


async def billing(session: AsyncSession, prices, order_fee, manufacturer_id: str | None = None,
                  month: str | None = None) -> list[dict]:
    oq = select(F.order_id, F.merchant_id, F.created_at).where(F.on_behalf.is_(True))
    cq = select(ConsultationFact).where(ConsultationFact.kind == "billable")
    if manufacturer_id is not None:
        oq = oq.where(F.merchant_id == manufacturer_id)
        cq = cq.where(ConsultationFact.manufacturer_id == manufacturer_id)
    if month is not None:
        lo, hi = _month_range(month)
        oq = oq.where(F.created_at >= lo, F.created_at < hi)
        cq = cq.where(ConsultationFact.at >= lo, ConsultationFact.at < hi)
    orders = [OnBehalfOrder(*r) for r in (await session.execute(oq)).all()]
    cons = [BilledConsultation(r.fact_id.split(":", 1)[1], r.manufacturer_id, r.package, r.at)
            for r in (await session.execute(cq)).scalars()]
    return billing_lines(orders, cons, prices, order_fee)


async def paid_between(session: AsyncSession, first: date, last: date) -> dict[str, int]:
    pt = PaidTransactions.__table__.c
    q = select(pt.merchant_id, func.sum(pt.count)).where(pt.day >= first, pt.day <= last).group_by(pt.merchant_id)
    return {m: int(n or 0) async for rows in chunks(session, q) for m, n in rows}


async def published_statistics(session: AsyncSession, period: str, top: int = 5) -> dict:
    months = months_of(period)
    base = and_(C.family == "st", C.merchant_id == "", C.period.in_(months))
    rows = await session.execute(select(C.dim, func.sum(C.a), func.sum(C.b), func.sum(C.c)).where(
        base, ~C.dim.like("sku:%")).group_by(C.dim))
    sums = {d: (int(a or 0), int(b or 0), int(c or 0)) for d, a, b, c in rows.all()}
    total = func.sum(C.a)
    skus = await session.execute(select(C.dim, total).where(base, C.dim.like("sku:%")).group_by(C.dim)
                                 .order_by(total.desc(), C.dim).limit(top))
    top_skus = [(d[4:], int(n)) for d, n in skus.all() if n]
    first, last = period_bounds(period)
    paid = sum((await paid_between(session, first, last)).values())
    return statistics(period, sums, top_skus, paid, top)


async def chunks(session: AsyncSession, query, size: int | None = None) -> AsyncIterator[list]:
    """The rows of ``query``, ``size`` at a time, the event loop getting a turn between
    chunks: read in one go, tens of thousands of rows keep it (and the event consumer
    sharing it) waiting for a few tenths of a second."""
    size = size or CHUNK_ROWS
    result = await session.stream(query.execution_options(yield_per=size))
    async for part in result.partitions(size):
        yield part
        await asyncio.sleep(0)


async def index_inputs(session: AsyncSession, end: date, parents: dict[str, str],
                       by_path: bool = True) -> dict[str, MerchantWindow]:
    """Each merchant's sums over the window, by refund path — or, with ``by_path=False``,
    only its totals (under the path ``TOTAL``: what the index and its counts use, a
    quarter of the rows to read)."""
    start, stop = window(end)
    merchants: dict[str, MerchantWindow] = {}
    keys = [C.merchant_id, C.dim] if by_path else [C.merchant_id]
    q = (select(*keys, func.sum(C.a), func.sum(C.b), func.sum(C.c), func.sum(C.d))
         .where(C.family == "ix", C.period >= start.isoformat(), C.period <= stop.isoformat()).group_by(*keys))
    async for rows in chunks(session, q):
        for row in rows:
            m, path, (a, b, c, d) = row[0], row[1] if by_path else TOTAL, row[-4:]
            mw = merchants.get(m) or merchants.setdefault(m, MerchantWindow(m))
            mw.paths.setdefault(path, Sums()).add(int(a), int(b), int(c), int(d))
    for m, n in (await paid_between(session, start, stop)).items():
        if n:
            (merchants.get(m) or merchants.setdefault(m, MerchantWindow(m))).paid = n
    # categories: the catalogue's (ccat) where KPI knows it, else the service orders' (mcat)
    cats: dict[str, dict[str, int]] = {}
    catalogue: dict[str, dict[str, int]] = {}
    async for rows in chunks(session, select(C.family, C.merchant_id, C.dim, C.a).where(
            C.family.in_(("mcat", "ccat")))):
        for family, m, cat, n in rows:
            if m in merchants:
                (catalogue if family == "ccat" else cats).setdefault(m, {})[cat] = int(n)
    for m, mw in merchants.items():
        mw.category = main_category(cats.get(m, {}), parents, catalogue.get(m))
    return merchants


async def composite(session: AsyncSession, end: date, parents: dict[str, str], policy: IndexPolicy) -> dict:
    return composite_index(await index_inputs(session, end, parents), end, policy)


async def staffing_for(session: AsyncSession, merchant_id: str, start: date, end: date, cap: Capacities) -> dict:
    lo, hi = P.day_start_utc(start), P.day_start_utc(end + timedelta(days=1))
    cons = (await session.execute(select(ConsultationFact.at).where(
        ConsultationFact.manufacturer_id == merchant_id, ConsultationFact.kind == "decided",
        ConsultationFact.target == "manufacturer", ConsultationFact.at >= lo, ConsultationFact.at < hi))).scalars()
    audits = (await session.execute(select(F.audited_at).where(
        F.merchant_id == merchant_id, F.audited_at >= lo, F.audited_at < hi))).scalars()
    refunds = (await session.execute(select(F.refund_at).where(
        F.merchant_id == merchant_id, F.refund_by == "merchant", F.refund_at >= lo, F.refund_at < hi))).scalars()
    return {"merchant_id": merchant_id, **staffing(list(cons), list(audits), list(refunds), start, end, cap)}


def fraction_float(v: Fraction | None) -> float:
    return float("nan") if v is None else float(v)
