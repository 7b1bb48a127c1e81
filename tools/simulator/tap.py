"""Watching a running platform from its event stream, as any integrating system may
(docs/events.md): every order event and every fired deadline (``EventTap``), and how far
behind each consumer group is (``LagProbe``).

- **Lag in seconds** of a consumer group on a partition: 0 when its committed offset is at
  the end of what the tap has read, else the age of the oldest message it has not committed
  (now - that message's broker timestamp). A group's lag is the worst of its partitions.
- **End-to-end latency** of an order action in a downstream service: from the moment the
  action's answer arrived to the first sample at which the service's group had committed
  past the action's event (a consumer commits right after the transaction that applied the
  event: docs/events.md §4). Resolution: the probe's sampling period.
- **Deadline firing lateness**: the ``sla.deadline_fired`` event's broker timestamp minus the
  real time at which its ``due_at`` was reached on the virtual clock (``due_wall_time``: a
  due time inside a clock jump was reached when the jump was answered).

The tap reads without a consumer group (it commits nothing and joins nobody), from the start
of each topic."""
from __future__ import annotations

import asyncio
import bisect
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import msgspec

from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

log = logging.getLogger(__name__)

# consumer group -> the topics it reads (docs/events.md §2)
GROUPS: dict[str, tuple[str, ...]] = {
    "sla-timer.orders": (ORDER_EVENTS,),
    "kpi.facts": (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS),
    "notifier.orders": (ORDER_EVENTS,),
    "notifier.sla": (SLA_EVENTS,),
    "orders.deadlines": (SLA_EVENTS,),
}
# the services whose lag and end-to-end latency are reported, by their groups
LAG_OF: dict[str, tuple[str, ...]] = {
    "timers": ("sla-timer.orders",), "kpi": ("kpi.facts",), "notifier": ("notifier.orders", "notifier.sla"),
    "orders": ("orders.deadlines",),
}
# where an order action's event takes effect downstream (end-to-end latency)
DOWNSTREAM: dict[str, str] = {"timers": "sla-timer.orders", "kpi": "kpi.facts", "notifier": "notifier.orders"}


def parse_ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


@dataclass
class PartitionLog:
    """Offsets read from one partition and their broker timestamps (seconds), in order."""

    offsets: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)

    def add(self, offset: int, ts: float) -> None:
        self.offsets.append(offset)
        self.ts.append(ts)

    @property
    def end(self) -> int:
        """The offset after the last one read."""
        return self.offsets[-1] + 1 if self.offsets else 0

    def ts_from(self, offset: int) -> float | None:
        """Timestamp of the first message at or after ``offset`` (None: none read yet)."""
        i = bisect.bisect_left(self.offsets, offset)
        return self.ts[i] if i < len(self.ts) else None


class EventTap:
    """Reads ``topics`` from the start without a group. ``on_event(topic, envelope, ts)`` is
    called for each decodable envelope (``ts``: broker timestamp, seconds)."""

    def __init__(self, bootstrap: str, topics: tuple[str, ...] = (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS),
                 on_event: Callable[[str, dict, float], None] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.on_event = on_event
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        # (order id, version) -> (partition, offset) of its orders.events message
        self.order_events: dict[tuple[str, int], tuple[int, int]] = {}
        self.read = 0
        self.undecodable = 0
        self.ready = asyncio.Event()  # set once the consumer is assigned its partitions

    async def run(self, stop: asyncio.Event) -> None:
        from aiokafka import AIOKafkaConsumer

        decoder = msgspec.json.Decoder()
        consumer = AIOKafkaConsumer(*self.topics, bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    # answered within 200 ms by the embedded broker (kpi/settings.py
                                    # says how it waits); each of its polls reads every partition
                                    metadata_max_age_ms=2000, fetch_max_wait_ms=200)
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=5000)
                if consumer.assignment():
                    self.ready.set()
                for tp, records in batches.items():
                    plog = self.logs.setdefault((tp.topic, tp.partition), PartitionLog())
                    for rec in records:
                        if rec.offset < plog.end:
                            continue  # read again after a rebalance of the metadata: already known
                        ts = rec.timestamp / 1000.0
                        plog.add(rec.offset, ts)
                        self.read += 1
                        try:
                            env = decoder.decode(rec.value)
                            data = env["data"]
                        except (msgspec.DecodeError, KeyError, TypeError):
                            self.undecodable += 1
                            continue
                        if tp.topic == ORDER_EVENTS and "order_id" in data and "version" in data:
                            self.order_events.setdefault((data["order_id"], data["version"]), (tp.partition, rec.offset))
                        if self.on_event is not None:
                            self.on_event(tp.topic, env, ts)
        finally:
            await consumer.stop()

    def end(self, topic: str, partition: int) -> int:
        plog = self.logs.get((topic, partition))
        return plog.end if plog else 0


