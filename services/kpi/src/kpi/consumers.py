"""Order, SLA, routing and catalogue events → KPI facts and counters (never another
service's tables).

One consumer group (``kpi.facts``) reads the four topics and applies what each
poll returns in ONE transaction, then commits the offsets. Order and SLA events in
the canonical byte layout the producers write are decoded by ``kpi.fastdecode.decode_live``
(an anchored match reading the fields the projection needs); anything else is
validated with the registry's models (invalid ones are parked as by every consumer).
The event ids are recorded in the inbox (``processed_events``) in the same
transaction — on PostgreSQL first, by one ``INSERT … ON CONFLICT DO NOTHING RETURNING``
that tells which are new — events already there are skipped, and the rest go through
``kpi.store.project_folds`` (one array-bound statement per table).
If a batch fails, its records are applied one by one through the shared
consumer's path (retries, then parking), so one bad event never blocks the rest.

The projection is idempotent by itself (earliest-wins facts, consultation facts
keyed by id), so an event applied twice — e.g. by ``kpi replay`` and then by the
consumer — changes nothing; the inbox only saves the work.
"""
from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import Histogram
from pydantic import ValidationError
from sqlalchemy import insert, select

from kpi.fastdecode import decode_live
from kpi.projection import (CATALOGUE_TYPES, CONSULT_TYPES, HANDLED_TYPES, NaiveTime, catalogue_entry,
                            consultation_fact, order_id_of, relevant)
from kpi.store import PG_INBOX, model_fold, pg_connection, project, project_catalogue, project_folds
from shared.consumer import ConsumerConfig, EventConsumer, PermanentError
from shared.events import Envelope, UnknownEventType
from shared.kafka import TopicSpec, ensure_topics
from shared.runtime import Runtime
from shared.topics import CATALOGUE_EVENTS, ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

log = logging.getLogger(__name__)

GROUP = "kpi.facts"
TOPICS = [ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS, CATALOGUE_EVENTS]
MAX_BATCH = 2000
PARTITION_CHANGE_GRACE_S = 5.0


class PartitionsChanged(RuntimeError):
    """Raised out of the loop so ``run`` joins the group afresh."""


def handlers() -> dict:
    """Per-event handlers (the one-by-one fallback path)."""

    async def handle(session, env, data) -> None:
        try:
            relevant(env.type, data)
        except NaiveTime as exc:
            raise PermanentError(str(exc)) from None
        await project(session, [(env.type, data, env.occurred_at)])

    return dict.fromkeys(HANDLED_TYPES, handle)


