"""A broker that restarts empty (the embedded one keeps nothing) loses the events it had
acknowledged but not every consumer group had read. The relay notices (its marker is gone
from the broker) and sends the rows of its republish window again, in outbox order, before
anything newer; the consumers' inboxes absorb the copies. With no restart nothing goes out
twice. Real embedded broker, stopped and started again on the same port."""
import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, String, Table, func, insert, select, update

from shared import db
from shared.clock import SystemClock
from shared.consumer import ConsumerConfig, EventConsumer
from shared.events import Contract, EventRegistry, make_envelope
from shared.kafka import ProducerHandle, TopicSpec
from shared.messaging_tables import MessagingTables
from shared.outbox import Outbox, OutboxRelay
from shared.testing import eventually

TOPIC, MARKER = "republish.events", "republish.marker"
TOPICS = [TopicSpec(TOPIC, partitions=3), TopicSpec(MARKER, partitions=1)]
KEYS = ["k0", "k1", "k2", "k3"]


class N(Contract, kw_only=True):
    n: int


class Env:
    def __init__(self, broker, sessions, tables, effects, reg, is_postgres: bool) -> None:
        self.broker, self.sessions, self.tables, self.effects, self.reg = broker, sessions, tables, effects, reg
        self.is_postgres = is_postgres
        self.outbox = Outbox(tables, reg, SystemClock())
        self.next_n = 0
        self.group = f"reader-{uuid.uuid4().hex[:6]}"
        self._consumer: asyncio.Task | None = None
        self.handles: list[ProducerHandle] = []
        self.relays: list[OutboxRelay] = []

    def relay(self, *, window_s: float = 600.0, service: str = "svc") -> OutboxRelay:
        """A relay as a service replica builds it (each replica its own producer handle)."""
        handle = ProducerHandle(self.broker.bootstrap, idempotent=False, client_id=service, topics=TOPICS,
                                default_partitions=3, marker_topic=MARKER)
        self.handles.append(handle)
        relay = OutboxRelay(service=service, sessions=self.sessions, tables=self.tables, producer=handle,
                            clock=SystemClock(), is_postgres=self.is_postgres,
                            republish_window_s=window_s, marker_check_s=0, metrics=CollectorRegistry())
        self.relays.append(relay)
        return relay

    async def add(self, count: int) -> list[int]:
        """``count`` events, keys round-robin, numbered in outbox order."""
        ns = list(range(self.next_n, self.next_n + count))
        self.next_n += count
        async with self.sessions() as s, s.begin():
            await self.outbox.add_many(s, [
                make_envelope(type_="n.happened", key=KEYS[n % len(KEYS)], producer="test",
                              occurred_at=datetime.now(timezone.utc), data={"n": n}, reg=self.reg) for n in ns])
        return ns

    def start_consumer(self) -> None:
        async def on_n(session, env, data: N):
            await session.execute(insert(self.effects).values(event_id=str(env.id), key=env.key, n=data.n))

        consumer = EventConsumer(
            ConsumerConfig(name=self.group, topics=[TOPIC], bootstrap=self.broker.bootstrap, session_timeout_ms=2000),
            sessions=self.sessions, tables=self.tables, registry=self.reg, handlers={"n.happened": on_n},
            clock=SystemClock())
        self._consumer = asyncio.create_task(consumer.run())

    async def stop_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
            self._consumer = None

    async def applied(self) -> list[tuple[str, int, str]]:
        """(key, n, event id) of every applied event, in the order the consumer applied them."""
        async with self.sessions() as s:
            rows = (await s.execute(select(self.effects.c.key, self.effects.c.n, self.effects.c.event_id)
                                    .order_by(self.effects.c.id))).all()
        return [tuple(r) for r in rows]

    async def wait_applied(self, ns: list[int]) -> list[tuple[str, int, str]]:
        async def done():
            got = await self.applied()
            return got if {n for _k, n, _e in got} >= set(ns) else None

        return await eventually(done, timeout=60)

    async def on_the_topic(self, expected: int) -> list[tuple[str, int]]:
        """(key, n) of every message on the broker's topic, per partition in log order (the
        order a key's events are read in), once ``expected`` of them are there."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(TOPIC, p) for p in range(3)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[tuple[str, int]] = []
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                got = [json.loads(m.value) for msgs in (await consumer.getmany(timeout_ms=500)).values() for m in msgs]
                out += [(e["key"], e["data"]["n"]) for e in got]
                # one more fetch past the expected count: a copy would show up in it
                if (len(out) >= expected and not got) or asyncio.get_running_loop().time() > deadline:
                    return out
        finally:
            await consumer.stop()

    def restart_broker_empty(self) -> None:
        self.broker.process.kill()  # SIGKILL, as the chaos run does
        self.broker.process.wait()
        self.broker.stop()
        self.broker.start()  # same port, nothing kept: topics, records, committed offsets


@pytest.fixture
async def env(database_url, broker):
    url = await database_url("relay")
    metadata = db.new_metadata()
    tables = MessagingTables(metadata)
    effects = Table("effects", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                    Column("event_id", String(36), nullable=False), Column("key", String(20), nullable=False),
                    Column("n", Integer, nullable=False))
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reg = EventRegistry()
    reg.register("n.happened", topic=TOPIC)(N)
    e = Env(broker, db.session_factory(engine), tables, effects, reg, is_postgres=url.startswith("postgresql"))
    yield e
    await e.stop_consumer()
    for r in e.relays:
        await r.stand_down()
    for h in e.handles:
        await h.close()
    await engine.dispose()


async def drain(relay: OutboxRelay) -> int:
    """``relay.drain()`` as the relay's loop runs it: again after a failure (the first sends to
    a broker that has just come back may fail; the loop resets the producer and retries)."""
    for attempt in range(5):
        try:
            return await relay.drain()
        except Exception:  # noqa: BLE001
            if attempt == 4:
                raise
            await relay.producer.reset()
    raise AssertionError("unreachable")


def assert_once_in_order(applied: list[tuple[str, int, str]], ns: list[int]) -> None:
    """Every event applied exactly once (the inbox absorbed the copies), each key's in order."""
    assert sorted(n for _k, n, _e in applied) == sorted(ns)
    assert len({e for _k, _n, e in applied}) == len(applied)
    for key in KEYS:
        mine = [n for k, n, _e in applied if k == key]
        assert mine == sorted(mine), (key, mine)


