"""The in-memory state the decision reads: catalogue, enrollments, live queues, and the
service orders (order → SKU) of the last ``order_lookup``.

Loaded from the database at start, refreshed incrementally (rows whose
``updated_at`` moved) every ``refresh_interval_s``, and updated at once by this
replica's own writes. ``age()`` is the time since the last successful refresh,
measured on a monotonic clock: past ``max_state_age_s`` the decisions degrade."""
from __future__ import annotations

import asyncio
import gc
import logging
import time as _time
from datetime import datetime, time, timedelta, timezone
from typing import Callable

from sqlalchemy import delete, select

from consultation_routing.domain.model import Manufacturer, OrderSku, QueueState, Sku
from consultation_routing.models import ManufacturerRow, OrderSkuRow, QueueStateRow, SkuRow

log = logging.getLogger(__name__)

# Each refresh reads rows stamped since the previous refresh started, less this
# margin: rows committed late (stamped before that start) and small clock skew
# between replicas are still caught.
OVERLAP = timedelta(seconds=5)


def _hm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def manufacturer_from_row(r) -> Manufacturer:
    return Manufacturer(
        id=r.id,
        name=r.name,
        categories=frozenset(r.categories),
        hours={ch: (_hm(v[0]), _hm(v[1])) for ch, v in r.hours.items()},
        im_queue_id=r.im_queue_id,
        phone_extension=r.phone_extension,
        min_agents=r.min_agents,
        max_queue_length=r.max_queue_length,
        max_expected_wait_s=r.max_expected_wait_s,
        serve_non_working_days=r.serve_non_working_days,
        disqualified=r.disqualified,
        package=r.package,
        hover_text=r.hover_text,
    )


# Forgetting old service orders visits this many entries between two yields to the event loop.
PRUNE_CHUNK = 10_000


class RoutingState:
    def __init__(self, sessions, monotonic: Callable[[], float] = _time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 order_lookup: timedelta = timedelta(days=180)) -> None:
        self.sessions = sessions
        self.monotonic = monotonic
        self.now = now
        self.skus: dict[str, Sku] = {}
        self.manufacturers: dict[str, Manufacturer] = {}
        self.queues: dict[str, QueueState] = {}
        # service order id → its SKU; sales order id → the SKU of its latest service order
        self.order_skus: dict[str, OrderSku] = {}
        self.sales_order_skus: dict[str, OrderSku] = {}
        self.order_lookup = order_lookup
        self.loaded_mono: float | None = None
        self._last_start: datetime | None = None

    def age(self) -> float:
        """Seconds since the last successful refresh (infinite before the first)."""
        if self.loaded_mono is None:
            return float("inf")
        return self.monotonic() - self.loaded_mono

    async def refresh(self) -> int:
        """Read what changed since the last refresh (everything the first time)."""
        started, started_at = self.monotonic(), self.now()
        since = None if self._last_start is None else self._last_start - OVERLAP
        n = 0
        async with self.sessions() as s:
            for model in (ManufacturerRow, SkuRow, QueueStateRow, OrderSkuRow):
                table = model.__table__
                stmt = select(table)
                if since is not None:
                    stmt = stmt.where(table.c.updated_at > since)
                if model is OrderSkuRow:
                    stmt = stmt.where(table.c.created_at >= started_at - self.order_lookup)
                apply = self._appliers[model]
                for row in (await s.execute(stmt)).all():
                    apply(row)
                    n += 1
        self._last_start = started_at
        self.loaded_mono = started
        if n > 1000:
            # Long-lived state: keep it out of the collector's full passes, which would
            # otherwise stall requests for a noticeable fraction of a second.
            gc.collect()
            gc.freeze()
        return n

    @property
    def _appliers(self) -> dict:
        return {ManufacturerRow: self._apply_manufacturer, SkuRow: self._apply_sku, QueueStateRow: self._apply_queue,
                OrderSkuRow: self._apply_order}

    def _apply_order(self, row) -> None:
        self.put_orders([OrderSku(row.service_order_id, row.sales_order_id, row.sku, row.created_at)])

    def _apply_sku(self, row) -> None:
        self.skus[row.sku] = Sku(row.sku, row.manufacturer_id, row.category)

    def _apply_manufacturer(self, row) -> None:
        self.manufacturers[row.id] = manufacturer_from_row(row)

    def _apply_queue(self, row) -> None:
        self.queues[row.manufacturer_id] = QueueState(row.agents_online, row.queue_length, row.expected_wait_s,
                                                      row.reported_at)

    def put_manufacturer(self, m: Manufacturer) -> None:
        self.manufacturers[m.id] = m

    def put_skus(self, skus: list[Sku]) -> None:
        for s in skus:
            self.skus[s.sku] = s

    def put_queue(self, manufacturer_id: str, q: QueueState) -> None:
        self.queues[manufacturer_id] = q

    def put_orders(self, orders: list[OrderSku]) -> None:
        """Remember service orders; a sales order resolves to its latest service order's SKU
        (by creation time, then id: the same whatever order the events arrive in)."""
        by_sales = self.sales_order_skus
        for o in orders:
            self.order_skus[o.service_order_id] = o
            cur = by_sales.get(o.sales_order_id)
            if cur is None or (o.created_at, o.service_order_id) >= (cur.created_at, cur.service_order_id):
                by_sales[o.sales_order_id] = o

    def order_sku(self, service_order_id: str | None, sales_order_id: str | None) -> str | None:
        """The SKU a consultation's service order (first) or sales order names, if known."""
        o = self.order_skus.get(service_order_id) if service_order_id is not None else None
        if o is None and sales_order_id is not None:
            o = self.sales_order_skus.get(sales_order_id)
        return None if o is None else o.sku

    async def forget_old_orders(self) -> int:
        """Drop service orders created more than ``order_lookup`` ago, from memory (in
        chunks, yielding to the event loop between them: the route keeps answering) and
        from the table. Returns how many left memory."""
        cutoff = self.now() - self.order_lookup
        n = 0
        entries = list(self.order_skus.values())
        for i in range(0, len(entries), PRUNE_CHUNK):
            for o in entries[i:i + PRUNE_CHUNK]:
                if o.created_at < cutoff:
                    if self.order_skus.get(o.service_order_id) is o:
                        del self.order_skus[o.service_order_id]
                        n += 1
                    if self.sales_order_skus.get(o.sales_order_id) is o:
                        # the latest of its sales order is old: so are all the others
                        del self.sales_order_skus[o.sales_order_id]
            await asyncio.sleep(0)
        async with self.sessions() as s:
            async with s.begin():
                await s.execute(delete(OrderSkuRow).where(OrderSkuRow.created_at < cutoff))
        return n
