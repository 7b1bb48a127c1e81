"""The idempotent consumer on the real broker: a redelivered envelope has one
effect; malformed and unknown messages are parked and the partition moves on."""
import asyncio
import uuid
from collections import namedtuple
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer
import msgspec
from sqlalchemy import Column, Integer, String, Table, func, insert, select

from shared import db
from shared.clock import SystemClock
from shared.consumer import ConsumerConfig, EventConsumer, PermanentError, batched, only_when
from shared.events import Contract, EventRegistry, make_envelope
from shared.kafka import TopicSpec, ensure_topics
from shared.messaging_tables import MessagingTables
from shared.testing import eventually

TOPIC = "test.events"


class Ping(Contract, kw_only=True):
    n: int


def build(url: str):
    metadata = db.new_metadata()
    tables = MessagingTables(metadata)
    effects = Table("effects", metadata, Column("id", Integer, primary_key=True), Column("event_id", String(36)))
    engine = db.create_engine(url)
    return metadata, tables, effects, engine


@pytest.fixture
async def setup(database_url, broker):
    url = await database_url("consumer")
    metadata, tables, effects, engine = build(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reg = EventRegistry()
    reg.register("test.ping", topic=TOPIC)(Ping)
    sessions = db.session_factory(engine)

    async def on_ping(session, env, data: Ping):
        if data.n < 0:
            raise PermanentError("negative pings are never valid")
        await session.execute(insert(effects).values(event_id=str(env.id)))

    consumer = EventConsumer(
        ConsumerConfig(name=f"test-{uuid.uuid4().hex[:6]}", topics=[TOPIC], bootstrap=broker.bootstrap, session_timeout_ms=2000),
        sessions=sessions, tables=tables, registry=reg, handlers={"test.ping": on_ping}, clock=SystemClock(),
    )
    await ensure_topics(broker.bootstrap, [TopicSpec(TOPIC)], default_partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    task = asyncio.create_task(consumer.run())
    yield reg, sessions, tables, effects, producer
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await producer.stop()
    await engine.dispose()


def ping(reg, n: int):
    return make_envelope(type_="test.ping", key="k", producer="test", occurred_at=datetime.now(timezone.utc),
                         data={"n": n}, reg=reg)


async def count(sessions, table):
    async with sessions() as s:
        return await s.scalar(select(func.count()).select_from(table))


async def test_same_envelope_twice_has_one_effect(setup):
    reg, sessions, tables, effects, producer = setup
    env = ping(reg, 1)
    await producer.send_and_wait(TOPIC, env.to_bytes(), key=b"k")
    await producer.send_and_wait(TOPIC, env.to_bytes(), key=b"k")
    marker = ping(reg, 2)
    await producer.send_and_wait(TOPIC, marker.to_bytes(), key=b"k")
    await eventually(lambda: _has_effect(sessions, effects, marker.id))
    assert await count(sessions, effects) == 2  # env once + marker
    assert await count(sessions, tables.processed_events) == 2


async def _has_effect(sessions, effects, event_id):
    async with sessions() as s:
        return await s.scalar(select(effects.c.id).where(effects.c.event_id == str(event_id)))


async def test_bad_messages_are_parked_and_the_partition_moves_on(setup):
    reg, sessions, tables, effects, producer = setup
    unknown = msgspec.structs.replace(ping(reg, 1), type="test.nobody_knows")
    invalid = msgspec.structs.replace(ping(reg, 1), data={"n": "not a number"})
    refused = ping(reg, -1)
    for raw in (b"{not json", b'{"id": "x"}', unknown.to_bytes(), invalid.to_bytes(), refused.to_bytes()):
        await producer.send_and_wait(TOPIC, raw, key=b"k")
    good = ping(reg, 7)
    await producer.send_and_wait(TOPIC, good.to_bytes(), key=b"k")
    await eventually(lambda: _has_effect(sessions, effects, good.id))
    async with sessions() as s:
        parked = (await s.execute(select(tables.dead_letters.c.error).order_by(tables.dead_letters.c.id))).scalars().all()
    assert len(parked) == 5
    assert parked[0].startswith("malformed envelope") and parked[1].startswith("malformed envelope")
    assert parked[2].startswith("unknown event type 'test.nobody_knows'")
    assert parked[3].startswith("invalid data for test.ping")
    assert parked[4].startswith("handler refused: negative pings")
    assert await count(sessions, effects) == 1


async def test_batch_mode_one_transaction_dedupes_and_parks_a_poison_message_alone(database_url, broker):
    """Messages fetched together go through the batch form in one transaction; a batch
    holding a poison message is replayed one by one: it alone is parked, the rest applied."""
    url = await database_url("consumer-batch")
    metadata, tables, effects, engine = build(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reg = EventRegistry()
    reg.register("test.ping", topic=TOPIC)(Ping)
    sessions = db.session_factory(engine)
    batch_sizes: list[int] = []

    async def one(session, env, data: Ping):
        if data.n < 0:
            raise PermanentError("negative pings are never valid")
        await session.execute(insert(effects).values(event_id=str(env.id)))

    async def many(session, items):
        batch_sizes.append(len(items))
        for env, data in items:
            if data.n < 0:
                raise PermanentError("negative pings are never valid")
        await session.execute(insert(effects), [{"event_id": str(env.id)} for env, _ in items])

    topic = f"test.batch.{uuid.uuid4().hex[:6]}"
    await ensure_topics(broker.bootstrap, [TopicSpec(topic)], default_partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=50)
    await producer.start()
    # Round 1: 20 good pings, one of them twice, all produced before the consumer starts.
    good = [ping(reg, i) for i in range(20)]
    for env in [*good, good[3]]:
        await producer.send(topic, env.to_bytes(), key=b"k")
    await producer.flush()
    consumer = EventConsumer(
        ConsumerConfig(name=f"test-{uuid.uuid4().hex[:6]}", topics=[topic], bootstrap=broker.bootstrap,
                       session_timeout_ms=2000),
        sessions=sessions, tables=tables, registry=reg, handlers={"test.ping": batched(one, many)},
        clock=SystemClock(),
    )
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _has_effect(sessions, effects, good[-1].id))
        assert await count(sessions, effects) == 20 and await count(sessions, tables.processed_events) == 20
        assert max(batch_sizes) > 1  # really applied as a batch
        # Round 2: a poison message in the middle of a batch; the good ones around it still land.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        second = [ping(reg, 100 + i) for i in range(10)]
        for env in [*second[:5], ping(reg, -1), good[0], *second[5:]]:  # good[0] is a redelivery
            await producer.send(topic, env.to_bytes(), key=b"k")
        await producer.flush()
        task = asyncio.create_task(consumer.run())
        await eventually(lambda: _has_effect(sessions, effects, second[-1].id))
        async with sessions() as s:
            parked = (await s.execute(select(tables.dead_letters.c.error))).scalars().all()
        assert parked == ["handler refused: negative pings are never valid"]
        assert await count(sessions, effects) == 30 and await count(sessions, tables.processed_events) == 30
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        await engine.dispose()


class _FakeClient:
    """What ``EventConsumer._commit`` uses of the Kafka client: the broker's committed
    offsets (here: what the test says the broker holds), seeks and commits."""

    def __init__(self, held: dict) -> None:
        self.held = held
        self.commits: list[dict] = []
        self.seeks: list[tuple] = []

    async def committed(self, tp):
        return self.held.get(tp)

    async def commit(self, offsets):
        self.commits.append(dict(offsets))
        self.held.update(offsets)

    async def seek_to_beginning(self, tp):
        self.seeks.append((tp, "beginning"))

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def assignment(self):
        return set(self.held)

    def highwater(self, tp):
        return None


async def test_a_partition_whose_committed_offset_the_broker_lost_is_read_again_not_skipped():
    """After the in-memory broker restarts empty, the client still holds its old positions;
    its new log may already reach past them. Before committing, the consumer sees that the
    broker lost (or moved back) what it committed, and reads that partition again instead."""
    from aiokafka.structs import TopicPartition

    a, b, c = (TopicPartition(TOPIC, p) for p in range(3))
    consumer = EventConsumer(ConsumerConfig(name="t", topics=[TOPIC], bootstrap="unused"), sessions=None,
                             tables=None, registry=EventRegistry(), handlers={}, clock=SystemClock())
    client = _FakeClient(held={a: 2, b: 3})
    await consumer._commit(client, {a: 5, b: 7})  # the group's offsets are there: committed as is
    assert client.commits == [{a: 5, b: 7}] and client.seeks == []
    # the broker restarts: a's offset is gone, b's is older than ours (lost, then re-set lower)
    client.held = {b: 2, c: 1}
    await consumer._commit(client, {a: 6, b: 9, c: 4})
    assert client.seeks == [(a, "beginning"), (b, 2)]
    assert client.commits[-1] == {c: 4}  # only the partition the broker still agrees on
    # from there on, a and b are committed again as they are read
    await consumer._commit(client, {a: 1, b: 3})
    assert client.commits[-1] == {a: 1, b: 3} and len(client.seeks) == 2


async def test_a_first_commit_on_a_broker_without_the_groups_offset_reads_the_partition_from_the_start():
    """The position a partition was assigned at came from the group's committed offset; if
    the broker restarted empty before this client's first commit on it, the new log (filled
    again by the relays at once) may already reach past that position. No offset on the
    broker at the first commit: the partition is read from the start, then committed."""
    from aiokafka.structs import TopicPartition

    a, b = (TopicPartition(TOPIC, p) for p in range(2))
    consumer = EventConsumer(ConsumerConfig(name="t", topics=[TOPIC], bootstrap="unused"), sessions=None,
                             tables=None, registry=EventRegistry(), handlers={}, clock=SystemClock())
    client = _FakeClient(held={b: 40})
    await consumer._commit(client, {a: 150, b: 45})
    assert client.seeks == [(a, "beginning")] and client.commits == [{b: 45}]
    # read again from the start: committed from then on
    await consumer._commit(client, {a: 20})
    assert client.commits[-1] == {a: 20} and len(client.seeks) == 1


async def test_a_revoked_partition_is_checked_again_at_its_next_first_commit():
    """The rebalance listener (public aiokafka API) forgets what this client committed on a
    partition it loses: when the partition comes back, its first commit is checked against
    the broker again (another member may have moved it, or the broker restarted)."""
    from aiokafka.structs import TopicPartition

    a = TopicPartition(TOPIC, 0)
    consumer = EventConsumer(ConsumerConfig(name="t", topics=[TOPIC], bootstrap="unused"), sessions=None,
                             tables=None, registry=EventRegistry(), handlers={}, clock=SystemClock())
    client = _FakeClient(held={a: 3})
    await consumer._commit(client, {a: 5})
    assert client.commits == [{a: 5}]
    await consumer._listener.on_partitions_revoked({a})
    client.held = {}  # meanwhile the broker lost the group's offset
    await consumer._commit(client, {a: 9})
    assert client.seeks == [(a, "beginning")] and client.commits == [{a: 5}]


Record = namedtuple("Record", "topic partition offset timestamp value key headers")  # a fetched message


async def offline(database_url, name: str):
    """Tables, registry, sessions and an effect-writing handler (batch form and single form) for
    a consumer fed records directly (no broker)."""
    metadata, tables, effects, engine = build(await database_url(name))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reg = EventRegistry()
    reg.register("test.ping", topic=TOPIC)(Ping)
    sessions = db.session_factory(engine)

    async def many(session, items):
        await session.execute(insert(effects), [{"event_id": str(env.id)} for env, _ in items])

    async def one(session, env, data):
        await many(session, [(env, data)])

    return reg, sessions, tables, effects, engine, one, many


async def test_the_applied_hook_sees_only_the_events_applied_now(database_url):
    """``on_applied`` (e.g. a publication-to-effect histogram) gets the records whose events
    took effect in this poll: not redeliveries, not parked records; in batch and single mode."""
    reg, sessions, tables, effects, engine, one, many = await offline(database_url, "consumer-hook")
    seen: list[list[int]] = []
    consumer = EventConsumer(ConsumerConfig(name="hook", topics=[TOPIC], bootstrap="unused"), sessions=sessions,
                             tables=tables, registry=reg, handlers={"test.ping": batched(one, many)},
                             clock=SystemClock(), on_applied=lambda recs: seen.append([r.offset for r in recs]))
    a, b = ping(reg, 1), ping(reg, 2)
    records = [Record(TOPIC, 0, i, 0, raw, b"k", ()) for i, raw in enumerate(
        [a.to_bytes(), b"{not json", b.to_bytes(), a.to_bytes()])]
    await consumer.handle_records(records)  # batch: a, b applied; the copy of a and the bad one not
    await consumer.handle_records(records[:1])  # single: a redelivered, nothing applied
    await consumer.handle_records([Record(TOPIC, 0, 9, 0, ping(reg, 3).to_bytes(), b"k", ())])
    assert seen == [[0, 2], [9]]
    assert await count(sessions, effects) == 3 and await count(sessions, tables.dead_letters) == 1
    await engine.dispose()


@pytest.mark.parametrize("form", ["batched", "single"])
async def test_a_selective_handler_skips_the_events_it_does_not_want_without_an_inbox_row(database_url, form):
    """``only_when``: the events the predicate refuses are skipped like a type the consumer does
    not handle (no effect, no inbox row, not parked); the others are applied once, in batch and
    single mode alike."""
    reg, sessions, tables, effects, engine, one, many = await offline(database_url, f"consumer-selective-{form}")
    handler = batched(one, many) if form == "batched" else one

    def even(data) -> bool:
        if data.n == 7:
            raise ValueError("cannot judge seven")
        return data.n % 2 == 0

    consumer = EventConsumer(ConsumerConfig(name="selective", topics=[TOPIC], bootstrap="unused"),
                             sessions=sessions, tables=tables, registry=reg,
                             handlers={"test.ping": only_when(even, handler)}, clock=SystemClock())
    assert consumer.batchable is (form == "batched")
    # a filter that fails on an event parks that event; the others go on
    await consumer.handle_records([Record(TOPIC, 0, 99, 0, ping(reg, 7).to_bytes(), b"k", ())])
    assert await count(sessions, tables.dead_letters) == 1
    events = [ping(reg, n) for n in range(6)]
    records = [Record(TOPIC, 0, i, 0, e.to_bytes(), b"k", ()) for i, e in enumerate(events)]
    await consumer.handle_records(records)
    await consumer.handle_records(records)  # redelivered: the wanted ones are duplicates, the rest skipped again
    async with sessions() as s:
        applied = set((await s.execute(select(effects.c.event_id))).scalars())
    assert applied == {str(e.id) for e in events if e.data.n % 2 == 0}
    assert await count(sessions, effects) == 3
    assert await count(sessions, tables.processed_events) == 3
    assert await count(sessions, tables.dead_letters) == 1  # the event the filter could not judge
    await engine.dispose()
