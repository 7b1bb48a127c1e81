"""Decision events leave the request path through a durable journal on the routing
host's disk, and are written to the outbox by a process of their own.

The routing endpoint appends its decision to an in-memory deque (``offer``: no I/O, no
lock). A journal task of the service takes what accumulated, appends it to the decision
journal (``journal.Journal``: append-only segment files) and fsyncs it — one fsync for
everything gathered since the last one (group commit), the fsync in a worker thread so
the request loop goes on. A **billable** decision (money: the platform serves an
enrolled manufacturer's customer) is answered only after the fsync that made it
durable; it wakes the journal task at once, so it waits one fsync (~1-3 ms), not an
interval. Other decisions are answered at once and journaled within ``interval_s``.

The decision writer process (``consultation_routing.entrypoints.decision_writer``) drains the
journal: it builds the envelopes (the shared codec, ``shared.events``) and writes each
batch to the outbox as one bundle row per topic (``Outbox.add_bundle``) in one transaction, then
records how far it got (``journal.Drainer``) and tells the service how many decisions
it wrote. The per-event work thus runs on another core and under another interpreter
lock (a writer *thread* held this process's GIL for about a sixth of the time at 2,000
decisions/s). Segments are drained in order, by one writer, so events of one key stay
in order; events have deterministic ids (type + decision id), so a batch drained twice
after a crash is applied once by every consumer.

What survives what:
- the writer process dies (or is killed): nothing is lost; a new writer drains from
  the recorded position;
- the service dies (kill -9): every billable decision it answered is on disk; the next
  start drains it. Non-billable decisions answered in the last ``interval_s`` before the
  crash may be lost (analytics input; counted nowhere, as they were never journaled);
- the database is down: the writer retries; the journal grows on disk meanwhile
  (bounded by the disk, not by memory); the service keeps answering;
- the buffer is full (the journal cannot be written: disk full): new decisions are
  dropped and counted in ``routing_decisions_dropped_total``; routing keeps answering.

With each batch the writer records, in the same transaction, the decisions that involved an
enrolled manufacturer (``decisions``: what a transfer must name); the route itself never
touches the database.

Transfers, which are business records, are written synchronously in their own transaction.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections import deque
from datetime import datetime, timezone

from prometheus_client import Counter
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from consultation_routing.domain.decision import BILLABLE_REASONS
from consultation_routing.domain.model import Consultation
from consultation_routing.domain.packages import package_for
from consultation_routing.adapters.journal import Drainer, Journal
from consultation_routing.models import DecisionRow
from shared.contracts.routing import BillableConsultation, RoutingDecided
from shared.events import DecodeError, Envelope, make_envelope

log = logging.getLogger(__name__)
PRODUCER = "consultation-routing"
DECIDED, BILLABLE = "routing.decided", "routing.billable_consultation"
_IDS = uuid.UUID("6f1c1e5e-3c4b-4d8e-9a57-0b3c7a2f9d10")  # namespace of decision event ids


def _event_id(type_: str, decision_id: str) -> uuid.UUID:
    # deterministic: a journal batch drained twice (crash between commit and position) has
    # the same event ids, which every consumer's inbox applies once
    return uuid.uuid5(_IDS, f"{type_}/{decision_id}")


def is_billable(d: dict) -> bool:
    """The platform serves an enrolled manufacturer's customer (docs/kpis.md)."""
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


