"""Idempotent Kafka consumer: the one consumer every service subscribes its handlers with
(docs/events.md § 4).

For each message: decode the envelope (``shared.events``), run the handler and record the
event id in ``processed_events`` in ONE transaction, commit it, then commit the Kafka
offset. A redelivered event finds its id recorded and has no second effect. Whatever
cannot be applied is parked in ``dead_letters`` with its reason and the partition moves
on: undecodable bytes, an unknown type or version, data the contract refuses, a handler
that refuses the event (``PermanentError``) or keeps failing (retried with backoff).

Batch mode: a handler wrapped with :func:`batched` also has a form that takes many
events at once. When a consumer has such handlers, everything one poll fetched (all
partitions) is applied in ONE transaction (the inbox rows of all fresh event ids first,
then the handlers' effects, consecutive events of one batch form together, in log
order), then the offsets are committed. If that transaction fails for any reason (an
event a handler refuses, a concurrent replica), it is rolled back and the events are
applied one at a time, so a bad one is parked alone and the rest applied; the inbox
makes the replay exactly-once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import insert, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock, SystemClock
from shared.events import DecodeError, Envelope, EventRegistry, decode_head
from shared.kafka import Kafka, consume_reconnecting, kafka_options
from shared.logging import reset_correlation_id, set_correlation_id
from shared.masking import mask_payload, mask_text
from shared.messaging_tables import MessagingTables
from shared.metrics import family
from shared.retry import Backoff

log = logging.getLogger(__name__)

# A handler gets the session of the transaction, the envelope and its decoded data
# (``env.data``, a contract of shared/contracts/).
Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]
# Applies events in their log order inside one transaction; must have the same effect
# as calling the single-event handler for each of them in turn.
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Envelope, Any]]], Awaitable[None]]
# Called with the records of a poll whose events were applied, once their effects are committed
# (not duplicates, skipped types or parked records): e.g. a publication-to-effect histogram.
AppliedHook = Callable[[Sequence[ConsumerRecord]], None]

PARTITION_CHANGE_GRACE_S = 5.0  # the group's own rebalance gets this long to take new partitions
SQLITE_INBOX_CHUNK = 500  # rows per INSERT (4 parameters each: under SQLite's variable limit)


@dataclass(frozen=True)
class BatchingHandler:
    """A handler with a batch form (see :func:`batched`); callable as a plain handler."""

    one: Handler
    many: BatchHandler

    async def __call__(self, session: AsyncSession, env: Envelope, data: Any) -> None:
        await self.one(session, env, data)


def batched(one: Handler, many: BatchHandler) -> BatchingHandler:
    """Declare the batch form of a handler; consumers without batches keep calling ``one``."""
    return BatchingHandler(one, many)


@dataclass(frozen=True)
class SelectiveHandler:
    """A handler for only some events of its type (see :func:`only_when`). The others are
    skipped as a type the consumer does not handle is: no transaction, no inbox row. Skipping
    has no effect, so a redelivered event is skipped again; ``wants`` must decide on the
    event's data alone."""

    handler: Handler
    wants: Callable[[Any], bool]

    async def __call__(self, session: AsyncSession, env: Envelope, data: Any) -> None:
        await self.handler(session, env, data)


def only_when(wants: Callable[[Any], bool], handler: Handler) -> SelectiveHandler:
    """``handler`` for the events whose data ``wants`` accepts; the consumer skips the rest."""
    return SelectiveHandler(handler, wants)


class PermanentError(Exception):
    """Raised by a handler for an event it can never apply (parked at once)."""


class PartitionsChanged(RuntimeError):
    """A subscribed topic has partitions the group was not assigned: join it afresh."""


@dataclass
class ConsumerConfig:
    name: str  # also the consumer group id and the inbox namespace
    topics: list[str]
    bootstrap: Kafka  # the service's KafkaConnection (TLS, SASL) or a plaintext "host:port"
    session_timeout_ms: int = 10000
    max_attempts: int = 5
    retry_base_s: float = 0.1  # a failing handler is retried after ~0.1, 0.2, 0.4, 0.8 s (jittered)
    max_poll_records: int = 500
    # Fetched per poll when the handlers have batch forms: one transaction each.
    batch_max_poll_records: int = 2000
    # More AIOKafkaConsumer options (fetch sizes and waits), over the defaults.
    client_overrides: dict[str, Any] = field(default_factory=dict)


