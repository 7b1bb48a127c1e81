"""Decision events leave the request path through an in-memory buffer and are
written to the outbox by a process of their own.

The routing endpoint only appends its decision to a deque (``offer``: no I/O, no
lock, no wake-up). Every ``interval_s`` the service hands what accumulated, in
batches, to the decision writer process (``consultation_routing.decision_writer``)
through a pipe; the writer builds the envelopes, JSON-encodes them and writes each
batch to the outbox as one bundle row per topic (``Outbox.add_bundle_lines``) in
one transaction, then acknowledges it; the outbox relay publishes the events from
there. The per-event work thus runs on another core and under another interpreter
lock: a writer *thread* (the previous design) held this process's GIL for about a
sixth of the time at 2,000 decisions/s, and the request loop waited behind it (p99
at 2,000 req/s: ~33 ms with the thread, ~5 ms without it, on the benchmark
machine). Batches are written in the order they were decided, by one writer, so
events of one key stay in order.

What this costs: decisions not yet acknowledged when the process dies (crash, kill
-9) are lost — at most ``interval_s`` worth plus what the writer holds. If the
writer process dies, what it held is counted in ``routing_decisions_dropped_total``
and a new writer is started. On a clean stop everything buffered is handed over and
written before the service closes. When the buffer is full (the database is down
for a long time) new decisions are dropped and counted: routing keeps answering.
Decisions are analytics/billing input; transfers, which are business records, are
written synchronously in their own transaction.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import random
import sys
import uuid
from collections import deque
from datetime import datetime

from prometheus_client import Counter

from consultation_routing.domain.decision import BILLABLE_REASONS
from consultation_routing.domain.model import Consultation
from consultation_routing.domain.packages import package_for
from shared.outbox import bundle_line

log = logging.getLogger(__name__)
PRODUCER = "consultation-routing"
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


def is_billable(d: dict) -> bool:
    """The platform serves an enrolled manufacturer's customer (SPEC §5.5)."""
    return d["reason"] in BILLABLE_REASONS and d["manufacturer_id"] is not None


def decision_record(c: Consultation, d: dict, billable: bool | None = None) -> tuple:
    """What the events of one decision need, as one flat tuple of strings, None, a bool and
    a datetime: the garbage collector stops tracking it at its first pass, so thousands
    of buffered decisions add nothing to the collector's work (a buffered Consultation
    and answer dict would be tracked, promoted and traversed until written).
    ``billable``: whether to publish a billable event (default: ``is_billable``)."""
    return (c.at, c.channel, c.entry_point, c.phase, c.sku, c.customer_id, c.sales_order_id, c.service_order_id,
            d["decision_id"], d["target"], d["reason"], d["manufacturer_id"], d["category"], d["queue_id"],
            is_billable(d) if billable is None else billable)


def decision_events(record: tuple, manufacturer_package: int | None) -> list[tuple[str, str, str]]:
    """(type, key, envelope JSON) of ``routing.decided`` plus, when the record is billable
    (the platform serves an enrolled manufacturer's customer), a billable event whose
    ``consultation_id`` is the decision id (one per consultation, see engine.decision_id_of)."""
    (at, channel, entry_point, phase, sku, customer_id, sales_order_id, service_order_id,
     decision_id, target, reason, manufacturer_id, category, queue_id, billable) = record
    when = at.isoformat()
    occurred = _iso(at)
    key = manufacturer_id or "platform"
    out = [(DECIDED, key, _envelope_json(DECIDED, key, occurred, {
        "decision_id": decision_id, "decided_at": when, "channel": channel, "entry_point": entry_point,
        "phase": phase, "target": target, "reason": reason, "sku": sku,
        "manufacturer_id": manufacturer_id, "category": category, "queue_id": queue_id,
        "customer_id": customer_id, "sales_order_id": sales_order_id, "service_order_id": service_order_id,
    }))]
    if billable:
        out.append((BILLABLE, key, _envelope_json(BILLABLE, key, occurred, {
            "consultation_id": decision_id, "manufacturer_id": manufacturer_id,
            "package": package_for(category, manufacturer_package or 1), "cause": reason,
            "channel": channel, "category": category, "occurred_at": when,
        })))
    return out