class FactsConsumer(EventConsumer):
    def __init__(self, rt: Runtime) -> None:
        s = rt.settings
        super().__init__(ConsumerConfig(name=GROUP, topics=TOPICS, bootstrap=rt.kafka,
                                        session_timeout_ms=s.kafka_session_timeout_ms),
                         sessions=rt.sessions, tables=rt.tables, registry=rt.registry, handlers=handlers(),
                         clock=rt.clock, metrics=rt.metrics)
        self._settings = s
        self._kafka, self._topic_configs = rt.kafka, rt.topic_configs
        self._assigned, self._meta_at_assignment, self._changed_since = frozenset(), {}, None
        self.lag = Histogram("kpi_event_lag_seconds",
                             "From an event's publication (broker timestamp) to its effect on the KPI figures "
                             "being committed", registry=rt.metrics,
                             buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1,
                                      1.5, 2.5, 5, 10, 30))
        self.batch_seconds = Histogram("kpi_projection_batch_seconds", "Time to apply one batch of events",
                                       registry=rt.metrics, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    async def run(self) -> None:
        # The topics this group reads exist with the configured partitions before it
        # subscribes (a subscription to a missing topic makes the embedded broker
        # create it with its own default partition count).
        try:
            s = self._settings
            await ensure_topics(self._kafka, [TopicSpec(t) for t in TOPICS],
                                default_partitions=s.kafka_topic_partitions,
                                replication_factor=s.kafka_replication_factor, configs=self._topic_configs)
        except Exception as exc:  # noqa: BLE001 - the broker may be down; the consumer retries anyway
            log.warning("could not ensure the consumed topics: %r", exc)
        await super().run()

    def client_options(self) -> dict:
        # A short fetch wait: the broker answers a fetch as soon as data is there or after
        # this wait, and the embedded broker waits the whole time — with the default
        # 500 ms the figures would lag by half a second. Bigger fetches for bursts.
        return {**super().client_options(), "max_poll_records": MAX_BATCH,
                "fetch_max_wait_ms": self._settings.kafka_fetch_max_wait_ms,
                "max_partition_fetch_bytes": 4 << 20, "fetch_max_bytes": 32 << 20}

    def _partitions_changed(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether a subscribed topic has partitions the group has not been assigned
        since the last assignment — e.g. the embedded broker restarted empty and a
        producer re-created the topic with more partitions. The group is then joined
        afresh (reconnect) rather than left without those partitions."""
        assigned = frozenset(consumer.assignment())
        meta = {t: frozenset(consumer.partitions_for_topic(t) or ()) for t in self.config.topics}
        now = time.monotonic()
        if assigned != self._assigned:
            self._assigned, self._meta_at_assignment, self._changed_since = assigned, meta, None
            return False
        if meta == self._meta_at_assignment or not assigned:
            self._changed_since = None
            return False
        if self._changed_since is None:
            self._changed_since = now  # give the group's own rebalance a chance first
        return now - self._changed_since > PARTITION_CHANGE_GRACE_S

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        idle_rounds = 0
        self._assigned, self._meta_at_assignment, self._changed_since = frozenset(), {}, None
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if self._partitions_changed(consumer):
                    raise PartitionsChanged(f"{GROUP}: topic partitions changed since the last assignment")
            batches = await consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
            if not batches:
                idle_rounds += 1
                if idle_rounds % 6 == 0:
                    await self._rewind_if_past_end(consumer)
                continue
            idle_rounds = 0
            records = [m for msgs in batches.values() for m in msgs]
            await self.handle_batch(records)
            await self._commit(consumer, {tp: msgs[-1].offset + 1 for tp, msgs in batches.items() if msgs})

    async def handle_batch(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        # (event id, type, (order id, fold) or None, consultation fact or None, catalogue entry or None),
        # in log order
        parsed: list[tuple[str, str, tuple | None, tuple | None, tuple | None]] = []
        replay: list[ConsumerRecord] = []  # what the one-by-one path takes if the batch fails
        for msg in records:
            try:
                item = await self._decode(msg)
            except Exception as exc:  # noqa: BLE001 - whatever a message holds, it is parked, never retried forever
                await self._park(msg, f"cannot decode or project: {exc!r}")
                continue
            if item is not None:
                parsed.append(item)
                replay.append(msg)
        if parsed:
            try:
                applied, dups = await self._apply_batch(parsed)
            except Exception as exc:  # noqa: BLE001 - one by one, with retries and parking
                log.warning("batch of %d events failed (%r); applying them one by one", len(parsed), exc)
                for msg in replay:
                    await self.handle_record(msg)
            else:
                self.processed_total.inc(applied)
                self.duplicates_total.inc(dups)
        now = time.time()
        for msg in records:
            if msg.timestamp and msg.timestamp > 0:
                self.lag.observe(max(0.0, now - msg.timestamp / 1000))
        self.batch_seconds.observe(time.perf_counter() - started)

    async def _decode(self, msg: ConsumerRecord) -> tuple | None:
        """(event id, type, (order id, fold) or None, consultation fact or None, catalogue entry
        or None) for a record to apply; None for one that is parked here or not needed. Raises
        on anything unexpected (out-of-range values...): the caller parks it."""
        ev = decode_live(msg.value) if msg.value else None
        if ev is not None:  # the canonical layout of an order or SLA event
            return ev.id, ev.type, (ev.order_id, ev.fold) if ev.order_id is not None else None, None, None
        try:
            env = Envelope.from_bytes(msg.value)
        except (ValidationError, ValueError, TypeError) as exc:
            await self._park(msg, f"malformed envelope: {exc}")
            return None
        if env.type not in HANDLED_TYPES:
            if not self.registry.is_known(env.type, env.schema_version) and not self._known_type(env.type):
                await self._park(msg, f"unknown event type {env.type!r} v{env.schema_version}")
            return None
        try:
            data = self.registry.parse_data(env)
            wanted = relevant(env.type, data)
        except (UnknownEventType, ValidationError, NaiveTime) as exc:
            await self._park(msg, f"invalid data for {env.type} v{env.schema_version}: {exc}")
            return None
        order_event = fact = entry = None
        if wanted:
            if env.type in CATALOGUE_TYPES:
                entry = catalogue_entry(data, env.occurred_at)
            elif env.type in CONSULT_TYPES:
                fact = consultation_fact(env.type, data)
            else:
                order_event = (order_id_of(env.type, data), model_fold(env.type, data))
        return str(env.id), env.type, order_event, fact, entry

    async def _apply_batch(self, parsed) -> tuple[int, int]:
        """One transaction: the inbox rows of the events not seen before, their
        effects on the facts and counters. Returns (applied, duplicates)."""
        name = self.config.name
        first: dict[str, str] = {}  # event id → type, first occurrence in the batch
        for eid, type_, *_ in parsed:
            first.setdefault(eid, type_)
        async with self.sessions() as s:
            async with s.begin():
                now = self.clock.now()
                pg = s.bind.dialect.name == "postgresql"
                if pg:
                    # the inbox rows first, in one statement: those that did not exist are the fresh events
                    ids = sorted(first)
                    fresh = {r[0] for r in await (await pg_connection(s)).fetch(
                        PG_INBOX, name, ids, [first[e] for e in ids], now)}
                else:
                    pe = self.tables.processed_events
                    ids = list(first)
                    seen: set[str] = set()
                    for i in range(0, len(ids), 500):
                        seen.update((await s.execute(select(pe.c.event_id).where(
                            pe.c.consumer == name, pe.c.event_id.in_(ids[i:i + 500])))).scalars())
                    fresh = {e for e in ids if e not in seen}
                order_events, facts, entries, done = [], [], [], set()
                for eid, _type, order_event, fact, entry in parsed:
                    if eid not in fresh or eid in done:
                        continue
                    done.add(eid)
                    if order_event is not None:
                        order_events.append(order_event)
                    if fact is not None:
                        facts.append(fact)
                    if entry is not None:
                        entries.append(entry)
                await project_folds(s, order_events, facts)
                if entries:
                    await project_catalogue(s, entries)
                if fresh and not pg:
                    await s.execute(insert(self.tables.processed_events), [
                        {"consumer": name, "event_id": e, "event_type": first[e], "processed_at": now}
                        for e in first if e in fresh])
        return len(fresh), len(parsed) - len(fresh)


def start_consumer(rt: Runtime) -> FactsConsumer:
    c = FactsConsumer(rt)
    rt.consumers.append(c)  # listed with the runtime's consumers (operations, tests)
    rt.spawn(c.run(), f"consumer-{GROUP}")
    return c