def decision_events(record: tuple, manufacturer_package: int | None) -> list[Envelope]:
    """``routing.decided`` plus, when the record is billable (the platform serves an enrolled
    manufacturer's customer), a billable event whose ``consultation_id`` is the decision id
    (one per consultation, see engine.decision_id_of)."""
    (at, channel, entry_point, phase, sku, customer_id, sales_order_id, service_order_id,
     decision_id, target, reason, manufacturer_id, category, queue_id, billable) = record
    if at.utcoffset():
        at = at.astimezone(timezone.utc)  # events are UTC, whatever offset the clock answered in
    key = manufacturer_id or "platform"
    out = [make_envelope(type_=DECIDED, key=key, producer=PRODUCER, occurred_at=at,
                         event_id=_event_id(DECIDED, decision_id), correlation_id=None, data=RoutingDecided(
        decision_id=decision_id, decided_at=at, channel=channel, entry_point=entry_point, phase=phase,
        target=target, reason=reason, sku=sku, manufacturer_id=manufacturer_id, category=category,
        queue_id=queue_id, customer_id=customer_id, sales_order_id=sales_order_id,
        service_order_id=service_order_id))]
    if billable:
        out.append(make_envelope(type_=BILLABLE, key=key, producer=PRODUCER, occurred_at=at,
                                 event_id=_event_id(BILLABLE, decision_id), correlation_id=None,
                                 data=BillableConsultation(
            consultation_id=decision_id, manufacturer_id=manufacturer_id,
            package=package_for(category, manufacturer_package or 1), cause=reason, channel=channel,
            category=category, occurred_at=at)))
    return out


def outbox_events(items: list[tuple[tuple, int | None]]) -> list[Envelope]:
    """The envelopes of a batch of (decision record, manufacturer package), in order. A record
    the contracts refuse (it can never be published: e.g. a time past the last UTC date) is
    logged and left out, so it never holds back the decisions after it."""
    out = []
    for record, package in items:
        try:
            out.extend(decision_events(record, package))
        except (DecodeError, OverflowError) as exc:
            log.error("decision refused by the event contracts; not published",
                      extra={"decision_id": record[8], "error": str(exc)})
    return out


def decision_rows(items: list[tuple[tuple, int | None]]) -> list[dict]:
    """The ``decisions`` rows of a batch: decisions that involved an enrolled manufacturer
    (the ones a transfer can name, or must be told apart from), one per decision id. A
    named consultation decided several times keeps a decision that sent it to the
    manufacturer's queue, if any did."""
    rows: dict[str, dict] = {}
    for record, _package in items:
        (at, channel, _e, _p, sku, _c, _sa, _so, decision_id, target, reason, manufacturer_id, category, _q,
         _b) = record
        if manufacturer_id is None:
            continue
        held = rows.get(decision_id)
        if held is not None and (held["target"] == "manufacturer" or target != "manufacturer"):
            continue
        rows[decision_id] = {"decision_id": decision_id, "manufacturer_id": manufacturer_id, "target": target,
                             "reason": reason, "channel": channel, "sku": sku, "category": category,
                             "decided_at": at}
    return list(rows.values())


_STORE_DECISION: dict[str, object] = {}


