"""Order, SLA, routing and catalogue events → KPI facts and counters (never another
service's tables; the figures: docs/kpis.md).

One consumer group (``kpi.facts``) over the four topics, on the shared consumer
(``shared.consumer``, docs/events.md § 4): events decoded by the shared codec, everything
a poll fetched applied in ONE transaction through the batch form below — the shared inbox
records the fresh event ids first, then ``kpi.adapters.store.project_folds`` applies their
folds (one array-bound statement per table on PostgreSQL) — and the offsets committed
after. Whatever cannot be decoded or applied is parked with its reason and the partition
moves on: a batch that fails is applied event by event (retries, then parking), so one bad
event never blocks the rest; an event time past the last UTC date or without a zone is
refused at once (``PermanentError``).

The projection is idempotent by itself (earliest-wins facts, consultation facts keyed by
id), so an event applied twice — e.g. by ``kpi replay`` and then by the consumer —
changes nothing; the inbox only saves the work.
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

from aiokafka import ConsumerRecord
from prometheus_client import Histogram

from kpi.adapters.store import model_fold, project_catalogue, project_folds
from kpi.domain.projection import (CATALOGUE_TYPES, CONSULT_TYPES, HANDLED_TYPES, NaiveTime, catalogue_entry,
                                   consultation_fact, order_id_of, relevant)
from shared.consumer import ConsumerConfig, EventConsumer, PermanentError, batched
from shared.kafka import TopicSpec, ensure_topics
from shared.metrics import family
from shared.runtime import Runtime
from shared.topics import CATALOGUE_EVENTS, ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

log = logging.getLogger(__name__)

GROUP = "kpi.facts"
TOPICS = [ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS, CATALOGUE_EVENTS]
MAX_BATCH = 2000


def handlers(batch_seconds: Histogram | None = None) -> dict:
    """The batch form (one transaction per poll) and its one-event form (the replay path)."""

    async def many(session, items: Sequence) -> None:
        started = time.perf_counter()
        order_events, facts, entries = [], [], []
        for env, data in items:
            try:
                if not relevant(env.type, data):
                    continue
                if env.type in CATALOGUE_TYPES:
                    entries.append(catalogue_entry(data, env.occurred_at))
                elif env.type in CONSULT_TYPES:
                    fact = consultation_fact(env.type, data)
                    if fact is not None:
                        facts.append(fact)
                else:
                    order_events.append((order_id_of(env.type, data), model_fold(env.type, data)))
            except (NaiveTime, OverflowError) as exc:
                # e.g. 9999-12-31T23:59:59-12:00: beyond the last UTC date, never projectable
                raise PermanentError(f"{env.type} {env.id}: {exc!r}") from None
        await project_folds(session, order_events, facts)
        if entries:
            await project_catalogue(session, entries)
        if batch_seconds is not None:
            batch_seconds.observe(time.perf_counter() - started)

    async def one(session, env, data) -> None:
        await many(session, [(env, data)])

    return dict.fromkeys(HANDLED_TYPES, batched(one, many))


def facts_consumer(rt: Runtime) -> EventConsumer:
    s = rt.settings
    lag = family(rt.metrics, Histogram, "kpi_event_lag_seconds",
                 "From an event's publication (broker timestamp) to its effect on the KPI figures being committed",
                 buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1, 1.5, 2.5, 5,
                          10, 30))
    batch_seconds = family(rt.metrics, Histogram, "kpi_projection_batch_seconds",
                           "Time to apply one batch of events",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    def observe_lag(records: Sequence[ConsumerRecord]) -> None:  # the records whose events were applied
        now = time.time()
        for msg in records:
            if msg.timestamp and msg.timestamp > 0:
                lag.observe(max(0.0, now - msg.timestamp / 1000))

    async def provision() -> None:
        # The topics exist with the configured partitions before the group subscribes (a
        # subscription to a missing topic makes the embedded broker create it with its own
        # default partition count).
        await ensure_topics(rt.kafka, [TopicSpec(t) for t in TOPICS], default_partitions=s.kafka_topic_partitions,
                            replication_factor=s.kafka_replication_factor, configs=rt.topic_configs)

    config = ConsumerConfig(
        name=GROUP, topics=TOPICS, bootstrap=rt.kafka, session_timeout_ms=s.kafka_session_timeout_ms,
        batch_max_poll_records=MAX_BATCH,
        # A shorter fetch wait than the default 500 ms, which the embedded broker takes 250 ms
        # or more to answer even when data is there (kpi/settings.py). Bigger fetches for bursts.
        client_overrides={"fetch_max_wait_ms": s.kafka_fetch_max_wait_ms, "max_partition_fetch_bytes": 4 << 20,
                          "fetch_max_bytes": 32 << 20})
    return EventConsumer(config, sessions=rt.sessions, tables=rt.tables, registry=rt.registry,
                         handlers=handlers(batch_seconds), clock=rt.clock, after_commit=rt.relay.wake,
                         metrics=rt.metrics, provision=provision, on_applied=observe_lag)


def start_consumer(rt: Runtime) -> EventConsumer:
    c = facts_consumer(rt)
    rt.consumers.append(c)  # listed with the runtime's consumers (operations, tests)
    rt.spawn(c.run(), f"consumer-{GROUP}")
    return c
