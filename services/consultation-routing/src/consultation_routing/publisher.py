"""Decision events leave the request path through an in-memory buffer.

The routing endpoint only appends its decision to an ``asyncio.Queue``
(``offer``, no I/O); a background task drains it and writes outbox rows in
batches (one transaction per batch), from where the outbox relay publishes them.

What this costs: decisions still in the buffer when the process dies (crash,
kill -9) are lost — at most ``decision_buffer`` of them, in practice the last
few milliseconds' worth, since the writer drains continuously. On a clean stop
the buffer is flushed before the database closes. When the buffer is full (the
database is down for a long time) new decisions are dropped and counted in
``routing_decisions_dropped_total``: routing keeps answering. Decisions are
analytics/billing input; transfers, which are business records, are written
synchronously in their own transaction.
"""
from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import datetime

from prometheus_client import Counter

from consultation_routing.domain.decision import BILLABLE_REASONS
from consultation_routing.domain.model import Consultation
from consultation_routing.domain.packages import package_for
from shared.events import Envelope

log = logging.getLogger(__name__)
PRODUCER = "consultation-routing"


def _envelope(type_: str, key: str, at: datetime, data: dict) -> Envelope:
    # Built without re-validating: the fields are produced here from validated input and
    # match the contract models (tests parse every published event with them). This is
    # the per-decision cost of the background writer, so it is kept small.
    return Envelope.model_construct(
        id=uuid.UUID(int=random.getrandbits(128), version=4), type=type_, schema_version=1, occurred_at=at,
        producer=PRODUCER, key=key, correlation_id=None, data=data)


def decision_envelopes(c: Consultation, d: dict, manufacturer_package: int | None) -> list[Envelope]:
    """``routing.decided`` plus, when the platform serves an enrolled manufacturer's customer, a billable event."""
    at: datetime = c.at
    when = at.isoformat()
    key = d["manufacturer_id"] or "platform"
    out = [_envelope("routing.decided", key, at, {
        "decision_id": d["decision_id"], "decided_at": when, "channel": d["channel"], "entry_point": c.entry_point,
        "phase": c.phase, "target": d["target"], "reason": d["reason"], "sku": c.sku,
        "manufacturer_id": d["manufacturer_id"], "category": d["category"], "queue_id": d["queue_id"],
        "customer_id": c.customer_id, "sales_order_id": c.sales_order_id, "service_order_id": c.service_order_id,
    })]
    if d["reason"] in BILLABLE_REASONS and d["manufacturer_id"]:
        out.append(_envelope("routing.billable_consultation", key, at, {
            "consultation_id": d["decision_id"], "manufacturer_id": d["manufacturer_id"],
            "package": package_for(d["category"], manufacturer_package or 1), "cause": d["reason"],
            "channel": d["channel"], "category": d["category"], "occurred_at": when,
        }))
    return out


class DecisionPublisher:
    def __init__(self, rt, state, *, capacity: int, batch: int) -> None:
        self.rt = rt
        self.state = state
        self.batch = batch
        self.queue: asyncio.Queue[tuple[Consultation, dict]] = asyncio.Queue(maxsize=capacity)
        self.dropped = Counter("routing_decisions_dropped_total", "Decisions not published (buffer full)",
                               registry=rt.metrics)
        self.written = Counter("routing_decisions_written_total", "Decisions written to the outbox",
                               registry=rt.metrics)

    def offer(self, consultation: Consultation, decision: dict) -> None:
        try:
            self.queue.put_nowait((consultation, decision))
        except asyncio.QueueFull:
            self.dropped.inc()

    async def run(self) -> None:
        try:
            while True:
                first = await self.queue.get()
                await self._write_with_retry(self._take(first))
        finally:
            await self.flush()

    def _take(self, first: tuple) -> list[tuple]:
        items = [first]
        while len(items) < self.batch:
            try:
                items.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    async def flush(self) -> None:
        """Write everything buffered now (on stop, and in tests)."""
        while not self.queue.empty():
            await self._write(self._take(self.queue.get_nowait()))

    async def _write_with_retry(self, items: list[tuple]) -> None:
        delay = 0.1
        while True:
            try:
                await self._write(items)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down; keep the batch and retry
                log.warning("writing decisions failed; retrying", extra={"error": repr(exc), "count": len(items)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write(self, items: list[tuple]) -> None:
        envelopes = []
        for c, d in items:
            m = self.state.manufacturers.get(d["manufacturer_id"]) if d["manufacturer_id"] else None
            envelopes.extend(decision_envelopes(c, d, m.package if m else None))
        # Not rt.uow(): it would wake the relay after every batch; decisions are not
        # urgent, so the relay picks them up on its next poll.
        async with self.rt.sessions() as s:
            async with s.begin():
                await self.rt.outbox.add_many(s, envelopes)
        self.written.inc(len(items))
