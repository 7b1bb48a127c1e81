"""Transactional outbox: events are inserted in the same transaction as the state
change; the relay publishes them in insertion order and marks them sent.

While the broker is down, writes still commit and events wait here; when it comes
back they go out in order (per key and overall). Only one relay per service
publishes at a time on PostgreSQL (advisory lock), which keeps the order across
replicas; the others stand by.
"""
from __future__ import annotations

import asyncio
import logging
import zlib

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock
from shared.events import Envelope, EventRegistry
from shared.kafka import ProducerHandle
from shared.messaging_tables import MessagingTables

log = logging.getLogger(__name__)
# Rows handed to the producer between two yields to the event loop (~1 ms of work).
SEND_SLICE = 64


class Outbox:
    """Writes envelopes into the outbox table inside the caller's transaction."""

    def __init__(self, tables: MessagingTables, registry: EventRegistry, clock: Clock) -> None:
        self.tables = tables
        self.registry = registry
        self.clock = clock

    async def add(self, session: AsyncSession, envelope: Envelope, *, topic: str | None = None) -> None:
        await session.execute(
            insert(self.tables.outbox).values(
                event_id=str(envelope.id),
                topic=topic or self.registry.topic_for(envelope.type),
                key=envelope.key,
                event_type=envelope.type,
                payload=envelope.model_dump_json(),
                created_at=self.clock.now(),
                attempts=0,
            )
        )
        session.info["outbox_added"] = True

    async def add_many(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """Several envelopes in one statement (executemany): for batched producers."""
        if not envelopes:
            return
        now = self.clock.now()
        await session.execute(
            insert(self.tables.outbox),
            [
                {
                    "event_id": str(e.id),
                    "topic": self.registry.topic_for(e.type),
                    "key": e.key,
                    "event_type": e.type,
                    "payload": e.model_dump_json(),
                    "created_at": now,
                    "attempts": 0,
                }
                for e in envelopes
            ],
        )
        session.info["outbox_added"] = True


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        producer: ProducerHandle,
        clock: Clock,
        is_postgres: bool,
        poll_interval_s: float = 0.5,
        batch_size: int = 500,
        send_timeout_s: float = 10.0,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self.service = service
        self.sessions = sessions
        self.tables = tables
        self.producer = producer
        self.clock = clock
        self.is_postgres = is_postgres
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.send_timeout_s = send_timeout_s
        self._wake = asyncio.Event()
        self._lock_key = zlib.crc32(f"outbox:{service}".encode()) & 0x7FFFFFFF
        self._backoff = 0.0
        self.published_total = Counter(
            "outbox_published_total", "Events published from the outbox", registry=metrics
        )
        self.pending_gauge = Gauge("outbox_pending", "Events waiting in the outbox", registry=metrics)
        self.failures_total = Counter(
            "outbox_publish_failures_total", "Failed outbox publish attempts", registry=metrics
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(self.poll_interval_s, self._backoff))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.drain()
                self._backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must survive any broker/DB failure
                self.failures_total.inc()
                self._backoff = min(5.0, max(0.2, self._backoff * 2))
                log.warning("outbox publish failed; will retry in %.1fs: %r", self._backoff, exc)
                await self.producer.reset()

    async def drain(self) -> int:
        """Publish everything pending; returns how many were published."""
        total = 0
        while True:
            n = await self._publish_batch()
            total += n
            if n < self.batch_size:
                return total

    async def pending(self) -> int:
        async with self.sessions() as s:
            n = await s.scalar(
                select(func.count()).select_from(self.tables.outbox).where(self.tables.outbox.c.published_at.is_(None))
            )
        self.pending_gauge.set(n or 0)
        return n or 0

    async def _publish_batch(self) -> int:
        ob = self.tables.outbox
        async with self.sessions() as s, s.begin():
            if self.is_postgres:
                got = await s.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key})
                if not got:
                    return 0
            rows = (
                await s.execute(
                    select(ob.c.id, ob.c.topic, ob.c.key, ob.c.payload)
                    .where(ob.c.published_at.is_(None))
                    .order_by(ob.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                self.pending_gauge.set(0)
                return 0
            producer = await self.producer.get()
            topics = {row.topic for row in rows}
            await self.producer.ensure_present(topics)
            sent, error = await self._send(producer, rows)
            if error is None:
                # Acked, but were they acked by a broker that still has the topics?
                await self.producer.ensure_present(topics)
            failed_id = rows[len(sent)].id if error is not None and len(sent) < len(rows) else None
            # Only the unbroken prefix is marked: everything after a failure is sent again,
            # in order, so no key ever sees a later event before an earlier one.
            if sent:
                await s.execute(update(ob).where(ob.c.id.in_(sent)).values(published_at=self.clock.now()))
            if failed_id is not None:
                await s.execute(
                    update(ob)
                    .where(ob.c.id == failed_id)
                    .values(attempts=ob.c.attempts + 1, last_error=repr(error)[:2000])
                )
        self.published_total.inc(len(sent))
        if error is not None:
            raise error
        return len(sent)

    async def _send(self, producer, rows) -> tuple[list[int], Exception | None]:
        """Hand every row to the producer, then wait for all the acks, under one deadline
        for the whole batch (a send to a broker that came back empty can wait forever
        inside the client; past the deadline the relay resets the producer and re-creates
        topics). Returns the ids of the unbroken acked prefix and the first error: only
        that prefix is marked, everything after a failure is sent again, in order, so no
        key ever sees a later event before an earlier one."""
        futures: list[asyncio.Future] = []
        error: Exception | None = None
        try:
            async with asyncio.timeout(self.send_timeout_s):
                for i, row in enumerate(rows, 1):
                    futures.append(await producer.send(row.topic, value=row.payload.encode(), key=row.key.encode()))
                    if i % SEND_SLICE == 0:
                        # send() does not yield while the client's buffer has room: give the
                        # event loop back now and then so requests never wait behind a batch
                        await asyncio.sleep(0)
                if futures:
                    await asyncio.wait(futures)
        except TimeoutError:
            error = TimeoutError("send timed out" if len(futures) < len(rows) else "no ack in time")
        except Exception as exc:  # noqa: BLE001 - reported below, after the acked prefix is known
            error = exc
        sent: list[int] = []
        for row, fut in zip(rows, futures):
            if not fut.done():
                error = error or TimeoutError("no ack in time")
                break
            exc = None if fut.cancelled() else fut.exception()
            if fut.cancelled() or exc is not None:
                error = error or exc or RuntimeError("send cancelled")
                break
            sent.append(row.id)
        for fut in futures[len(sent):]:
            # retrieve late failures so they are not reported as never retrieved
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        if len(sent) < len(rows) and error is None:
            error = RuntimeError("batch not fully sent")
        return sent, error