class LagTracker:
    """A consumer group's lag, from what its loop fetches and commits (read by the gauges at
    scrape time, possibly from the metrics listener's thread: reads copy the dictionaries).

    Seconds: now minus the broker timestamp of the oldest message fetched and not yet
    committed; when nothing is in hand but a partition is behind its high watermark, of the
    last message applied there (the next one is no older); 0 when every partition is caught
    up. So a stuck handler, a slow database or a backlog all show as a growing lag."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self.reset()

    def reset(self) -> None:
        self._in_hand: dict[TopicPartition, float] = {}  # oldest fetched, not committed (seconds)
        self._fetched_last: dict[TopicPartition, float] = {}  # newest fetched
        self._applied_last: dict[TopicPartition, float] = {}  # newest committed
        self._behind: dict[TopicPartition, int] = {}  # high watermark minus committed offset

    def fetched(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batches.items():
            stamps = [r.timestamp / 1000 for r in (records[0], records[-1]) if r.timestamp and r.timestamp > 0]
            if stamps:
                self._in_hand.setdefault(tp, stamps[0])
                self._fetched_last[tp] = stamps[-1]

    def committed(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        assigned = consumer.assignment()
        for tp, offset in offsets.items():
            self._in_hand.pop(tp, None)
            if tp in self._fetched_last:
                self._applied_last[tp] = self._fetched_last[tp]
            high = consumer.highwater(tp)
            self._behind[tp] = max(0, high - offset) if high is not None else 0
        for d in (self._in_hand, self._fetched_last, self._applied_last, self._behind):
            for tp in [tp for tp in d if tp not in assigned]:  # revoked in a rebalance
                del d[tp]

    def seconds(self) -> float:
        oldest = list(self._in_hand.values())
        applied = dict(self._applied_last)
        oldest += [applied[tp] for tp, n in list(self._behind.items()) if n > 0 and tp in applied]
        return max(0.0, self.wall_clock() - min(oldest)) if oldest else 0.0

    def messages(self) -> float:
        return float(sum(self._behind.values()))


class _Rebalance(ConsumerRebalanceListener):
    """Forgets what this client committed on partitions it loses: when one comes back its
    first commit is checked against the broker again (``EventConsumer._commit``)."""

    def __init__(self, owner: "EventConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked) -> None:
        self.owner.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        pass


class EventConsumer:
    def __init__(
        self,
        config: ConsumerConfig,
        *,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        registry: EventRegistry,
        handlers: dict[str, Handler],
        clock: Clock,
        after_commit: Callable[[], None] | None = None,
        metrics: CollectorRegistry | None = None,
        provision: Callable[[], Awaitable[None]] | None = None,
        on_applied: AppliedHook | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.tables = tables
        self.registry = registry
        self.handlers = handlers
        self.clock = clock
        self.wall_clock = SystemClock()
        self.after_commit = after_commit  # the outbox relay's wake-up, when a handler wrote events
        self.provision = provision  # e.g. create the consumed topics before subscribing
        self.on_applied = on_applied
        self._committed: dict[TopicPartition, int] = {}  # what this client committed, per partition
        self._verified: set[TopicPartition] = set()  # partitions whose first commit was checked
        self._listener = _Rebalance(self)
        self._assigned: frozenset = frozenset()
        self._meta_at_assignment: dict = {}
        self._changed_since: float | None = None
        # One family per metric for all the service's consumers, the group as a label
        # (docs/operations.md, "Metrics").
        group = config.name
        self.processed_total = family(metrics, Counter, "consumer_messages_processed_total",
                                      "Events applied, per consumer group", ["group"]).labels(group)
        self.duplicates_total = family(metrics, Counter, "consumer_messages_duplicates_total",
                                       "Redelivered events skipped (already applied), per consumer group",
                                       ["group"]).labels(group)
        self.parked_total = family(metrics, Counter, "consumer_messages_parked_total",
                                   "Messages parked as dead letters, per consumer group", ["group"]).labels(group)
        self.lag_tracker = LagTracker()  # (not "lag": subclasses have their own lag histograms)
        family(metrics, Gauge, "consumer_lag_seconds",
               "How far behind its topics a consumer group is: now minus the publication time of the oldest "
               "message it has not applied yet (0 when caught up)", ["group"]).labels(group).set_function(
            self.lag_tracker.seconds)
        family(metrics, Gauge, "consumer_lag_messages",
               "Messages in the group's assigned partitions not applied yet (high watermark minus committed "
               "offset, as of the last fetch)", ["group"]).labels(group).set_function(self.lag_tracker.messages)

    # ------------------------------------------------------------------ the client and its loop

    def client_options(self) -> dict:
        """Keyword arguments of the AIOKafkaConsumer (``ConsumerConfig.client_overrides`` last)."""
        return dict(
            **kafka_options(self.config.bootstrap),
            group_id=self.config.name,
            enable_auto_commit=False,
            # A restarted in-memory broker has a shorter log than our committed offset:
            # start again from the earliest message rather than wait at a gap.
            auto_offset_reset="earliest",
            metadata_max_age_ms=3000,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(100, min(3000, self.config.session_timeout_ms // 10)),
            max_poll_records=(self.config.batch_max_poll_records if self.batchable
                              else self.config.max_poll_records),
        ) | self.config.client_overrides

    def _client(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(**self.client_options())
        consumer.subscribe(topics=self.config.topics, listener=self._listener)
        return consumer

    async def run(self) -> None:
        if self.provision is not None:
            try:
                await self.provision()
            except Exception as exc:  # noqa: BLE001 - the broker may be down; the loop retries anyway
                log.warning("could not provision the consumed topics: %r", exc, extra={"consumer": self.config.name})
        await consume_reconnecting(self._client, self._session, f"consumer {self.config.name}")

    def partitions_revoked(self, revoked) -> None:
        """A rebalance took these partitions: their next first commit is checked again."""
        for tp in revoked:
            self._committed.pop(tp, None)
            self._verified.discard(tp)

    async def _session(self, consumer: AIOKafkaConsumer) -> None:
        self._committed, self._verified = {}, set()
        self._assigned, self._meta_at_assignment, self._changed_since = frozenset(), {}, None
        self.lag_tracker.reset()
        await self._loop(consumer)

    async def fetch(self, consumer: AIOKafkaConsumer, **kwargs) -> dict[TopicPartition, list[ConsumerRecord]]:
        """``consumer.getmany(**kwargs)``, noted for the lag gauges: every loop fetches through this."""
        batches = await consumer.getmany(**kwargs)
        self.lag_tracker.fetched(batches)
        return batches

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        idle_rounds = 0
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if self._partitions_changed(consumer):
                    raise PartitionsChanged(f"{self.config.name}: topic partitions changed since the last assignment")
            batches = await self.fetch(consumer, timeout_ms=500)
            if not batches:
                idle_rounds += 1
                if idle_rounds % 6 == 0:
                    await self._rewind_if_past_end(consumer)
                continue
            idle_rounds = 0
            records = [m for messages in batches.values() for m in messages]
            await self.handle_records(records)
            await self._commit(consumer, {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages})

    async def handle_records(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply one poll's records (log order within each partition): in one transaction
        when the handlers have batch forms, else one by one. Never raises for bad input."""
        if self.batchable and len(records) > 1:
            applied = await self.handle_batch(records)
        else:
            applied = [msg for msg in records if await self.handle_record(msg)]
        if self.on_applied is not None and applied:
            self.on_applied(applied)

    @property
    def batchable(self) -> bool:
        return any(isinstance(h.handler if isinstance(h, SelectiveHandler) else h, BatchingHandler)
                   for h in self.handlers.values())

    # ------------------------------------------------------------------ decoding

    async def _decode(self, msg: ConsumerRecord) -> tuple[Envelope, Handler] | None:
        """The envelope (data decoded by its contract) and its handler; None when the
        message was parked (or is a known type this consumer does not need)."""
        if msg.value is None:
            await self._park(msg, "malformed envelope: an empty message")
            return None
        try:
            head = decode_head(msg.value)
            handler = self.handlers.get(head.type)
            if handler is None:
                if not self.registry.knows_type(head.type):
                    await self._park(msg, f"unknown event type {head.type!r} v{head.schema_version}")
                return None  # a known type this consumer does not need: skipped, not parked
            env = self.registry.decode_data(head)
        except DecodeError as exc:
            await self._park(msg, str(exc))
            return None
        if isinstance(handler, SelectiveHandler):
            try:
                wanted = handler.wants(env.data)
            except Exception as exc:  # noqa: BLE001 - a predicate that cannot judge the event parks it
                await self._park(msg, f"handler's filter failed: {exc!r}")
                return None
            if not wanted:
                return None  # not an event this consumer acts on: skipped, nothing recorded
            handler = handler.handler
        return env, handler

    # ------------------------------------------------------------------ one by one

    async def handle_record(self, msg: ConsumerRecord) -> bool:
        """Apply one record; never raises for bad input (it is parked). True when its event
        was applied now (not a duplicate, a skipped type or parked)."""
        decoded = await self._decode(msg)
        return decoded is not None and await self._apply_retrying(msg, *decoded)

    async def _apply_retrying(self, msg: ConsumerRecord, env: Envelope, handler: Handler) -> bool:
        token = set_correlation_id(env.correlation_id)
        base = self.config.retry_base_s
        backoff = Backoff(base, base * 2 ** max(0, self.config.max_attempts - 2))
        try:
            for attempt in range(1, self.config.max_attempts + 1):
                try:
                    return await self.apply(env, handler)
                except PermanentError as exc:
                    await self._park(msg, f"handler refused: {exc}")
                    return False
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    if attempt == self.config.max_attempts:
                        log.exception("handler failed; parking event", extra={"event_id": str(env.id)})
                        await self._park(msg, f"handler failed {attempt} times: {exc!r}")
                        return False
                    await backoff.wait()
            return False
        finally:
            reset_correlation_id(token)

    async def apply(self, env: Envelope, handler: Handler) -> bool:
        """Record the event id and run the handler atomically. False if already applied."""
        async with self.sessions() as s:
            async with s.begin():
                if not await self._claim(s, [env]):
                    self.duplicates_total.inc()
                    return False
                await handler(s, env, env.data)
        self.processed_total.inc()
        if s.info.get("outbox_added") and self.after_commit:
            self.after_commit()
        return True

    # ------------------------------------------------------------------ batches

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> list[ConsumerRecord]:
        """Apply records in one transaction (bad ones parked first); if it fails, apply
        them one by one (retries, parking). Returns the records whose events were applied."""
        items: list[tuple[ConsumerRecord, Envelope, Handler]] = []
        for msg in records:
            decoded = await self._decode(msg)
            if decoded is not None:
                items.append((msg, *decoded))
        if not items:
            return []
        try:
            applied, duplicates, wrote = await self._apply_batch(items)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolled back; one by one, with retries and parking
            log.warning("batch of %d failed, replaying one by one: %r", len(items), exc,
                        extra={"consumer": self.config.name})
            return [msg for msg, env, handler in items if await self._apply_retrying(msg, env, handler)]
        self.processed_total.inc(len(applied))
        self.duplicates_total.inc(duplicates)
        if wrote and self.after_commit:
            self.after_commit()
        return applied

    async def _apply_batch(self, items) -> tuple[list[ConsumerRecord], int, bool]:
        """One transaction: the inbox rows of the events not seen before, then their effects.
        Returns (the records applied, duplicates, whether a handler wrote to the outbox)."""
        async with self.sessions() as s:
            async with s.begin():
                fresh_ids = await self._claim(s, [env for _, env, _ in items])
                fresh: list[tuple[Envelope, Handler]] = []
                applied: list[ConsumerRecord] = []
                for msg, env, handler in items:
                    eid = str(env.id)
                    if eid in fresh_ids:
                        fresh_ids.discard(eid)  # the same event twice in one batch: applied once
                        fresh.append((env, handler))
                        applied.append(msg)
                # Consecutive events sharing a batch form go to it together, in log order.
                start = 0
                for i in range(1, len(fresh) + 1):
                    if i == len(fresh) or _form(fresh[i][1]) != _form(fresh[start][1]):
                        group = fresh[start:i]
                        handler = group[0][1]
                        if isinstance(handler, BatchingHandler):
                            await handler.many(s, [(env, env.data) for env, _ in group])
                        else:
                            for env, _ in group:
                                await handler(s, env, env.data)
                        start = i
        return applied, len(items) - len(fresh), bool(s.info.get("outbox_added"))

    # ------------------------------------------------------------------ the inbox

    async def _claim(self, s: AsyncSession, envelopes: Sequence[Envelope]) -> set[str]:
        """Insert the inbox rows of ``envelopes`` unless they exist; returns the ids that were
        new (the events to apply). On PostgreSQL a row a concurrent transaction inserted
        waits for it: once it commits the event counts as seen, so two replicas never both
        apply it."""
        pe = self.tables.processed_events
        # wall-clock time, not the service clock: the ids are kept for the broker's redelivery
        # window (``OutboxRelay.purge_inbox``), which a virtual clock's jumps would cut short
        now = self.wall_clock.now()
        first: dict[str, str] = {}
        for env in envelopes:
            first.setdefault(str(env.id), env.type)
        if s.bind.dialect.name == "postgresql":
            # one statement with two array parameters, however many events
            rows = await s.execute(text(
                f"INSERT INTO {pe.name} (consumer, event_id, event_type, processed_at) "
                "SELECT :consumer, e, t, :now FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[])) AS x(e, t) "
                "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"),
                {"consumer": self.config.name, "now": now, "ids": list(first), "types": list(first.values())})
            return set(rows.scalars())
        fresh: set[str] = set()
        ids = list(first)
        for k in range(0, len(ids), SQLITE_INBOX_CHUNK):
            chunk = ids[k:k + SQLITE_INBOX_CHUNK]
            stmt = (sqlite.insert(pe).values([{"consumer": self.config.name, "event_id": e, "event_type": first[e],
                                                "processed_at": now} for e in chunk])
                    .on_conflict_do_nothing(index_elements=["consumer", "event_id"]).returning(pe.c.event_id))
            fresh.update((await s.execute(stmt)).scalars())
        return fresh

    async def _park(self, msg: ConsumerRecord, error: str) -> None:
        self.parked_total.inc()
        log.error(
            "message parked",
            extra={"consumer": self.config.name, "topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
                   "error": error[:500]},
        )
        # parked payloads are masked: operators read dead letters, customers' phones stay hidden
        payload = mask_payload(msg.value.decode("utf-8", errors="replace")) if msg.value is not None else ""
        async with self.sessions() as s, s.begin():
            await s.execute(
                insert(self.tables.dead_letters).values(
                    consumer=self.config.name,
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    key=msg.key.decode("utf-8", errors="replace") if msg.key else None,
                    payload=payload,
                    error=mask_text(error[:4000]),
                    created_at=self.clock.now(),
                )
            )

    # ------------------------------------------------------------------ offsets and the broker

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets``, unless the broker no longer holds what this client committed
        before on a partition. That happens when the in-memory broker restarts empty: the
        client keeps its positions, and if the new log already reaches past them, reading on
        would silently skip its first events. Such a partition is read again from the
        broker's committed offset (the start, if it has none); the inbox drops what was
        already applied, so nothing is applied twice and nothing is skipped.

        The first commit of a partition in a session (or since it was assigned again) is
        checked too: its position came from the group's committed offset when it was
        assigned, and if the broker restarted since, the new log (which the outbox relays
        fill again at once) may reach past it. A broker holding no offset for it then means
        the partition is read once more from the start (for a group that never committed, a
        batch read twice: the inbox drops it)."""
        known = [tp for tp in offsets if tp in self._committed or tp not in self._verified]
        if known:
            held_offsets = await asyncio.gather(*(consumer.committed(tp) for tp in known))
            for tp, held in zip(known, held_offsets):
                first = tp not in self._verified
                self._verified.add(tp)
                if held is not None and held >= self._committed.get(tp, 0):
                    continue
                if first and tp not in self._committed:
                    log.info("no committed offset on the broker for this partition (a new group, or the broker "
                             "restarted empty): reading it from the start", extra={"consumer": self.config.name,
                                                                                  "partition": str(tp)})
                else:
                    log.warning("the broker lost this group's committed offset (restarted?); reading the partition "
                                "again", extra={"consumer": self.config.name, "partition": str(tp), "committed": held})
                if held is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, held)
                del offsets[tp]
                self._committed.pop(tp, None)
        if offsets:
            await consumer.commit(offsets)
            self._committed.update(offsets)
            self.lag_tracker.committed(consumer, offsets)

    async def _rewind_if_past_end(self, consumer: AIOKafkaConsumer) -> None:
        parts = list(consumer.assignment())
        if not parts:
            return
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            try:
                pos = await consumer.position(tp)
            except Exception:  # noqa: BLE001
                continue
            # The embedded broker's ListOffsets can lag the log (it reported offsets below the
            # last records of a batch), which alone would rewind a live partition every few
            # seconds; the high watermark of our last fetch is exact, so both must agree.
            hw = consumer.highwater(tp)
            if pos > ends.get(tp, 0) and (hw is None or pos > hw):
                log.warning("position past end of log (broker restarted?); rewinding", extra={"partition": str(tp)})
                consumer.seek(tp, 0)

    def _partitions_changed(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether a subscribed topic has partitions the group has not been assigned since
        the last assignment for longer than a rebalance takes — e.g. the embedded broker
        restarted empty and a producer re-created the topic with more partitions. The group
        is then joined afresh (reconnect) rather than left without those partitions."""
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


def _form(handler: Handler):
    """What groups consecutive events in a batch: the batch form, or the plain handler."""
    return handler.many if isinstance(handler, BatchingHandler) else handler


__all__ = ["AppliedHook", "BatchHandler", "BatchingHandler", "ConsumerConfig", "EventConsumer", "Handler",
           "LagTracker", "PartitionsChanged", "PermanentError", "SelectiveHandler", "TopicPartition", "batched",
           "only_when"]
