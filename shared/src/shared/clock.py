"""Clocks. Production uses the system clock. Tests and the demo use a virtual
clock (real time plus an offset) that can be moved forward; the offset is
announced on the ``platform.clock`` topic so every running service sees it."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
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
    """Real time shifted by an offset that only moves forward.

    The offset is the sum of the advances announced on ``platform.clock`` (one
    partition, so every service applies them in the same order; advances add up, so
    two made at once on two services are both kept), raised to at least any snapshot
    announced there (a restarted service or a restarted in-memory broker re-announces the
    offset it had) and to ``floor`` (the offset this service had when it last stopped)."""

    virtual = True

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._floor = offset.total_seconds()
        self._log = 0.0
        self._offset = offset
        self.seq = 0  # announcements applied
        self._applied: dict[str, None] = {}  # recent advance ids, oldest first
        self._changed = asyncio.Event()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def _settle(self) -> bool:
        new = timedelta(seconds=max(self._floor, self._log))
        moved = new > self._offset
        if moved:
            self._offset = new
        self.seq += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return moved

    def apply_advance(self, seconds: float, advance_id: str) -> bool:
        """An announced advance: adds to the offset (once per id)."""
        if seconds < 0 or advance_id in self._applied:
            return False
        self._applied[advance_id] = None
        if len(self._applied) > 10_000:
            self._applied.pop(next(iter(self._applied)))
        self._log += seconds
        return self._settle()

    def apply_snapshot(self, offset_seconds: float) -> bool:
        """An announced offset (a restart re-announcing what it had): never moves back."""
        self._log = max(self._log, offset_seconds)
        return self._settle()

    def raise_floor(self, offset_seconds: float) -> bool:
        self._floor = max(self._floor, offset_seconds)
        return self._settle()

    def advance(self, delta: timedelta) -> tuple[float, int]:
        """Move this clock alone (unit tests); services announce advances instead."""
        if delta < timedelta(0):
            raise ValueError("the virtual clock only moves forward")
        self.apply_advance(delta.total_seconds(), uuid.uuid4().hex)
        return self._offset.total_seconds(), self.seq

    async def wait_applied(self, advance_id: str, timeout: float) -> bool:
        """Wait until the listener applied this advance (read back from the topic)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while advance_id not in self._applied:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return True


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


def advance_announcement(seconds: float, advance_id: str, by: str) -> bytes:
    return json.dumps({"kind": "advance", "seconds": seconds, "id": advance_id, "by": by}).encode()


def snapshot_announcement(offset_seconds: float, by: str) -> bytes:
    return json.dumps({"kind": "snapshot", "offset_seconds": offset_seconds, "by": by}).encode()


def apply_announcement(clock: VirtualClock, raw: bytes) -> bool:
    body = json.loads(raw)
    if body.get("kind") == "advance":
        return clock.apply_advance(float(body["seconds"]), str(body["id"]))
    return clock.apply_snapshot(float(body["offset_seconds"]))


class ClockStateFile:
    """Where a service keeps its virtual offset across restarts (``CLOCK_STATE_FILE``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> float:
        try:
            return float(json.loads(self.path.read_text())["offset_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def save(self, offset_seconds: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"offset_seconds": offset_seconds}))
        os.replace(tmp, self.path)


class ClockListener:
    """Follows ``platform.clock`` from the beginning (no consumer group: every
    replica of every service must see every announcement).

    ``announce(bytes)`` publishes on the topic: at start (when this service had an offset
    before) and whenever the log turns out shorter than it was (the in-memory broker
    restarted empty), the service re-announces its offset as a snapshot, so services that
    start later find it. ``state`` keeps the offset across this service's restarts."""

    def __init__(self, clock: VirtualClock, kafka, announce=None, state: ClockStateFile | None = None,
                 name: str = "service") -> None:
        self.clock = clock
        self.kafka = kafka  # shared.kafka.Kafka: the service's connection or a plaintext address
        self.announce = announce
        self.state = state
        self.name = name
        if state is not None:
            clock.raise_floor(state.load())

    async def _reannounce(self) -> None:
        offset = self.clock.offset.total_seconds()
        if self.announce is None or offset <= 0:
            return
        try:
            await self.announce(snapshot_announcement(offset, self.name))
        except Exception as exc:  # noqa: BLE001 - retried at the next restart detection
            log.warning("clock snapshot not announced", extra={"error": repr(exc)})

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from shared.kafka import consume_reconnecting, kafka_options

        tp = TopicPartition(CLOCK_TOPIC, 0)

        def make():
            return AIOKafkaConsumer(**kafka_options(self.kafka), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", metadata_max_age_ms=3000)

        async def follow(consumer) -> None:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            await self._reannounce()
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                moved = False
                for msg in batch.get(tp, []):
                    try:
                        moved = apply_announcement(self.clock, msg.value) or moved
                    except Exception as exc:  # noqa: BLE001 - a bad announcement is skipped
                        log.warning("bad clock announcement skipped", extra={"error": repr(exc)})
                if moved:
                    log.info("virtual clock moved", extra={"offset_seconds": self.clock.offset.total_seconds()})
                    if self.state is not None:
                        self.state.save(self.clock.offset.total_seconds())
                end = (await consumer.end_offsets([tp]))[tp]
                if await consumer.position(tp) > end:
                    # The in-memory broker restarted: its log is shorter than where we were.
                    await consumer.seek_to_beginning(tp)
                    await self._reannounce()

        await consume_reconnecting(make, follow, "clock listener")