class LagProbe:
    """Samples every group's committed offsets every ``every_s`` and keeps each partition's
    history of commits (for end-to-end latencies) and each group's lag in seconds per sample.

    Offsets are read as a member of no group would: one admin ``OffsetFetch`` per group and
    sample, naming the partitions the tap has seen (the embedded broker does not answer the
    form that asks for all of a group's partitions in a form aiokafka reads; named, it does).
    One request a group rather than one a partition (28 every sample for the benchmark's five
    groups): the probe shares the measured machine and the broker."""

    def __init__(self, bootstrap: str, tap: EventTap, groups: dict[str, tuple[str, ...]] | None = None,
                 every_s: float = 0.2) -> None:
        self.bootstrap = bootstrap
        self.tap = tap
        self.groups = groups or GROUPS
        self.every_s = every_s
        # (group, topic, partition) -> commit history: sample times and committed offsets
        self.commit_t: dict[tuple[str, str, int], list[float]] = {}
        self.commit_o: dict[tuple[str, str, int], list[int]] = {}
        self.samples: dict[str, list[tuple[float, float]]] = {g: [] for g in self.groups}  # (time, lag s)
        self.backlog: dict[str, int] = {g: 0 for g in self.groups}  # messages not committed, last sample
        self.errors = 0

    async def run(self, stop: asyncio.Event) -> None:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        coordinators: dict[str, int] = {}
        try:
            while not stop.is_set():
                started = time.monotonic()
                for group, topics in self.groups.items():
                    tps = [TopicPartition(t, p) for (t, p) in list(self.tap.logs) if t in topics]
                    if not tps:
                        continue
                    try:
                        if group not in coordinators:
                            coordinators[group] = await admin.find_coordinator(group)
                        got = await admin.list_consumer_group_offsets(group, coordinators[group], partitions=tps)
                    except Exception as exc:  # noqa: BLE001 - a broker hiccup: the next sample (coordinator asked again)
                        self.errors += 1
                        coordinators.pop(group, None)
                        log.debug("offsets of %s: %r", group, exc)
                        continue
                    # a partition the group never committed: offset -1 (nothing applied yet)
                    self._sample(group, topics, {(tp.topic, tp.partition): om.offset for tp, om in got.items()
                                                 if om is not None and om.offset >= 0}, time.time())
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, self.every_s - (time.monotonic() - started)))
                except asyncio.TimeoutError:
                    pass
        finally:
            await admin.close()

    def _sample(self, group: str, topics: tuple[str, ...], committed: dict[tuple[str, int], int],
                now: float) -> None:
        worst, backlog = 0.0, 0
        for (topic, partition), plog in self.tap.logs.items():
            if topic not in topics:
                continue
            done = committed.get((topic, partition), 0)
            key = (group, topic, partition)
            hist_o = self.commit_o.setdefault(key, [])
            if not hist_o or done > hist_o[-1]:
                hist_o.append(done)
                self.commit_t.setdefault(key, []).append(now)
            if done < plog.end:
                backlog += plog.end - done
                ts = plog.ts_from(done)
                if ts is not None:
                    worst = max(worst, now - ts)
        self.samples[group].append((now, worst))
        self.backlog[group] = backlog

    def committed_at(self, group: str, topic: str, partition: int, offset: int) -> float | None:
        """When ``group`` was first seen committed past ``offset`` (None: not yet)."""
        key = (group, topic, partition)
        hist = self.commit_o.get(key)
        if not hist:
            return None
        i = bisect.bisect_right(hist, offset)
        return self.commit_t[key][i] if i < len(hist) else None

    def lag_now(self, service: str) -> float:
        return max((self.samples[g][-1][1] for g in LAG_OF[service] if g in self.samples and self.samples[g]),
                   default=0.0)

    def lag_samples(self, service: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Per sample time, the worst lag of the service's groups."""
        per_t: dict[float, float] = {}
        for g in LAG_OF[service]:
            for t, lag in self.samples.get(g, []):
                if since <= t <= until:
                    k = round(t, 1)
                    per_t[k] = max(per_t.get(k, 0.0), lag)
        return list(per_t.values())

    def caught_up(self) -> bool:
        return all(v == 0 for v in self.backlog.values())


def due_wall_time(due: float, history: list[tuple[float, float]]) -> float:
    """The real time at which virtual time ``due`` was reached, given the clock's history:
    (wall time, offset from then on), in order. Between jumps virtual = wall + offset; a due
    time inside a jump was reached when the jump was answered."""
    for i, (wall, offset) in enumerate(history):
        end = history[i + 1][0] if i + 1 < len(history) else float("inf")
        if due < wall + offset:
            return wall  # inside the jump that started this segment (or before the history)
        if due < end + offset:
            return due - offset
    return due - history[-1][1]


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]
