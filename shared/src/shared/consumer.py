"""Idempotent Kafka consumer.

For each message: decode the envelope, run the handler and record the event id in
``processed_events`` in ONE transaction, commit it, then commit the Kafka offset.
A redelivered event finds its id recorded and has no second effect. A message that
cannot be decoded, has an unknown type or fails its handler repeatedly is parked
in ``dead_letters`` and the partition moves on.

Batch mode (additive): a handler wrapped with :func:`batched` also has a form that
takes many events at once. When every event fetched by one poll (all partitions) has
such a handler, they are applied in ONE transaction (inbox rows for all event ids, the
handlers' effects in bulk) and the offset is committed after the DB commit. If that
transaction fails for any reason (a poison message, a concurrent replica), the batch
is rolled back and replayed one message at a time, so a bad message is still parked
alone and the rest still applied; the inbox makes the replay exactly-once.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.masking import mask_payload, mask_text
from shared.clock import Clock
from shared.events import Envelope, EventRegistry, UnknownEventType
from shared.kafka import Kafka, consume_reconnecting, kafka_options
from shared.logging import reset_correlation_id, set_correlation_id
from shared.messaging_tables import MessagingTables

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope, BaseModel], Awaitable[None]]
# Applies events in their log order inside one transaction; must have the same effect
# as calling the single-event handler for each of them in turn.
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Envelope, BaseModel]]], Awaitable[None]]


@dataclass(frozen=True)
class BatchingHandler:
    """A handler with a batch form (see :func:`batched`); callable as a plain handler."""

    one: Handler
    many: BatchHandler

    async def __call__(self, session: AsyncSession, env: Envelope, data: BaseModel) -> None:
        await self.one(session, env, data)


def batched(one: Handler, many: BatchHandler) -> BatchingHandler:
    """Declare the batch form of a handler; consumers without batches keep calling ``one``."""
    return BatchingHandler(one, many)


class _NotBatchable(Exception):
    """The batch holds something only the one-by-one path handles (bad input, plain handler)."""


class PermanentError(Exception):
    """Raised by a handler for an event it can never apply (parked at once)."""


@dataclass
class ConsumerConfig:
    name: str  # also the consumer group id and the inbox namespace
    topics: list[str]
    bootstrap: Kafka  # the service's KafkaConnection (TLS, SASL) or a plaintext "host:port"
    session_timeout_ms: int = 10000
    max_attempts: int = 5
    retry_base_s: float = 0.1
    max_poll_records: int = 500
    # Fetched per poll when the handlers have batch forms: one transaction each.
    batch_max_poll_records: int = 2000


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
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.tables = tables
        self.registry = registry
        self.handlers = handlers
        self.clock = clock
        self.after_commit = after_commit
        self.processed_total = Counter(
            f"consumer_{config.name.replace('-', '_')}_processed_total",
            "Events applied by this consumer",
            registry=metrics,
        )
        self.duplicates_total = Counter(
            f"consumer_{config.name.replace('-', '_')}_duplicates_total",
            "Redelivered events skipped",
            registry=metrics,
        )
        self.parked_total = Counter(
            f"consumer_{config.name.replace('-', '_')}_parked_total",
            "Messages parked as dead letters",
            registry=metrics,
        )

    def client_options(self) -> dict:
        """Keyword arguments of the AIOKafkaConsumer (a subclass may tune fetch sizes and waits)."""
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
            max_poll_records=(self.config.batch_max_poll_records if self._batchable
                              else self.config.max_poll_records),
        )

    async def run(self) -> None:
        await consume_reconnecting(lambda: AIOKafkaConsumer(*self.config.topics, **self.client_options()),
                                   self._session, f"consumer {self.config.name}")

    async def _session(self, consumer: AIOKafkaConsumer) -> None:
        self._committed: dict[TopicPartition, int] = {}  # what this client committed, per partition
        self._verified: set[TopicPartition] = set()  # partitions whose first commit was checked
        await self._loop(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets``, unless the broker no longer holds what this client committed
        before on a partition. That happens when the in-memory broker restarts empty: the
        client keeps its positions, and if the new log already reaches past them, reading on
        would silently skip its first events. Such a partition is read again from the
        broker's committed offset (the start, if it has none); the inbox drops what was
        already applied, so nothing is applied twice and nothing is skipped.

        The first commit of a partition in a session is checked too: its position came from
        the group's committed offset when it was assigned, and if the broker restarted since,
        the new log (which the outbox relays fill again at once) may reach past it. A broker
        holding no offset for it then means the partition is read once more from the start
        (for a group that never committed, a batch read twice: the inbox drops it)."""
        verified = self.__dict__.setdefault("_verified", set())
        known = [tp for tp in offsets if tp in self._committed or tp not in verified]
        if known:
            theirs = await consumer._coordinator.fetch_committed_offsets(known)
            for tp in known:
                meta = theirs.get(tp)
                held = meta.offset if meta is not None and meta.offset >= 0 else None
                first = tp not in verified
                verified.add(tp)
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

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        idle_rounds = 0
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                idle_rounds += 1
                if idle_rounds % 6 == 0:
                    await self._rewind_if_past_end(consumer)
                continue
            idle_rounds = 0
            # Batch mode: everything fetched (all partitions) in one transaction, then the offsets.
            everything = [m for messages in batches.values() for m in messages]
            if self._batchable and len(everything) > 1 and await self.handle_batch(everything):
                await self._commit(consumer, {tp: messages[-1].offset + 1 for tp, messages in batches.items()})
                continue
            for tp, messages in batches.items():
                for msg in messages:
                    await self.handle_record(msg)
                await self._commit(consumer, {tp: messages[-1].offset + 1})

    @property
    def _batchable(self) -> bool:
        return any(isinstance(h, BatchingHandler) for h in self.handlers.values())

    def _decode_for_batch(self, msg: ConsumerRecord) -> tuple[Envelope, BaseModel, BatchingHandler] | None:
        """The parsed event, None for a known type this consumer skips; raises
        _NotBatchable for anything that needs the one-by-one path (parking)."""
        try:
            env = Envelope.from_bytes(msg.value)
        except Exception:  # noqa: BLE001 - the one-by-one path parks it
            raise _NotBatchable from None
        handler = self.handlers.get(env.type)
        if handler is None:
            if not self.registry.is_known(env.type, env.schema_version) and not self._known_type(env.type):
                raise _NotBatchable
            return None
        if not isinstance(handler, BatchingHandler):
            raise _NotBatchable
        try:
            data = self.registry.parse_data(env)
        except Exception:  # noqa: BLE001 - the one-by-one path parks it
            raise _NotBatchable from None
        return env, data, handler

    async def handle_batch(self, messages: list[ConsumerRecord]) -> bool:
        """Apply fetched messages (log order within each partition) in one transaction.
        False (nothing applied) when the caller must replay them one by one instead."""
        try:
            decoded = [d for d in (self._decode_for_batch(m) for m in messages) if d is not None]
        except _NotBatchable:
            return False
        if not decoded:
            return True
        pe = self.tables.processed_events
        try:
            async with self.sessions() as s:
                async with s.begin():
                    ids = list({str(env.id) for env, _, _ in decoded})
                    seen: set[str] = set()
                    for k in range(0, len(ids), 1000):  # bounded IN lists
                        seen.update((await s.scalars(select(pe.c.event_id).where(
                            pe.c.consumer == self.config.name, pe.c.event_id.in_(ids[k:k + 1000])))).all())
                    fresh: list[tuple[Envelope, BaseModel, BatchingHandler]] = []
                    for item in decoded:
                        eid = str(item[0].id)
                        if eid in seen:
                            self.duplicates_total.inc()
                            continue
                        seen.add(eid)  # the same event twice in one batch: applied once
                        fresh.append(item)
                    if not fresh:
                        return True
                    # Consecutive events sharing a batch form go to it together, in log order.
                    start = 0
                    for i in range(1, len(fresh) + 1):
                        if i == len(fresh) or fresh[i][2].many != fresh[start][2].many:
                            await fresh[start][2].many(s, [(env, data) for env, data, _ in fresh[start:i]])
                            start = i
                    now = self.clock.now()
                    await s.execute(insert(pe), [
                        {"consumer": self.config.name, "event_id": str(env.id), "event_type": env.type,
                         "processed_at": now} for env, _, _ in fresh])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolled back; the one-by-one path retries and parks
            log.warning("batch of %d failed, replaying one by one: %r", len(messages), exc,
                        extra={"consumer": self.config.name})
            return False
        self.processed_total.inc(len(fresh))
        if s.info.get("outbox_added") and self.after_commit:
            self.after_commit()
        return True

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

    async def handle_record(self, msg: ConsumerRecord) -> None:
        """Apply one record; never raises for bad input (it is parked)."""
        try:
            env = Envelope.from_bytes(msg.value)
        except Exception as exc:  # noqa: BLE001 - any undecodable message (out-of-range values too) is parked
            await self._park(msg, f"malformed envelope: {exc!r}")
            return
        handler = self.handlers.get(env.type)
        if handler is None:
            if not self.registry.is_known(env.type, env.schema_version) and not self._known_type(env.type):
                await self._park(msg, f"unknown event type {env.type!r} v{env.schema_version}")
            return  # a known type this consumer does not need
        try:
            data = self.registry.parse_data(env)
        except Exception as exc:  # noqa: BLE001 - invalid or out-of-range data is parked
            await self._park(msg, f"invalid data for {env.type} v{env.schema_version}: {exc!r}")
            return
        token = set_correlation_id(env.correlation_id)
        try:
            for attempt in range(1, self.config.max_attempts + 1):
                try:
                    await self.apply(env, data, handler)
                    return
                except PermanentError as exc:
                    await self._park(msg, f"handler refused: {exc}")
                    return
                except Exception as exc:  # noqa: BLE001
                    if attempt == self.config.max_attempts:
                        log.exception("handler failed; parking event", extra={"event_id": str(env.id)})
                        await self._park(msg, f"handler failed {attempt} times: {exc!r}")
                        return
                    await asyncio.sleep(self.config.retry_base_s * 2 ** (attempt - 1))
        finally:
            reset_correlation_id(token)

    def _known_type(self, type_: str) -> bool:
        try:
            self.registry.topic_for(type_)
            return True
        except UnknownEventType:
            return False

    async def apply(self, env: Envelope, data: BaseModel, handler: Handler) -> bool:
        """Run the handler and record the event id atomically. False if already applied."""
        pe = self.tables.processed_events
        async with self.sessions() as s:
            try:
                async with s.begin():
                    seen = await s.scalar(
                        select(pe.c.event_id).where(pe.c.consumer == self.config.name, pe.c.event_id == str(env.id))
                    )
                    if seen is not None:
                        self.duplicates_total.inc()
                        return False
                    await handler(s, env, data)
                    await s.execute(
                        insert(pe).values(
                            consumer=self.config.name,
                            event_id=str(env.id),
                            event_type=env.type,
                            processed_at=self.clock.now(),
                        )
                    )
            except IntegrityError:
                # Another replica applied it concurrently (after a rebalance): our effect rolled back.
                self.duplicates_total.inc()
                return False
        self.processed_total.inc()
        if s.info.get("outbox_added") and self.after_commit:
            self.after_commit()
        return True

    async def _park(self, msg: ConsumerRecord, error: str) -> None:
        self.parked_total.inc()
        log.error(
            "message parked",
            extra={"consumer": self.config.name, "topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "error": error[:500]},
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


__all__ = ["BatchHandler", "BatchingHandler", "ConsumerConfig", "EventConsumer", "Handler", "PermanentError",
           "TopicPartition", "batched"]