async def test_events_acked_by_a_broker_that_restarted_empty_reach_the_consumers_in_order(env):
    relay = env.relay()
    read = await env.add(12)
    assert await relay.drain() == 12
    env.start_consumer()
    await env.wait_applied(read)
    await env.stop_consumer()  # the group committed its offsets on the old broker...
    unread = await env.add(8)
    assert await relay.drain() == 8  # ...and these were acked but never read: they die with it
    assert await relay.pending() == 0

    env.restart_broker_empty()
    after = await env.add(6)
    # the relay finds its marker gone before it sends the new rows: the window goes first
    assert await drain(relay) == 12 + 8 + 6
    assert relay.republished_total._value.get() == 20

    # on the new broker: everything once, in outbox order per key (nothing newer ahead of the older rows)
    wire = await env.on_the_topic(26)
    assert sorted(n for _k, n in wire) == read + unread + after
    for key in KEYS:
        mine = [n for k, n in wire if k == key]
        assert mine == sorted(mine), (key, mine)

    env.start_consumer()  # its group's offsets died with the broker: it reads from the start
    applied = await env.wait_applied(read + unread + after)
    assert_once_in_order(applied, read + unread + after)
    # the copies of what it had applied before were absorbed by the inbox
    async with env.sessions() as s:
        processed = await s.scalar(select(func.count()).select_from(env.tables.processed_events))
    assert processed == 26


