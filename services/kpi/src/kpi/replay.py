"""Rebuild the fact tables from the topics (``kpi replay``) and take a snapshot
of every figure (to compare incremental and replayed projections).

Facts are idempotent, earliest-wins upserts keyed by order / event id, so
applying the topics from offset 0 into an empty database, in any order and with
duplicates, gives the same facts — and the figures are pure functions of them."""
from __future__ import annotations

import asyncio
from typing import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import shared.contracts  # noqa: F401 - registers event types
from kpi.consumers import order_handlers, routing_handlers, sla_handlers
from kpi.figures import all_weeks, billing, penalties, service_express
from kpi.domain.scorecard import flags, rank
from kpi.models import ConsultationFact, OrderFact, OrderMilestone
from shared.events import Envelope, registry
from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

TOPICS = (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS)


def handlers() -> dict:
    # The projection handlers do not use the runtime.
    return {**order_handlers(None), **sla_handlers(None), **routing_handlers(None)}


async def apply(session: AsyncSession, envelopes: Iterable[Envelope], table: dict | None = None) -> int:
    table = table or handlers()
    n = 0
    for env in envelopes:
        h = table.get(env.type)
        if h is None or not registry.is_known(env.type, env.schema_version):
            continue
        await h(session, env, registry.parse_data(env))
        n += 1
    return n


async def clear_facts(session: AsyncSession) -> None:
    for model in (OrderMilestone, ConsultationFact, OrderFact):
        await session.execute(delete(model))


async def snapshot(session: AsyncSession, settings) -> dict:
    """Every figure the service computes, in a comparable form."""
    weeks = await all_weeks(session)
    se = await service_express(session, settings.consultation_weights)
    return {
        "scorecards": {w.isoformat(): {m: c.as_dict() for m, c in sorted(cards.items())}
                       for w, cards in sorted(weeks.items())},
        "rankings": {w.isoformat(): [(e.merchant_id, str(e.score), e.rank, e.bottom10) for e in rank(cards)]
                     for w, cards in sorted(weeks.items())},
        "flags": flags(weeks),
        "penalties": await penalties(session),
        "billing": await billing(session, settings.package_prices, settings.order_fee_cny),
        "service_express": {w.isoformat(): {m: {k: str(v.get(k)) for k in ("after_sales", "consultation")}
                                            for m, v in sorted(ms.items())} for w, ms in sorted(se.items())},
    }


async def read_topics(bootstrap: str, topics: Iterable[str] = TOPICS):
    """Every envelope on the topics from offset 0 up to their current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        if not parts:
            await consumer.topics()
            parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, msgs in batches.items():
                for m in msgs:
                    yield Envelope.from_bytes(m.value)
                if msgs and msgs[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def replay(settings, batch: int = 2000) -> int:
    """Empty the fact tables and rebuild them from the topics (one transaction per batch)."""
    engine = create_async_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    table = handlers()
    n = 0
    try:
        async with sessions.begin() as s:
            await clear_facts(s)
        buf: list[Envelope] = []
        async for env in read_topics(settings.kafka_bootstrap):
            buf.append(env)
            if len(buf) >= batch:
                async with sessions.begin() as s:
                    n += await apply(s, buf, table)
                buf = []
        if buf:
            async with sessions.begin() as s:
                n += await apply(s, buf, table)
    finally:
        await engine.dispose()
    return n


def add_arguments(parser) -> None:
    parser.add_argument("--batch", type=int, default=2000, help="events per transaction")


def run(settings, args) -> None:
    n = asyncio.run(replay(settings, args.batch))
    print(f"kpi: replayed {n} events into {settings.database_url.split('@')[-1]}")
