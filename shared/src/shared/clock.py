"""Clocks. Production uses the system clock. Tests and the demo use a virtual
clock (real time plus an offset) that can be moved forward; the offset is
announced on the ``platform.clock`` topic so every running service sees it."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
CLOCK_TOPIC = "platform.clock"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    virtual = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class VirtualClock:
    """Real time shifted by an offset that only moves forward."""

    virtual = True

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self.seq = 0
        self._changed = asyncio.Event()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def apply(self, offset_seconds: float, seq: int) -> bool:
        """Apply an announced offset; stale or backward announcements are ignored."""
        new = timedelta(seconds=offset_seconds)
        if seq <= self.seq and new <= self._offset:
            return False
        if new < self._offset:
            return False
        self._offset, self.seq = new, max(seq, self.seq)
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    def advance(self, delta: timedelta) -> tuple[float, int]:
        if delta < timedelta(0):
            raise ValueError("the virtual clock only moves forward")
        self.apply((self._offset + delta).total_seconds(), self.seq + 1)
        return self._offset.total_seconds(), self.seq


class ManualClock:
    """A clock that stands still until told; for unit tests."""

    virtual = True

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, value: datetime) -> None:
        self._now = value


def to_beijing(value: datetime) -> datetime:
    return value.astimezone(BEIJING)


def announcement(offset_seconds: float, seq: int, by: str) -> bytes:
    return json.dumps({"offset_seconds": offset_seconds, "seq": seq, "by": by}).encode()


class ClockListener:
    """Follows ``platform.clock`` from the beginning (no consumer group: every
    replica of every service must see every announcement)."""

    def __init__(self, clock: VirtualClock, bootstrap: str) -> None:
        self.clock = clock
        self.bootstrap = bootstrap

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from shared.kafka import consume_reconnecting

        tp = TopicPartition(CLOCK_TOPIC, 0)

        def make():
            return AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", metadata_max_age_ms=3000)

        async def follow(consumer) -> None:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, []):
                    try:
                        body = json.loads(msg.value)
                        if self.clock.apply(float(body["offset_seconds"]), int(body["seq"])):
                            log.info("virtual clock moved", extra={"offset_seconds": body["offset_seconds"]})
                    except Exception as exc:  # noqa: BLE001 - a bad announcement is skipped
                        log.warning("bad clock announcement skipped", extra={"error": repr(exc)})
                end = (await consumer.end_offsets([tp]))[tp]
                if await consumer.position(tp) > end:
                    # The in-memory broker restarted: its log is shorter than where we were.
                    await consumer.seek_to_beginning(tp)

        await consume_reconnecting(make, follow, "clock listener")