async def test_an_idle_relay_and_a_relay_started_after_the_restart_both_notice_it(env):
    relay = env.relay()
    unread = await env.add(10)
    await relay.drain()
    env.restart_broker_empty()
    # nothing new to send: the idle check finds the broker without the marker
    assert await drain(relay) == 10
    assert relay.broker_restarts_total._value.get() == 2  # the first: a broker new to the relay

    env.restart_broker_empty()
    # a replica that never saw the old broker (started after the restart, or the service restarted
    # meanwhile): the broker keeps the marker, not the relay, so it notices just the same
    await relay.stand_down()  # the first one stopped (on PostgreSQL it held the relay's lock)
    fresh = env.relay()
    assert await drain(fresh) == 10
    env.start_consumer()
    assert_once_in_order(await env.wait_applied(unread), unread)


async def test_without_a_restart_nothing_is_sent_twice(env):
    relay = env.relay()
    ns = await env.add(10)
    assert await relay.drain() == 10
    for _ in range(3):
        assert await relay.drain() == 0  # idle checks: the marker is there
    # a replica starting on the same broker finds the marker too (once the first stood down, on
    # PostgreSQL: one relay leads at a time)
    await relay.stand_down()
    other = env.relay()
    assert await other.drain() == 0
    more = await env.add(5)
    assert await other.drain() == 5 and await relay.drain() == 0
    assert relay.broker_restarts_total._value.get() == 1  # the broker was new to it: marked, nothing to resend
    assert other.broker_restarts_total._value.get() == 0
    assert relay.republished_total._value.get() == other.republished_total._value.get() == 0
    wire = await env.on_the_topic(15)
    assert sorted(n for _k, n in wire) == ns + more  # each once


async def test_rows_sent_before_the_window_are_not_sent_again(env):
    relay = env.relay(window_s=600)
    old = await env.add(4)
    await relay.drain()
    # sent long ago (wall-clock time): consumers have read them
    ob = env.tables.outbox
    async with env.sessions() as s, s.begin():
        await s.execute(update(ob).values(published_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    recent = await env.add(3)
    await relay.drain()
    env.restart_broker_empty()
    assert await drain(relay) == 3
    wire = await env.on_the_topic(3)
    assert sorted(n for _k, n in wire) == recent and not set(old) & {n for _k, n in wire}


async def test_a_disabled_window_re_publishes_nothing(env):
    relay = env.relay(window_s=0)
    await env.add(5)
    await relay.drain()
    env.restart_broker_empty()
    after = await env.add(2)
    assert await drain(relay) == 2
    wire = await env.on_the_topic(2)
    assert sorted(n for _k, n in wire) == after


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_two_replicas_after_a_restart_one_relay_at_a_time_every_event_in_order(env):
    """PostgreSQL: both replicas' relays notice the restart; the advisory lock keeps one
    publishing at a time, so the new log holds every key's events in order (copies at most).
    Then the leader stops: the other takes over and publishes what comes next."""
    a, b = env.relay(), env.relay()
    sent = await env.add(20)
    await a.drain()
    env.restart_broker_empty()
    after = await env.add(10)
    await asyncio.gather(drain(a), drain(b))
    await asyncio.gather(drain(a), drain(b))  # whichever lost the lock goes again
    assert await a.pending() == 0
    wire = await env.on_the_topic(30)
    assert {n for _k, n in wire} == set(sent + after)
    for key in KEYS:
        first_seen: list[int] = []
        for k, n in wire:
            if k == key and n not in first_seen:
                first_seen.append(n)
        assert first_seen == sorted(first_seen), (key, first_seen)
    env.start_consumer()
    assert_once_in_order(await env.wait_applied(sent + after), sent + after)
    leader, standby = (a, b) if a._lead_conn is not None else (b, a)
    assert standby._lead_conn is None
    await leader.stand_down()
    later = await env.add(4)
    assert await drain(standby) == 4 and await leader.drain() == 0
    assert_once_in_order(await env.wait_applied(sent + after + later), sent + after + later)
    await standby.stand_down()