def outbox_bundles(items: list[tuple[tuple, int | None]], topic_for) -> dict[str, tuple[str, list[str]]]:
    """topic -> (first key, bundle lines) of a batch of (decision record, manufacturer package)."""
    bundles: dict[str, tuple[str, list[str]]] = {}
    for record, package in items:
        for type_, key, env in decision_events(record, package):
            topic = topic_for(type_)
            bundle = bundles.get(topic)
            if bundle is None:
                bundle = bundles[topic] = (key, [])
            bundle[1].append(bundle_line(key, env))
    return bundles


async def write_bundles(sessions, outbox, bundles: dict[str, tuple[str, list[str]]]) -> None:
    """One transaction. Not rt.uow(): it would wake the relay after every batch; decisions
    are not urgent, so the relay picks them up on its next poll."""
    async with sessions() as s:
        async with s.begin():
            for topic, (first_key, lines) in bundles.items():
                await outbox.add_bundle_lines(s, topic, first_key, lines)


# A frame to the writer: 4-byte big-endian length, then pickle of (seq, created_at, items);
# length 0 asks it to stop. Acknowledgements come back as one line per frame: "<seq>".
FRAME_HEAD = 4
# Batches handed to the writer and not yet acknowledged, at most: beyond that (the writer
# retrying against a database that is down) decisions wait in the buffer, which is bounded.
MAX_UNACKED_BATCHES = 8
WRITER_START_RETRY_S = 1.0
WRITER_STOP_TIMEOUT_S = 15.0


def frame(seq: int, created_at: datetime, items: list) -> bytes:
    payload = pickle.dumps((seq, created_at, items), protocol=pickle.HIGHEST_PROTOCOL)
    return len(payload).to_bytes(FRAME_HEAD, "big") + payload