def _store_decision_stmt(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE (only a platform row, only by a manufacturer one), built
    once: executed with many parameter sets, its compiled form is cached (a multi-row VALUES
    statement would be compiled again for every batch, costing more than the rest of the write)."""
    stmt = _STORE_DECISION.get(dialect)
    if stmt is None:
        table = DecisionRow.__table__
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        stmt = _STORE_DECISION[dialect] = ins.on_conflict_do_update(
            index_elements=["decision_id"],
            set_={c.name: ins.excluded[c.name] for c in table.columns if c.name != "decision_id"},
            where=(table.c.target != "manufacturer") & (ins.excluded.target == "manufacturer"))
    return stmt


async def store_decisions(session, rows: list[dict]) -> None:
    """Insert, or replace a recorded platform decision of the same id by one to the manufacturer."""
    if rows:
        await session.execute(_store_decision_stmt(session.bind.dialect.name), rows)


async def forget_decisions(sessions, before: datetime) -> None:
    """Delete decisions older than ``before``: past the retention no transfer may name them."""
    async with sessions() as s:
        async with s.begin():
            await s.execute(delete(DecisionRow).where(DecisionRow.decided_at < before))


async def write_events(sessions, outbox, events: list[Envelope], decisions: list[dict] | None = None) -> None:
    """One transaction: the events and the decision rows. Not rt.uow(): it would wake the
    relay after every batch; decisions are not urgent, so the relay picks them up on its
    next poll."""
    async with sessions() as s:
        async with s.begin():
            await outbox.add_bundle(s, events)
            await store_decisions(s, decisions or [])


async def drain_once(drainer: Drainer, sessions, outbox, max_records: int, before_write=None) -> int:
    """Write the next decisions of the journal to the outbox (one transaction), then record
    the journal position. Returns how many were written (0: nothing to drain).
    ``before_write(items)``: e.g. the writer sets its outbox clock to the decisions' time."""
    items, positions = drainer.pending(max_records)
    if items and before_write is not None:
        before_write(items)
    if items:
        await write_events(sessions, outbox, outbox_events(items), decision_rows(items))
    if positions:
        drainer.committed(positions)
    return len(items)


WRITER_START_RETRY_S = 1.0
WRITER_STOP_TIMEOUT_S = 15.0


class DecisionPublisher:
    def __init__(self, rt, state, *, capacity: int, batch: int, interval_s: float = 0.05,
                 remember_billed: int = 100_000, journal_dir: str | None = None) -> None:
        self.rt = rt
        self.state = state
        self.capacity = capacity
        self.batch = batch
        self.interval_s = interval_s
        self.buffer: deque[tuple] = deque()  # decision_record()s
        self.journal = Journal(journal_dir) if journal_dir else None
        # Decision ids of named consultations already billed here, oldest first (bounded): a
        # repeat is not billed again. Only an economy of events — KPI keeps one billable fact
        # per consultation id whatever the replicas publish.
        self._billed: dict[str, None] = {}
        self.remember_billed = remember_billed
        self._pending = 0  # journaled, not yet written to the outbox (as far as we know)
        self._durable: asyncio.Future | None = None  # resolved by the next fsync
        self._wake: asyncio.Event | None = None
        self.dropped = Counter("routing_decisions_dropped_total",
                               "Decisions not published (buffer full or journal not writable)",
                               registry=rt.metrics)
        self.written = Counter("routing_decisions_written_total", "Decisions written to the outbox",
                               registry=rt.metrics)
        self.journaled = Counter("routing_decisions_journaled_total", "Decisions appended to the journal",
                                 registry=rt.metrics)
        self.writer_restarts = Counter("routing_decision_writer_restarts_total",
                                       "Decision writer processes started again after one ended",
                                       registry=rt.metrics)
        self._running = False
        self.written_count = 0  # decisions written to the outbox since start (the acks, counted)

    def offer(self, consultation: Consultation, decision: dict) -> "asyncio.Future | None":
        """Buffer a decision for publication (never a what-if: the route does not offer
        those). For a billable one, while the journal task runs: a future resolved once it
        is on disk — the route answers after it."""
        if len(self.buffer) >= self.capacity:
            self.dropped.inc()
            return None
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
        if billable and self._running:
            if self._durable is None:
                self._durable = asyncio.get_running_loop().create_future()
            self._wake.set()
            return self._durable
        return None

    def buffered(self) -> int:
        """Decisions not yet committed to the outbox."""
        return len(self.buffer) + self._pending

    def _take_all(self) -> list[tuple[tuple, int | None]]:
        """Everything buffered, each record with its manufacturer's package (known here, from
        the in-memory state; the writer has none)."""
        makers = self.state.manufacturers
        out = []
        buffer = self.buffer
        for _ in range(len(buffer)):
            record = buffer.popleft()
            m = makers.get(record[11]) if record[11] else None  # the manufacturer id
            out.append((record, m.package if m else None))
        return out

    async def _journal_now(self) -> int:
        """Append what is buffered and fsync it; resolves the waiting billable answers."""
        waiters, self._durable = self._durable, None
        items = self._take_all()
        try:
            if items:
                self.journal.append(items)
                await asyncio.to_thread(self.journal.sync)
                self._pending += len(items)
                self.journaled.inc(len(items))
        except OSError as exc:
            # disk full or gone: routing keeps answering; these decisions are lost and counted
            log.error("decision journal not writable; decisions dropped", extra={"error": repr(exc),
                                                                                "count": len(items)})
            self.dropped.inc(len(items))
        finally:
            if waiters is not None and not waiters.done():
                waiters.set_result(None)
        return len(items)

    # --- in this process (tests, which run no journal task or writer) -------------------------

    async def flush(self) -> None:
        """Journal and write everything buffered now; with the writer running, wait until
        it has written everything instead."""
        if self._running:
            if self._wake is not None:
                self._wake.set()
            while self.buffered():
                await asyncio.sleep(0.01)
            return
        self.journal.open()
        try:
            await self._journal_now()
        finally:
            self.journal.close()
        drainer = Drainer(self.journal.directory)
        try:
            while n := await drain_once(drainer, self.rt.sessions, self.rt.outbox,
                                        self.batch):
                self._pending = max(0, self._pending - n)
                self.written.inc(n)
                self.written_count += n
        finally:
            drainer.close()

    async def settle(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, until the decisions answered so far by this process are
        written (with their ``decisions`` rows): a transfer may name a decision answered a
        moment ago. Without the writer running (tests), journal and write them here."""
        if not self._running:
            if self.buffered():
                await self.flush()
            return
        target = self.written_count + self.buffered()
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.written_count < target and loop.time() < deadline:
            await asyncio.sleep(0.01)

    # --- the journal task and the writer process -----------------------------------------------

    async def run(self) -> None:
        """For the life of the service: journals what the route buffers, and runs (and
        restarts) the writer process; on stop (cancelled) journals the rest and lets the
        writer drain everything before it ends."""
        self.journal.open()
        self._wake = asyncio.Event()
        self._running = True
        writer = asyncio.ensure_future(self._supervise_writer())
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.interval_s)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                if await self._journal_now():
                    self._notify_writer()
        except asyncio.CancelledError:
            self._running = False
            await self._journal_now()
            self.journal.close()
            self._stopping = True
            self._notify_writer(stop=True)
            try:
                await asyncio.wait_for(asyncio.shield(writer), WRITER_STOP_TIMEOUT_S)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                writer.cancel()
            raise
        finally:
            self._running = False

    _proc = None
    _stopping = False

    def _notify_writer(self, stop: bool = False) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        try:
            if stop:
                proc.stdin.close()  # EOF: drain everything, then end
            else:
                proc.stdin.write(b"\n")
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass

    async def _supervise_writer(self) -> None:
        while True:
            proc = await self._start_writer()
            if proc is None:
                if self._stopping:
                    return
                await asyncio.sleep(WRITER_START_RETRY_S)
                continue
            self._proc = proc
            try:
                await self._read_acks(proc)
                await proc.wait()
            except asyncio.CancelledError:
                if proc.returncode is None:
                    proc.kill()
                raise
            finally:
                self._proc = None
            if self._stopping:
                if proc.returncode:
                    log.error("decision writer ended at stop with code %s", proc.returncode)
                return
            # nothing is lost: the journal keeps the decisions; a new writer drains them
            log.error("decision writer ended unexpectedly; starting another", extra={"returncode": proc.returncode})
            self.writer_restarts.inc()
            await asyncio.sleep(WRITER_START_RETRY_S)

    async def _start_writer(self):
        settings = self.rt.settings
        env = {**os.environ, "ROUTING_WRITER_DATABASE_URL": settings.database_url,
               "ROUTING_WRITER_JOURNAL_DIR": str(self.journal.directory),
               "ROUTING_WRITER_BATCH": str(self.batch),
               "ROUTING_WRITER_DECISION_RETENTION_H": str(settings.decision_retention_h),
               "ROUTING_WRITER_LOG_LEVEL": settings.log_level, "ROUTING_WRITER_LOG_JSON": str(settings.log_json),
               "ROUTING_WRITER_PRODUCTION": str(settings.environment == "production")}
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "consultation_routing.entrypoints.decision_writer",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        except OSError as exc:
            log.error("cannot start the decision writer", extra={"error": repr(exc)})
            return None

    async def _read_acks(self, proc) -> None:
        """One line per batch the writer committed: how many decisions it wrote."""
        while True:
            line = await proc.stdout.readline()
            if not line:
                return  # the writer ended
            n = int(line)
            self._pending = max(0, self._pending - n)
            self.written.inc(n)
            self.written_count += n
