"""The in-memory state the decision reads: catalogue, enrollments, live queues.

Loaded from the database at start, refreshed incrementally (rows whose
``updated_at`` moved) every ``refresh_interval_s``, and updated at once by this
replica's own writes. ``age()`` is the time since the last successful refresh,
measured on a monotonic clock: past ``max_state_age_s`` the decisions degrade."""
from __future__ import annotations

import gc
import logging
import time as _time
from datetime import datetime, time, timedelta, timezone
from typing import Callable

from sqlalchemy import select

from consultation_routing.domain.model import Manufacturer, QueueState, Sku
from consultation_routing.models import ManufacturerRow, QueueStateRow, SkuRow

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


class RoutingState:
    def __init__(self, sessions, monotonic: Callable[[], float] = _time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.sessions = sessions
        self.monotonic = monotonic
        self.now = now
        self.skus: dict[str, Sku] = {}
        self.manufacturers: dict[str, Manufacturer] = {}
        self.queues: dict[str, QueueState] = {}
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
            for model in (ManufacturerRow, SkuRow, QueueStateRow):
                table = model.__table__
                stmt = select(table)
                if since is not None:
                    stmt = stmt.where(table.c.updated_at > since)
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
        return {ManufacturerRow: self._apply_manufacturer, SkuRow: self._apply_sku, QueueStateRow: self._apply_queue}

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
