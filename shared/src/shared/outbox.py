"""Transactional outbox: events are inserted in the same transaction as the state
change; the relay publishes them in insertion order and marks them sent.

While the broker is down, writes still commit and events wait here; when it comes
back they go out in order (per key and overall). Only one relay per service
publishes at a time on PostgreSQL (a session advisory lock, held while it leads), which
keeps the order across replicas; the others stand by. No transaction stays open while the
broker's acks are awaited: rows are read in one short transaction, marked sent in another.

A high-volume producer (routing decisions: thousands a second) may write a
*bundle*: many events of one topic in one row (``add_bundle``), which spares the
database a row insert, an index update and a row update per event. The relay
sends a bundle's events one by one, in order, as separate messages, and marks the
row sent when all of them are acknowledged; after a failure the whole bundle is
sent again (at-least-once, like the events after a failed row).

**A broker that restarts empty** (the embedded broker keeps nothing: topics, records and
consumer groups' offsets die with it) would take with it every event it had acknowledged but
not every consumer group had read yet. So the relay leaves a marker on the broker (a committed
offset of its own group ``<service>.outbox-relay``, see ``ProducerHandle.broker_marked``) and
looks for it before and after every batch it sends, and about once a second while it is idle.
A broker without the marker is one the relay has not published to before (restarted empty, or
never used): the relay re-creates the topics with their partitions, marks every row sent in
the last ``republish_window_s`` seconds (``OUTBOX_REPUBLISH_WINDOW_S``, wall-clock time) as
unsent again, leaves its marker, and sends those rows again, in outbox order, before anything
newer, every event with its own id: the consumers' inboxes absorb the copies of what they had
already applied. Sent rows stay in the table for ``keep_sent_s`` (``OUTBOX_KEEP_SENT_S``, an hour,
never less than the window), so nothing else is kept for this; the relay deletes older ones
about once a minute (``purge``), a few thousand rows per short transaction. The marker
lives as long as the broker's data does, so the check needs no memory of its own: a relay that
starts after the restart (a new replica, the service restarted meanwhile) sees it just the
same. Rows re-published at a restart count as published at that time (they are on the new
broker only). Apache Kafka keeps committed offsets (replicated) across broker restarts: there
the marker is always found and nothing is ever re-published, except once, the first time a
relay meets a cluster (it cannot tell a new cluster from a lost one). The limit: a consumer
group still more than the window behind when the broker restarts misses what it had not read.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
import zlib
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import delete, func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock, SystemClock
from shared.db import one_of
from shared.events import Envelope, EventRegistry, encode_str
from shared.ids import new_id
from shared.kafka import ProducerHandle, TopicsMissing
from shared.messaging_tables import MessagingTables
from shared.retry import Backoff

log = logging.getLogger(__name__)
# Messages handed to the producer between two yields to the event loop (~1 ms of work).
SEND_SLICE = 64
# Messages appended to the relay's own record batches between two yields (appending is cheap).
BATCH_SLICE = 512
BUNDLE = "outbox.bundle"  # event_type of a bundle row
REPUBLISH_WINDOW_S = 600.0  # rows sent this recently go out again after the broker restarted empty
MARKER_CHECK_S = 1.0  # an idle relay looks for its marker on the broker this often
MARKER_REFRESH_S = 3600.0  # and re-commits it this often (Kafka expires offsets of memberless groups)
CHECK_WARN_S = 60.0  # at most one warning this often when the marker cannot be read
KEEP_SENT_S = 3600.0  # sent rows are deleted this long after they were sent (at least the republish window)
INBOX_KEEP_S = 7 * 86400.0  # processed event ids are kept this long (Kafka's default retention)
PURGE_EVERY_S = 60.0  # the relay deletes the sent rows past KEEP_SENT_S (and old inbox ids) this often
PURGE_CHUNK = 5000  # rows per delete (one short transaction each)
PURGE_ROUND_CHUNKS = 10  # chunks per purge round: a backlog is worked off between batches, not before them
LEAD_IDLE_TIMEOUT_S = 60.0  # PostgreSQL ends the leading relay's session after this long without a word


def murmur2(data: bytes) -> int:
    """Kafka's key hash (the Java client's ``Utils.murmur2``; what aiokafka's default
    partitioner computes), unpacking whole words at once: the same value, at a fraction
    of aiokafka's byte-by-byte cost."""
    length = len(data)
    m = 0x5BD1E995
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail, rest = length & ~3, length & 3
    if rest >= 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h = ((h ^ data[tail]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: list[int]) -> int:
    """The partition the Kafka default partitioner picks for a (non-null) key."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def bundle_line(key: str, envelope_json: str) -> str:
    """One event of a bundle: its key as a JSON string, a tab, the envelope's JSON
    (JSON text never holds a raw tab or newline, so the split is unambiguous)."""
    return f"{json.dumps(key)}\t{envelope_json}"


def bundle_payload(envelopes: list[Envelope]) -> str:
    """One line per event (``bundle_line``)."""
    return "\n".join(bundle_line(e.key, encode_str(e)) for e in envelopes)


def bundle_messages(payload: str) -> list[tuple[str, str]]:
    """(key, envelope JSON) of each event in a bundle row, in order."""
    out = []
    for line in payload.split("\n"):
        key, _, value = line.partition("\t")
        out.append((json.loads(key), value))
    return out


def row_messages(event_type: str, key: str, payload: str) -> list[tuple[str, str]]:
    """(key, envelope JSON) of each event an outbox row holds: one, or a bundle's."""
    return bundle_messages(payload) if event_type == BUNDLE else [(key, payload)]


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
                payload=encode_str(envelope),
                created_at=self.clock.now(),
                attempts=0,
            )
        )
        session.info["outbox_added"] = True

    async def add_many(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """Several envelopes in one statement (executemany): for batched producers."""
        if not envelopes:
            return
        await session.execute(insert(self.tables.outbox), self.rows(envelopes))
        session.info["outbox_added"] = True

    def rows(self, envelopes: list[Envelope]) -> list[dict]:
        """The outbox rows (column -> value) of these envelopes, as ``add_many`` inserts them:
        for a producer that writes them in a statement of its own, in its own transaction."""
        now = self.clock.now()
        return [
            {
                "event_id": str(e.id),
                "topic": self.registry.topic_for(e.type),
                "key": e.key,
                "event_type": e.type,
                "payload": encode_str(e),
                "created_at": now,
                "attempts": 0,
            }
            for e in envelopes
        ]

    async def add_bundle(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """Many events in as few rows as possible: one bundle row per topic, events in order."""
        by_topic: dict[str, list[Envelope]] = {}
        for e in envelopes:
            by_topic.setdefault(self.registry.topic_for(e.type), []).append(e)
        if not by_topic:
            return
        now = self.clock.now()
        await session.execute(
            insert(self.tables.outbox),
            [
                {
                    "event_id": new_id(),
                    "topic": topic,
                    "key": events[0].key,
                    "event_type": BUNDLE,
                    "payload": bundle_payload(events),
                    "created_at": now,
                    "attempts": 0,
                }
                for topic, events in by_topic.items()
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
        republish_window_s: float = REPUBLISH_WINDOW_S,
        marker_check_s: float = MARKER_CHECK_S,
        wall_clock: Clock | None = None,
        keep_sent_s: float = KEEP_SENT_S,
        purge_every_s: float = PURGE_EVERY_S,
        inbox_keep_s: float = INBOX_KEEP_S,
    ) -> None:
        if keep_sent_s < republish_window_s:
            raise ValueError(f"sent outbox rows must be kept at least the republish window ({republish_window_s} s)")
        if inbox_keep_s < republish_window_s:
            raise ValueError(f"processed event ids must be kept at least the republish window ({republish_window_s} s)")
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
        self._lead_conn = None  # the connection holding the relay's lock while it leads (PostgreSQL)
        self._retry = Backoff(0.2, 5.0)  # after a failed send (docs/events.md § 4)
        self._delay = 0.0
        # published_at is wall-clock time, not the service clock: the window is about how long
        # consumers may lag, and a virtual clock's jumps would empty it.
        self.wall_clock = wall_clock or SystemClock()
        self.republish_window_s = republish_window_s
        self.keep_sent_s = keep_sent_s
        self.inbox_keep_s = inbox_keep_s
        self.purge_every_s = purge_every_s
        self._next_purge = time.monotonic() + purge_every_s
        self.marker_check_s = marker_check_s
        self._republish = False  # the broker lost the marker: the window goes out again
        self._next_check = 0.0  # monotonic time of the next idle marker check
        self._marked_at: float | None = None  # monotonic time the relay last committed its marker
        self._check_warned_at = -CHECK_WARN_S
        self._partition_cache: dict[tuple[str, bytes], int] = {}
        self._partitions_known: dict[str, list[int]] = {}
        self.published_total = Counter(
            "outbox_published_total", "Events published from the outbox", registry=metrics
        )
        self.pending_gauge = Gauge("outbox_pending", "Outbox rows waiting to be published (a bundle counts once)",
                                   registry=metrics)
        self.oldest_age_gauge = Gauge("outbox_oldest_pending_age_seconds",
                                      "Age of the oldest outbox row not yet published (0 when the outbox is empty)",
                                      registry=metrics)
        self.failures_total = Counter(
            "outbox_publish_failures_total", "Failed outbox publish attempts", registry=metrics
        )
        self.broker_restarts_total = Counter(
            "outbox_broker_restarts_total", "Brokers found without the relay's marker (restarted empty)",
            registry=metrics,
        )
        self.republished_total = Counter(
            "outbox_republished_rows_total", "Sent outbox rows marked unsent again after a broker restart",
            registry=metrics,
        )
        self.purged_total = Counter(
            "outbox_purged_rows_total", "Sent outbox rows deleted after OUTBOX_KEEP_SENT_S", registry=metrics,
        )
        self.inbox_purged_total = Counter(
            "inbox_purged_rows_total", "Processed event ids deleted after INBOX_KEEP_S", registry=metrics,
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self.stand_down()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(self.poll_interval_s, self._delay))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.drain()
                self._retry.reset()
                self._delay = 0.0
                if time.monotonic() >= self._next_purge:
                    done = max(await self.purge(), await self.purge_inbox())
                    # a full round: more may be waiting, and the next round follows the next batch
                    more = done >= PURGE_ROUND_CHUNKS * PURGE_CHUNK
                    self._next_purge = time.monotonic() + (0.0 if more else self.purge_every_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must survive any broker/DB failure
                self.failures_total.inc()
                self._delay = self._retry.next_delay()
                log.warning("outbox publish failed; will retry in %.1fs: %r", self._delay, exc)
                await self.producer.reset()

    async def purge(self) -> int:
        """Delete the rows sent more than ``keep_sent_s`` ago (wall-clock), ``PURGE_CHUNK`` at a
        time, each chunk its own short transaction (found through the index on
        (published_at, id)), at most ``PURGE_ROUND_CHUNKS`` chunks a round: a large backlog
        (a first start after an upgrade) is deleted round by round between the relay's batches
        rather than holding them up. Unsent rows are never touched. Replicas may purge side by
        side: a row deleted twice is deleted once. Returns how many rows were deleted."""
        ob = self.tables.outbox
        cutoff = self.wall_clock.now() - timedelta(seconds=self.keep_sent_s)
        chunk = (select(ob.c.id).where(ob.c.published_at.is_not(None), ob.c.published_at < cutoff)
                 .order_by(ob.c.published_at).limit(PURGE_CHUNK).scalar_subquery())
        total = await self._delete_round(delete(ob).where(ob.c.id.in_(chunk)), self.purged_total)
        if total:
            log.info("outbox: deleted %d rows sent before %s", total, cutoff.isoformat(), extra={"rows": total})
        return total

    async def purge_inbox(self) -> int:
        """Delete the ids of events applied more than ``inbox_keep_s`` ago (wall-clock, the time
        ``processed_at`` is stamped with), of every consumer of the service, as ``purge`` does:
        chunks of ``PURGE_CHUNK`` through the index on ``processed_at``, ``PURGE_ROUND_CHUNKS``
        at most a round. An id is what makes a redelivered event a no-op: it must outlive every
        way the event can come back (the broker's retention, the republish window). Returns how
        many ids were deleted."""
        pe = self.tables.processed_events
        cutoff = self.wall_clock.now() - timedelta(seconds=self.inbox_keep_s)
        chunk = (select(pe.c.consumer, pe.c.event_id).where(pe.c.processed_at < cutoff)
                 .order_by(pe.c.processed_at).limit(PURGE_CHUNK))
        total = await self._delete_round(delete(pe).where(tuple_(pe.c.consumer, pe.c.event_id).in_(chunk)),
                                         self.inbox_purged_total)
        if total:
            log.info("inbox: deleted %d event ids applied before %s", total, cutoff.isoformat(), extra={"rows": total})
        return total

    async def _delete_round(self, chunk_delete, counter) -> int:
        """Run ``chunk_delete`` (a DELETE of at most ``PURGE_CHUNK`` rows) until it deletes fewer,
        each its own short transaction, ``PURGE_ROUND_CHUNKS`` times at most; counted in ``counter``."""
        total = 0
        for _ in range(PURGE_ROUND_CHUNKS):
            async with self.sessions() as s, s.begin():
                n = max((await s.execute(chunk_delete)).rowcount or 0, 0)
            total += n
            counter.inc(n)
            if n < PURGE_CHUNK:
                break
        return total

    async def drain(self) -> int:
        """Publish everything pending; returns how many events were published."""
        total = 0
        while True:
            n, more = await self._publish_batch()
            total += n
            if not more and not await self._check_when_idle():
                return total

    # ---- a broker that restarted empty
    @property
    def detects_restarts(self) -> bool:
        return self.republish_window_s > 0 and hasattr(self.producer, "broker_marked")

    async def _marked(self) -> bool:
        """Whether the broker still holds the relay's marker. A failure to tell (the broker
        away: the sends will say so; or the group not allowed) counts as yes: it must not
        stop the relay, only this check."""
        try:
            return await self.producer.broker_marked()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            now = time.monotonic()
            if now - self._check_warned_at >= CHECK_WARN_S:
                self._check_warned_at = now
                log.warning("outbox relay cannot read its marker on the broker (restarts go unnoticed): %r", exc)
            return True

    def _restarted(self, when: str) -> None:
        if not self._republish:
            self._republish = True
            self.broker_restarts_total.inc()
            log.info("the broker does not hold the outbox relay's marker (%s): new, or restarted empty; the rows "
                     "sent in the last %.0f s go out again", when, self.republish_window_s)

    async def _lost_us(self, topics: set[str]) -> bool:
        """Make sure ``topics`` exist; True when the broker restarted empty (the relay then
        republishes before sending anything else)."""
        missing = None
        try:
            await self.producer.ensure_present(topics)
        except TopicsMissing as exc:
            missing = exc
        if self.detects_restarts and not await self._marked():
            self._restarted("topics missing" if missing else "checked with a batch")
            return True
        if missing is not None:
            raise missing
        return False

    async def _check_when_idle(self) -> bool:
        """About once a second while nothing is pending: is the marker still there? True when
        the broker restarted (the caller drains again: the window is pending now)."""
        if not self.detects_restarts:
            return False
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.marker_check_s
        try:
            async with asyncio.timeout(5):
                try:
                    await self.producer.ensure_present({self.producer.marker_topic})
                except TopicsMissing:
                    pass
                marked = await self.producer.broker_marked()
                if marked and (self._marked_at is None or now - self._marked_at >= MARKER_REFRESH_S):
                    await self.producer.mark_broker()
                    self._marked_at = now
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the broker away: look again a little later
            log.debug("outbox relay marker check failed: %r", exc)
            self._next_check = now + max(5.0, self.marker_check_s)
            return False
        if not marked:
            self._restarted("checked while idle")
        return self._republish

    async def _republish_window(self) -> bool:
        """Mark every row sent in the window as unsent again (the normal batches then send
        them, in outbox order, before newer rows), then leave the marker. Returns False when
        another replica holds the relay's lock (it will find the broker unmarked itself)."""
        # the topics first, with their partitions (a consumer asking about a missing topic may
        # have had it auto-created with the broker's default count)
        await self.producer.ensure_all_present()
        if await self.producer.broker_marked():
            # another replica of the relay got there first (the marker follows the reset)
            self._republish = False
            return True
        ob = self.tables.outbox
        since = self.wall_clock.now() - timedelta(seconds=self.republish_window_s)
        if not await self._lead():
            return False
        async with self.sessions() as s, s.begin():
            n = (await s.execute(update(ob).where(ob.c.published_at >= since).values(published_at=None))).rowcount
        # Marked only now: a relay dying before this leaves the broker unmarked, and the next
        # one republishes again (copies, never a loss).
        await self.producer.mark_broker()
        if not await self.producer.broker_marked():
            raise RuntimeError("the broker does not keep the outbox relay's marker")
        self._marked_at = time.monotonic()
        self._republish = False
        n = max(n or 0, 0)
        self.republished_total.inc(n)
        if n:
            log.warning("the broker restarted empty: %d outbox rows sent since %s go out again, in order",
                        n, since.isoformat(), extra={"rows": n})
        return True

    async def pending(self) -> int:
        async with self.sessions() as s:
            n = await s.scalar(
                select(func.count()).select_from(self.tables.outbox).where(self.tables.outbox.c.published_at.is_(None))
            )
        self.pending_gauge.set(n or 0)
        return n or 0

    async def backlog(self) -> tuple[int, float]:
        """(rows waiting, age in seconds of the oldest): refreshes both gauges (the runtime's
        metrics sampler calls it every METRICS_REFRESH_S; the index on (published_at, id)
        finds the oldest row at once)."""
        ob = self.tables.outbox
        n = await self.pending()
        async with self.sessions() as s:
            oldest = await s.scalar(select(ob.c.created_at).where(ob.c.published_at.is_(None))
                                    .order_by(ob.c.id).limit(1))
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        self.oldest_age_gauge.set(age)
        return n, age

    async def _publish_batch(self) -> tuple[int, bool]:
        """One batch: at most ``batch_size`` rows, and no more rows than make
        ``batch_size`` events (a bundle bigger than that goes alone). Returns the events
        published and whether more may be waiting.

        The rows are read in a transaction of their own, over before the broker is waited on,
        and marked sent in another: an open transaction would hold back PostgreSQL's cleanup
        horizon for the whole database (the read's portal keeps its snapshot) for as long as
        the acks take, leaving every table's dead rows and index entries in place for the
        service's other work to step over."""
        if self._republish and not await self._republish_window():
            return 0, False
        if not await self._lead():
            return 0, False
        ob = self.tables.outbox
        async with self.sessions() as s:
            selected = (
                await s.execute(
                    select(ob.c.id, ob.c.topic, ob.c.key, ob.c.event_type, ob.c.payload)
                    .where(ob.c.published_at.is_(None))
                    .order_by(ob.c.id)
                    .limit(self.batch_size)
                )
            ).all()
        if not selected:
            self.pending_gauge.set(0)
            self.oldest_age_gauge.set(0)
            return 0, False
        rows, messages = [], []
        for row in selected:
            msgs = row_messages(row.event_type, row.key, row.payload)
            if rows and len(messages) + len(msgs) > self.batch_size:
                break
            rows.append(row)
            messages.append(msgs)
        more = len(selected) == self.batch_size or len(rows) < len(selected)
        producer = await self.producer.get()
        topics = {row.topic for row in rows}
        if await self._lost_us(topics):
            return 0, True  # the window first: nothing newer before the rows the broker lost
        sent, error = await self._send(producer, rows, messages)
        if error is None and await self._lost_us(topics):
            # Acked, but by a broker that restarted meanwhile: nothing is marked sent, and
            # the batch goes out again after the window.
            return 0, True
        failed_id = rows[len(sent)].id if error is not None and len(sent) < len(rows) else None
        # Only the unbroken prefix is marked: everything after a failure is sent again,
        # in order, so no key ever sees a later event before an earlier one.
        if sent or failed_id is not None:
            async with self.sessions() as s, s.begin():
                if sent:
                    await s.execute(update(ob).where(one_of(s, ob.c.id, sent))
                                    .values(published_at=self.wall_clock.now()))
                if failed_id is not None:
                    await s.execute(
                        update(ob)
                        .where(ob.c.id == failed_id)
                        .values(attempts=ob.c.attempts + 1, last_error=repr(error)[:2000])
                    )
        published = sum(len(m) for m in messages[: len(sent)])
        self.published_total.inc(published)
        if error is not None:
            raise error
        return published, more

    # ---- one relay per service at a time (PostgreSQL)
    async def _lead(self) -> bool:
        """Whether this relay may publish. On PostgreSQL one replica's relay publishes at a
        time: the one holding the service's session advisory lock, on a connection it keeps
        for as long as it leads (idle between batches: no transaction, no snapshot). If that
        connection dies, PostgreSQL releases the lock and a standby takes over at its next
        poll; the leader notices at its next batch and stands by in turn. SQLite: one
        process, always."""
        if not self.is_postgres:
            return True
        if self._lead_conn is not None:
            try:
                await self._lead_conn.exec_driver_sql("SELECT 1")  # the lock lives with the connection
                await self._lead_conn.commit()
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the connection is gone, and the lock with it
                log.warning("outbox relay lost its lock connection; trying to lead again: %r", exc)
                await self.stand_down()
        engine = self.sessions.kw["bind"]
        conn = await engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock_key})
            if got and conn.dialect.server_version_info >= (14,):
                # A leader whose host vanished leaves a half-open connection, and with it the lock,
                # until TCP notices (hours). It checks its connection at every poll, so an idle
                # minute means it is gone: PostgreSQL ends the session and a standby takes over.
                await conn.exec_driver_sql(f"SET idle_session_timeout = '{int(LEAD_IDLE_TIMEOUT_S)}s'")
            await conn.commit()  # ends the statements' transaction; a session lock and setting outlive it
        except BaseException:
            await conn.invalidate()
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._lead_conn = conn
        log.info("outbox relay leads for %s", self.service)
        return True

    async def stand_down(self) -> None:
        """Release the lead: the connection is closed, not pooled (a pooled connection would
        keep the session lock)."""
        conn, self._lead_conn = self._lead_conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass

    async def _send(self, producer, rows, messages) -> tuple[list[int], Exception | None]:
        """Hand every message to the producer, then wait for all the acks, under one
        deadline for the whole batch (a send to a broker that came back empty can wait
        forever inside the client; past the deadline the relay resets the producer and
        re-creates topics). Returns the ids of the unbroken prefix of rows whose messages
        were all acked, and the first error."""
        if hasattr(producer, "send_batch"):
            return await self._send_batches(producer, rows, messages)
        futures: list[list[asyncio.Future]] = []
        error: Exception | None = None
        handed = 0
        try:
            async with asyncio.timeout(self.send_timeout_s):
                for row, msgs in zip(rows, messages):
                    row_futures: list[asyncio.Future] = []
                    futures.append(row_futures)
                    topic = row.topic
                    for key, value in msgs:
                        row_futures.append(await producer.send(topic, value=value.encode(), key=key.encode()))
                        handed += 1
                        if handed % SEND_SLICE == 0:
                            # send() does not yield while the client's buffer has room: give the
                            # event loop back now and then so requests never wait behind a batch
                            await asyncio.sleep(0)
                pending = [f for fs in futures for f in fs]
                if pending:
                    await asyncio.wait(pending)
        except TimeoutError:
            error = TimeoutError("send timed out" if handed < sum(map(len, messages)) else "no ack in time")
        except Exception as exc:  # noqa: BLE001 - reported below, after the acked prefix is known
            error = exc
        # a message never handed over stands as None (the row is then not sent)
        return _acked_prefix(rows, [fs + [None] * (len(msgs) - len(fs)) for fs, msgs in zip(futures, messages)],
                             error)

    async def _send_batches(self, producer, rows, messages) -> tuple[list[int], Exception | None]:
        """:meth:`_send` through the client's record-batch API: the relay appends each
        message to a record batch of its partition (the partition ``send`` would pick:
        the default partitioner's hash of the key) and hands over whole batches, one
        future per batch instead of a coroutine, a partition lookup and a future per
        message. Batches of a partition are handed over in order and the client keeps a
        partition's batches in order, so the order per key (and per partition) is the
        same as message by message; a row counts as sent when every batch holding one
        of its messages is acked."""
        slots: list[list[list]] = []  # per row: the batch slots ([future or None]) holding its messages
        error: Exception | None = None
        open_: dict[tuple[str, int], tuple] = {}  # (topic, partition) -> (builder, slot)
        parts: dict[str, list[int]] = {}
        cache = self._partition_cache
        if len(cache) > 100_000:
            cache.clear()

        async def hand_over(topic: str, partition: int, builder, slot: list) -> None:
            builder.close()  # closed: no linger, and nothing else appends to it
            slot[0] = await producer.send_batch(builder, topic, partition=partition)

        try:
            async with asyncio.timeout(self.send_timeout_s):
                appended = 0
                for row, msgs in zip(rows, messages):
                    row_slots: list[list] = []
                    slots.append(row_slots)
                    topic = row.topic
                    if topic not in parts:
                        parts[topic] = sorted(await producer.partitions_for(topic))
                        if self._partitions_known.setdefault(topic, parts[topic]) != parts[topic]:
                            cache.clear()  # the topic was re-created with another partition count
                            self._partitions_known[topic] = parts[topic]
                    for key, value in msgs:
                        kb = key.encode()
                        p = cache.get((topic, kb))
                        if p is None:
                            p = cache[(topic, kb)] = key_partition(kb, parts[topic])
                        cur = open_.get((topic, p))
                        if cur is None:
                            cur = open_[(topic, p)] = (producer.create_batch(), [None])
                        if cur[0].append(key=kb, value=value.encode(), timestamp=None) is None:
                            # full: hand it over and start the partition's next batch
                            await hand_over(topic, p, *cur)
                            cur = open_[(topic, p)] = (producer.create_batch(), [None])
                            cur[0].append(key=kb, value=value.encode(), timestamp=None)
                        if not row_slots or row_slots[-1] is not cur[1]:
                            row_slots.append(cur[1])
                        appended += 1
                        if appended % BATCH_SLICE == 0:
                            await asyncio.sleep(0)
                for (topic, p), cur in list(open_.items()):
                    del open_[(topic, p)]
                    await hand_over(topic, p, *cur)
                pending = {slot[0] for row_slots in slots for slot in row_slots if slot[0] is not None}
                if pending:
                    await asyncio.wait(pending)
        except TimeoutError:
            error = TimeoutError("send timed out" if open_ else "no ack in time")
        except Exception as exc:  # noqa: BLE001 - reported below, after the acked prefix is known
            error = exc
        return _acked_prefix(rows, [[slot[0] for slot in row_slots] for row_slots in slots], error)


def _acked_prefix(rows, handed: list[list], error: Exception | None) -> tuple[list[int], Exception | None]:
    """The ids of the unbroken prefix of rows whose every future (one per message, or per
    record batch holding a message of the row) is acked, and the first error. ``handed[i]``
    holds row i's futures, None where one was never handed over; rows past the end of
    ``handed`` were not reached."""
    sent: list[int] = []
    for row, futures in zip(rows, handed):
        failure = None
        for fut in futures:
            if fut is None:
                failure = error or RuntimeError("row not fully sent")
            elif not fut.done():
                failure = error or TimeoutError("no ack in time")
            elif fut.cancelled() or fut.exception() is not None:
                failure = error or (RuntimeError("send cancelled") if fut.cancelled() else fut.exception())
            if failure is not None:
                break
        if failure is not None:
            error = failure
            break
        sent.append(row.id)
    for futures in handed[len(sent):]:
        for fut in futures:
            if fut is not None:
                # retrieve late failures so they are not reported as never retrieved
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())
    if len(sent) < len(rows) and error is None:
        error = RuntimeError("batch not fully sent")
    return sent, error
