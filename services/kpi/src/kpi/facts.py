"""Fact upserts (idempotent, arrival-order insensitive) and loading timelines."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kpi.domain.timeline import Milestone, OrderTimeline
from kpi.models import ConsultationFact, OrderFact, OrderMilestone


async def upsert_order(session: AsyncSession, order_id: str, snap) -> None:
    if await session.get(OrderFact, order_id) is None:
        session.add(OrderFact(order_id=order_id, merchant_id=snap.merchant_id, category=snap.category, sku=snap.sku,
                              service_type=snap.service_type, problem_type=snap.problem_type,
                              amount_paid=snap.amount_paid, created_at=snap.created_at,
                              on_behalf=bool(getattr(snap, "on_behalf", False))))
        await session.flush()


async def record(session: AsyncSession, order_id: str, kind: str, at: datetime,
                 value: int | None = None, amount: Decimal | None = None) -> None:
    """The earliest occurrence wins, so replays, duplicates and late events agree."""
    row = await session.get(OrderMilestone, (order_id, kind))
    if row is None:
        session.add(OrderMilestone(order_id=order_id, kind=kind, at=at, value=value, amount=amount))
        await session.flush()
    elif at < row.at:
        row.at, row.value, row.amount = at, value, amount


async def load_timelines(session: AsyncSession, merchant_id: str | None = None) -> list[OrderTimeline]:
    q = select(OrderFact.order_id, OrderFact.merchant_id, OrderFact.created_at)
    if merchant_id is not None:
        q = q.where(OrderFact.merchant_id == merchant_id)
    orders = {oid: OrderTimeline(oid, m, c) for oid, m, c in (await session.execute(q)).all()}
    mq = select(OrderMilestone)
    if merchant_id is not None:
        mq = mq.join(OrderFact, OrderFact.order_id == OrderMilestone.order_id).where(OrderFact.merchant_id == merchant_id)
    for row in (await session.execute(mq)).scalars():
        o = orders.get(row.order_id)
        if o is not None:  # a milestone of an order not yet known waits for its creation fact
            o.milestones[row.kind] = Milestone(row.at, row.value, row.amount)
    return sorted(orders.values(), key=lambda o: o.order_id)


async def record_consultation(session: AsyncSession, kind: str, event_key: str, manufacturer_id: str | None,
                              at: datetime, target: str | None = None, reason: str | None = None,
                              package: int | None = None) -> None:
    fact_id = f"{kind}:{event_key}"
    if await session.get(ConsultationFact, fact_id) is None:
        session.add(ConsultationFact(fact_id=fact_id, kind=kind, manufacturer_id=manufacturer_id, at=at,
                                     target=target, reason=reason, package=package))
        await session.flush()