class DecisionPublisher:
    def __init__(self, rt, state, *, capacity: int, batch: int, interval_s: float = 0.2,
                 remember_billed: int = 100_000) -> None:
        self.rt = rt
        self.state = state
        self.capacity = capacity
        self.batch = batch
        self.interval_s = interval_s
        self.buffer: deque[tuple] = deque()  # decision_record()s
        # Decision ids of named consultations already billed here, oldest first (bounded): a
        # repeat is not billed again. Only an economy of events — KPI keeps one billable fact
        # per consultation id whatever the replicas publish.
        self._billed: dict[str, None] = {}
        self.remember_billed = remember_billed
        self._unacked: dict[int, int] = {}  # seq -> decisions in that batch, handed to the writer
        self._inflight = 0  # decisions taken from the buffer, not yet committed
        self._seq = 0
        self.dropped = Counter("routing_decisions_dropped_total",
                               "Decisions not published (buffer full, or lost with a writer process)",
                               registry=rt.metrics)
        self.written = Counter("routing_decisions_written_total", "Decisions written to the outbox",
                               registry=rt.metrics)
        self.writer_restarts = Counter("routing_decision_writer_restarts_total",
                                       "Decision writer processes started again after one ended",
                                       registry=rt.metrics)
        self._running = False

    def offer(self, consultation: Consultation, decision: dict) -> None:
        """Buffer a billable-or-not decision for publication (never a what-if: the route
        does not offer those)."""
        if len(self.buffer) >= self.capacity:
            self.dropped.inc()
            return
        billable = is_billable(decision)
        if billable and consultation.consultation_id is not None:
            did = decision["decision_id"]
            billed = self._billed
            if did in billed:
                billable = False
            else:
                if len(billed) >= self.remember_billed:
                    del billed[next(iter(billed))]
                billed[did] = None
        self.buffer.append(decision_record(consultation, decision, billable))

    def buffered(self) -> int:
        """Decisions not yet committed to the outbox."""
        return len(self.buffer) + self._inflight

    def _take(self) -> list[tuple[tuple, int | None]]:
        """The next batch, each record with its manufacturer's package (known here, from the
        in-memory state; the writer has none)."""
        makers = self.state.manufacturers
        out = []
        for _ in range(min(len(self.buffer), self.batch)):
            record = self.buffer.popleft()
            m = makers.get(record[11]) if record[11] else None  # the manufacturer id
            out.append((record, m.package if m else None))
        return out

    # --- in this process (tests, which run no writer) ---------------------------------------

    async def flush(self) -> None:
        """Write everything buffered now; with the writer running, wait until it has
        written everything instead."""
        if self._running:
            while self.buffered():
                await asyncio.sleep(0.01)
            return
        while self.buffer:
            items = self._take()
            self._inflight = len(items)
            try:
                await write_bundles(self.rt.sessions, self.rt.outbox,
                                    outbox_bundles(items, self.rt.registry.topic_for))
                self.written.inc(len(items))
            finally:
                self._inflight = 0

    # --- the writer process -------------------------------------------------------------------

    async def run(self) -> None:
        """Runs (and restarts) the writer process for the life of the service; on stop
        (cancelled) hands over what is buffered and waits until it is written."""
        self._running = True
        proc = None
        try:
            while True:
                proc = await self._start_writer()
                if proc is None:
                    await asyncio.sleep(WRITER_START_RETRY_S)
                    continue
                await self._feed(proc)  # returns only if the writer ended
                self._writer_lost(proc)
                proc = None
                self.writer_restarts.inc()
                await asyncio.sleep(WRITER_START_RETRY_S)
        except asyncio.CancelledError:
            if proc is not None:
                await self._finish(proc)
            raise
        finally:
            self._running = False

    async def _start_writer(self):
        settings = self.rt.settings
        env = {**os.environ, "ROUTING_WRITER_DATABASE_URL": settings.database_url,
               "ROUTING_WRITER_LOG_LEVEL": settings.log_level, "ROUTING_WRITER_LOG_JSON": str(settings.log_json)}
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "consultation_routing.decision_writer",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        except OSError as exc:
            log.error("cannot start the decision writer", extra={"error": repr(exc)})
            return None
        proc.acks = asyncio.ensure_future(self._read_acks(proc))
        return proc

    async def _read_acks(self, proc) -> None:
        while True:
            line = await proc.stdout.readline()
            if not line:
                return  # the writer ended
            n = self._unacked.pop(int(line), 0)
            self._inflight -= n
            self.written.inc(n)

    async def _send(self, proc, items: list) -> None:
        self._seq += 1
        self._unacked[self._seq] = len(items)
        self._inflight += len(items)
        proc.stdin.write(frame(self._seq, self.rt.clock.now(), items))
        await proc.stdin.drain()

    async def _feed(self, proc) -> None:
        """What accumulated every interval, then a pause: not "until the buffer is empty",
        which under steady traffic degenerates into a stream of tiny batches. A backlog of
        full batches is handed over without pausing."""
        while not proc.acks.done():
            try:
                while self.buffer and len(self._unacked) < MAX_UNACKED_BATCHES:
                    await self._send(proc, self._take())
                    if len(self.buffer) < self.batch:
                        break
            except (BrokenPipeError, ConnectionResetError):
                break
            await asyncio.wait([proc.acks], timeout=self.interval_s)
        await asyncio.gather(proc.acks, return_exceptions=True)

    def _writer_lost(self, proc) -> None:
        if proc.returncode is None:
            proc.kill()  # its acknowledgements stopped making sense: never leave two writers
        lost = self._inflight
        self._unacked.clear()
        self._inflight = 0
        if lost:
            self.dropped.inc(lost)
        log.error("decision writer ended unexpectedly; starting another",
                  extra={"returncode": proc.returncode, "lost": lost})

    async def _finish(self, proc) -> None:
        """Stop: hand over everything buffered, ask the writer to stop, wait for its acks."""
        try:
            while self.buffer:
                await self._send(proc, self._take())
            proc.stdin.write((0).to_bytes(FRAME_HEAD, "big"))
            await proc.stdin.drain()
            proc.stdin.close()
            await asyncio.wait_for(asyncio.gather(proc.acks, proc.wait()), WRITER_STOP_TIMEOUT_S)
        except (asyncio.TimeoutError, BrokenPipeError, ConnectionResetError) as exc:
            log.error("decision writer did not finish at stop", extra={"error": repr(exc)})
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        lost = self.buffered()  # not acknowledged: the writer could not write them (it said why)
        if lost:
            log.error("decisions not written at stop", extra={"count": lost})
            self.dropped.inc(lost)
            self.buffer.clear()
            self._unacked.clear()
            self._inflight = 0
