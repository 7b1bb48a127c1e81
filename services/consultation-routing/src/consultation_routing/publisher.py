"""Decision events leave the request path through an in-memory buffer and are
written to the outbox by a thread of their own.

The routing endpoint only appends its decision to a deque (``offer``: no I/O, no
lock, no wake-up). A writer thread, with its own event loop and its own database
connection, takes what accumulated every ``interval_s`` and writes it to the
outbox as one bundle row (``Outbox.add_bundle_lines``: a row, not a row per event), one
transaction per batch; the outbox relay publishes its events one by one from there. The
per-event work (building envelopes, JSON encoding, binding rows, the commit) thus
never runs as a slice of the request event loop; while the writer holds the GIL
the interpreter hands it back to the request loop within ``SWITCH_INTERVAL_S``.
Decisions are written in the order they were decided, by one writer, so events of
one key stay in order.

What this costs: decisions still in the buffer when the process dies (crash,
kill -9) are lost — at most ``interval_s`` worth. On a clean stop the thread
writes what is buffered before the service closes. When the buffer is full (the
database is down for a long time) new decisions are dropped and counted in
``routing_decisions_dropped_total``: routing keeps answering. Decisions are
analytics/billing input; transfers, which are business records, are written
synchronously in their own transaction.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import threading
import uuid
from collections import deque
from datetime import datetime

from prometheus_client import Counter

from consultation_routing.domain.decision import BILLABLE_REASONS
from consultation_routing.domain.model import Consultation
from consultation_routing.domain.packages import package_for
from shared import db
from shared.outbox import bundle_line

log = logging.getLogger(__name__)
PRODUCER = "consultation-routing"
# How long a thread may keep the GIL while another waits for it (Python's default is
# 5 ms): short, so the request loop never waits long behind the writer thread.
SWITCH_INTERVAL_S = 0.0005


# Envelopes are encoded here with the C JSON encoder, not built and dumped through the
# pydantic model: this is the per-decision cost of the background writer. The output is
# an ``Envelope`` as ``model_dump_json`` writes it (compact, UTF-8, times in ISO 8601);
# tests parse every written event with ``Envelope`` and the contract models.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
DECIDED, BILLABLE = "routing.decided", "routing.billable_consultation"


def _iso(at: datetime) -> str:
    s = at.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def _envelope_json(type_: str, key: str, occurred_at: str, data: dict) -> str:
    return _ENCODE({
        "id": str(uuid.UUID(int=random.getrandbits(128), version=4)), "type": type_, "schema_version": 1,
        "occurred_at": occurred_at, "producer": PRODUCER, "key": key, "correlation_id": None, "data": data,
    })


def decision_record(c: Consultation, d: dict) -> tuple:
    """What the events of one decision need, as one flat tuple of strings, None and a
    datetime: the garbage collector stops tracking it at its first pass, so thousands
    of buffered decisions add nothing to the collector's work (a buffered Consultation
    and answer dict would be tracked, promoted and traversed until written)."""
    return (c.at, c.channel, c.entry_point, c.phase, c.sku, c.customer_id, c.sales_order_id, c.service_order_id,
            d["decision_id"], d["target"], d["reason"], d["manufacturer_id"], d["category"], d["queue_id"])


def decision_events(record: tuple, manufacturer_package: int | None) -> list[tuple[str, str, str]]:
    """(type, key, envelope JSON) of ``routing.decided`` plus, when the platform serves an
    enrolled manufacturer's customer, a billable event."""
    (at, channel, entry_point, phase, sku, customer_id, sales_order_id, service_order_id,
     decision_id, target, reason, manufacturer_id, category, queue_id) = record
    when = at.isoformat()
    occurred = _iso(at)
    key = manufacturer_id or "platform"
    out = [(DECIDED, key, _envelope_json(DECIDED, key, occurred, {
        "decision_id": decision_id, "decided_at": when, "channel": channel, "entry_point": entry_point,
        "phase": phase, "target": target, "reason": reason, "sku": sku,
        "manufacturer_id": manufacturer_id, "category": category, "queue_id": queue_id,
        "customer_id": customer_id, "sales_order_id": sales_order_id, "service_order_id": service_order_id,
    }))]
    if reason in BILLABLE_REASONS and manufacturer_id:
        out.append((BILLABLE, key, _envelope_json(BILLABLE, key, occurred, {
            "consultation_id": decision_id, "manufacturer_id": manufacturer_id,
            "package": package_for(category, manufacturer_package or 1), "cause": reason,
            "channel": channel, "category": category, "occurred_at": when,
        })))
    return out


class DecisionPublisher:
    def __init__(self, rt, state, *, capacity: int, batch: int, interval_s: float = 0.2) -> None:
        self.rt = rt
        self.state = state
        self.capacity = capacity
        self.batch = batch
        self.interval_s = interval_s
        # deque.append/popleft are atomic: the request loop appends, the writer thread pops
        self.buffer: deque[tuple] = deque()  # decision_record()s
        self._inflight = 0  # taken from the buffer by the writer, not yet committed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = Counter("routing_decisions_dropped_total", "Decisions not published (buffer full)",
                               registry=rt.metrics)
        self.written = Counter("routing_decisions_written_total", "Decisions written to the outbox",
                               registry=rt.metrics)

    def offer(self, consultation: Consultation, decision: dict) -> None:
        if len(self.buffer) >= self.capacity:
            self.dropped.inc()
            return
        self.buffer.append(decision_record(consultation, decision))

    def buffered(self) -> int:
        """Decisions not yet committed to the outbox."""
        waiting = len(self.buffer)  # read before _inflight: the writer raises it before it pops
        return waiting + self._inflight

    async def run(self) -> None:
        """Runs the writer thread for the life of the service; on stop (cancelled) the
        thread writes what is buffered, and this waits for it."""
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._stop.clear()
        self._thread = threading.Thread(target=self._thread_main, name="routing-decision-writer", daemon=True)
        self._thread.start()
        try:
            while self._thread.is_alive():
                await asyncio.sleep(1)
            log.error("decision writer thread ended unexpectedly")
        finally:
            self._stop.set()
            await asyncio.to_thread(self._thread.join)
            sys.setswitchinterval(previous)

    def _thread_main(self) -> None:
        asyncio.run(self._background())

    async def _background(self) -> None:
        engine = db.create_engine(self.rt.settings.database_url)
        try:
            await self._writer(db.session_factory(engine))
        finally:
            await engine.dispose()

    async def _writer(self, sessions) -> None:
        while True:
            stopping = self._stop.is_set()
            if stopping:
                await self._final_write(sessions)
                return
            # What accumulated, then a pause: not "until the buffer is empty", which
            # under steady traffic never happens and degenerates into a stream of tiny
            # transactions (each costing a commit and thread hops). Only a backlog of
            # full batches is written without pausing.
            if self.buffer:
                await self._write_with_retry(sessions)
            if len(self.buffer) < self.batch:
                await asyncio.sleep(self.interval_s)

    def _take(self) -> list[tuple]:
        n = min(len(self.buffer), self.batch)
        self._inflight = n
        return [self.buffer.popleft() for _ in range(n)]

    async def flush(self) -> None:
        """Write everything buffered now (tests, which run no writer thread); with the
        writer running, wait until it has written everything instead."""
        if self._thread is not None and self._thread.is_alive():
            while self.buffered():
                await asyncio.sleep(0.01)
            return
        while self.buffer:
            await self._write_once(self.rt.sessions)

    async def _final_write(self, sessions) -> None:
        try:
            while self.buffer:
                await self._write_once(sessions)
        except Exception as exc:  # noqa: BLE001 - stopping with the database down: say what is lost
            log.error("decisions not written at stop", extra={"error": repr(exc), "count": len(self.buffer)})

    async def _write_once(self, sessions) -> None:
        try:
            await self._write(sessions, self._take())
        finally:
            self._inflight = 0

    async def _write_with_retry(self, sessions) -> None:
        items = self._take()
        delay = 0.1
        try:
            while True:
                try:
                    await self._write(sessions, items)
                    return
                except Exception as exc:  # noqa: BLE001 - the database may be down; keep the batch and retry
                    log.warning("writing decisions failed; retrying", extra={"error": repr(exc), "count": len(items)})
                    if self._stop.is_set():
                        # stopping: put the batch back in front, in order, for the final write
                        self.buffer.extendleft(reversed(items))
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._inflight = 0

    async def _write(self, sessions, items: list[tuple]) -> None:
        topic_for = self.rt.registry.topic_for
        bundles: dict[str, tuple[str, list[str]]] = {}
        makers = self.state.manufacturers
        for record in items:
            m = makers.get(record[11]) if record[11] else None  # the manufacturer id
            for type_, key, env in decision_events(record, m.package if m else None):
                topic = topic_for(type_)
                bundle = bundles.get(topic)
                if bundle is None:
                    bundle = bundles[topic] = (key, [])
                bundle[1].append(bundle_line(key, env))
        # Not rt.uow(): it would wake the relay after every batch; decisions are not
        # urgent, so the relay picks them up on its next poll.
        async with sessions() as s:
            async with s.begin():
                for topic, (first_key, lines) in bundles.items():
                    await self.rt.outbox.add_bundle_lines(s, topic, first_key, lines)
        self.written.inc(len(items))
