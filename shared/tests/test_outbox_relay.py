"""The relay marks only the unbroken prefix of a batch as sent, so after a failure
everything from the failed event on is sent again in order (per key and overall)."""
import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from shared import db
from shared.clock import SystemClock
from shared.events import Contract, EventRegistry, make_envelope
from shared.messaging_tables import MessagingTables
from shared.outbox import Outbox, OutboxRelay


class N(Contract, kw_only=True):
    n: int


class FlakyProducer:
    """Fails the send of the ``fail_at``-th message once; records what was acknowledged."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.sent: list[tuple[str, int]] = []
        self.calls = 0

    async def send(self, topic, value, key):
        self.calls += 1
        fut = asyncio.get_running_loop().create_future()
        if self.calls == self.fail_at:
            fut.set_exception(ConnectionError("broker went away"))
        else:
            import json

            self.sent.append((key.decode(), json.loads(value)["data"]["n"]))
            fut.set_result(None)
        return fut


class Handle:
    def __init__(self, producer) -> None:
        self.producer = producer
        self.resets = 0

    async def get(self):
        return self.producer

    async def ensure_present(self, topics):
        self.checked = topics

    async def reset(self):
        self.resets += 1


@pytest.fixture
async def relay_env(tmp_path):
    metadata = db.new_metadata()
    tables = MessagingTables(metadata)
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/relay.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reg = EventRegistry()
    reg.register("n.happened", topic="t")(N)
    yield engine, db.session_factory(engine), tables, reg
    await engine.dispose()


async def test_failure_mid_batch_resends_from_the_failed_event_in_order(relay_env):
    engine, sessions, tables, reg = relay_env
    outbox = Outbox(tables, reg, SystemClock())
    async with sessions() as s, s.begin():
        for i in range(6):
            env = make_envelope(type_="n.happened", key=f"k{i % 2}", producer="p",
                                occurred_at=datetime.now(timezone.utc), data={"n": i}, reg=reg)
            await outbox.add(s, env)
    producer = FlakyProducer(fail_at=3)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=100)
    with pytest.raises(ConnectionError):
        await relay.drain()
    assert await relay.pending() == 4  # 0 and 1 went out; 2 failed, 3..5 wait behind it
    assert await relay.drain() == 4
    assert await relay.pending() == 0
    # Events after the failed one may have gone out once already (at-least-once; consumers
    # are idempotent), and the resend restarts at the failed event, in outbox order.
    resent = [n for _k, n in producer.sent]
    assert resent[:2] == [0, 1] and sorted(set(resent)) == [0, 1, 2, 3, 4, 5]
    final_order = [n for _k, n in producer.sent[-4:]]
    assert final_order == [2, 3, 4, 5]
    async with sessions() as s:
        attempts = (await s.execute(select(tables.outbox.c.attempts).order_by(tables.outbox.c.id))).scalars().all()
    assert attempts == [0, 0, 1, 0, 0, 0]


class SilentProducer:
    """Acknowledges the first ``ack`` messages; the rest are accepted but never acknowledged."""

    def __init__(self, ack: int) -> None:
        self.ack = ack
        self.calls = 0

    async def send(self, topic, value, key):
        self.calls += 1
        fut = asyncio.get_running_loop().create_future()
        if self.calls <= self.ack:
            fut.set_result(None)
        return fut


class RefusingProducer(FlakyProducer):
    """``send`` itself raises (the client's buffer is broken) at the ``fail_at``-th message."""

    async def send(self, topic, value, key):
        if self.calls + 1 == self.fail_at:
            self.calls += 1
            raise ConnectionError("producer closed")
        return await super().send(topic, value, key)


async def _fill(sessions, tables, reg, n: int) -> None:
    outbox = Outbox(tables, reg, SystemClock())
    async with sessions() as s, s.begin():
        await outbox.add_many(s, [make_envelope(type_="n.happened", key=f"k{i % 3}", producer="p",
                                                occurred_at=datetime.now(timezone.utc), data={"n": i}, reg=reg)
                                  for i in range(n)])


async def test_a_large_batch_goes_out_whole_and_in_order(relay_env):
    engine, sessions, tables, reg = relay_env
    await _fill(sessions, tables, reg, 300)
    producer = FlakyProducer(fail_at=0)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=250)
    assert await relay.drain() == 300
    assert await relay.pending() == 0
    assert [n for _k, n in producer.sent] == list(range(300))


async def test_acks_that_never_come_time_out_and_only_the_acked_prefix_is_marked(relay_env):
    engine, sessions, tables, reg = relay_env
    await _fill(sessions, tables, reg, 150)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(SilentProducer(ack=100)),
                        clock=SystemClock(), is_postgres=False, batch_size=500, send_timeout_s=0.2)
    with pytest.raises(TimeoutError):
        await relay.drain()
    assert await relay.pending() == 50
    async with sessions() as s:
        attempts = (await s.execute(select(tables.outbox.c.attempts).order_by(tables.outbox.c.id))).scalars().all()
    assert attempts[99:102] == [0, 1, 0]


async def test_a_send_that_raises_marks_the_prefix_and_resends_the_rest(relay_env):
    engine, sessions, tables, reg = relay_env
    await _fill(sessions, tables, reg, 100)
    producer = RefusingProducer(fail_at=71)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=500)
    with pytest.raises(ConnectionError):
        await relay.drain()
    assert await relay.pending() == 30
    assert await relay.drain() == 30
    assert [n for _k, n in producer.sent] == list(range(100))


def _envs(reg, ns, key=None):
    return [make_envelope(type_="n.happened", key=key or f"k{n % 3}", producer="p",
                          occurred_at=datetime.now(timezone.utc), data={"n": n}, reg=reg) for n in ns]


async def test_bundles_go_out_as_separate_messages_in_order_with_plain_rows(relay_env):
    engine, sessions, tables, reg = relay_env
    outbox = Outbox(tables, reg, SystemClock())
    async with sessions() as s, s.begin():
        await outbox.add_many(s, _envs(reg, range(0, 3)))
        await outbox.add_bundle(s, _envs(reg, range(3, 40)))
        await outbox.add_many(s, _envs(reg, range(40, 42)))
        await outbox.add_bundle(s, _envs(reg, range(42, 50), key="k\t\"odd\""))
    producer = FlakyProducer(fail_at=0)
    # a budget of 20 events per batch: the 37-event bundle goes alone, nothing is split
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=20)
    assert await relay.drain() == 50
    assert await relay.pending() == 0
    assert [n for _k, n in producer.sent] == list(range(50))
    assert producer.sent[3] == ("k0", 3) and producer.sent[-1] == ('k\t"odd"', 49)


async def test_a_failure_inside_a_bundle_sends_the_whole_bundle_again(relay_env):
    engine, sessions, tables, reg = relay_env
    outbox = Outbox(tables, reg, SystemClock())
    async with sessions() as s, s.begin():
        await outbox.add_many(s, _envs(reg, range(0, 2)))
        await outbox.add_bundle(s, _envs(reg, range(2, 12)))
    producer = FlakyProducer(fail_at=6)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=100)
    with pytest.raises(ConnectionError):
        await relay.drain()
    assert await relay.pending() == 1  # the bundle row
    assert await relay.drain() == 10
    resent = [n for _k, n in producer.sent]
    assert resent[:2] == [0, 1] and resent[-10:] == list(range(2, 12))


def test_murmur2_and_partition_match_the_kafka_default_partitioner():
    import os

    from aiokafka.partitioner import DefaultPartitioner, murmur2 as reference

    from shared.outbox import key_partition, murmur2

    for n in range(0, 70):
        for _ in range(20):
            key = os.urandom(n)
            assert murmur2(key) == reference(key)
            assert key_partition(key, [0, 1, 2, 3, 4, 5]) == DefaultPartitioner()(key, [0, 1, 2, 3, 4, 5], [])


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.items, self.closed = capacity, [], False

    def append(self, *, key, value, timestamp):
        if self.closed or len(self.items) >= self.capacity:
            self.closed = True
            return None
        self.items.append((key, value))
        return object()

    def close(self):
        self.closed = True


class BatchProducer:
    """The record-batch API of the client: small batches; the ``fail_batch``-th batch
    handed over fails; records what was acknowledged, per partition, in order."""

    def __init__(self, capacity: int = 4, fail_batch: int = 0) -> None:
        self.capacity, self.fail_batch, self.batches = capacity, fail_batch, 0
        self.sent: list[tuple[int, str, int]] = []

    async def partitions_for(self, topic):
        return {0, 1, 2}

    def create_batch(self):
        return FakeBatch(self.capacity)

    async def send_batch(self, batch, topic, *, partition):
        import json

        assert batch.closed
        self.batches += 1
        fut = asyncio.get_running_loop().create_future()
        if self.batches == self.fail_batch:
            fut.set_exception(ConnectionError("broker went away"))
        else:
            self.sent.extend((partition, k.decode(), json.loads(v)["data"]["n"]) for k, v in batch.items)
            fut.set_result(None)
        return fut


async def test_record_batches_keep_the_order_per_key_and_the_partition_of_the_key(relay_env):
    from shared.outbox import key_partition

    engine, sessions, tables, reg = relay_env
    outbox = Outbox(tables, reg, SystemClock())
    async with sessions() as s, s.begin():
        await outbox.add_many(s, _envs(reg, range(0, 40)))
        await outbox.add_bundle(s, _envs(reg, range(40, 60)))
        await outbox.add_many(s, _envs(reg, range(60, 70)))
    producer = BatchProducer(capacity=4)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=100)
    assert await relay.drain() == 70
    assert await relay.pending() == 0
    assert sorted(n for _p, _k, n in producer.sent) == list(range(70))
    for key in ("k0", "k1", "k2"):
        mine = [(p, n) for p, k, n in producer.sent if k == key]
        assert [n for _p, n in mine] == [n for n in range(70) if n % 3 == int(key[1])]  # in order per key
        assert {p for p, _n in mine} == {key_partition(key.encode(), [0, 1, 2])}


async def test_a_failed_record_batch_marks_only_the_prefix_before_its_first_row(relay_env):
    engine, sessions, tables, reg = relay_env
    await _fill(sessions, tables, reg, 30)
    producer = BatchProducer(capacity=4, fail_batch=3)
    relay = OutboxRelay(service="t", sessions=sessions, tables=tables, producer=Handle(producer),
                        clock=SystemClock(), is_postgres=False, batch_size=100)
    with pytest.raises(ConnectionError):
        await relay.drain()
    # the third batch handed over held the first four events of one key: everything from
    # its first event on is still pending (and is sent again, in order)
    pending = await relay.pending()
    assert 0 < pending < 30
    acked = sorted(n for _p, _k, n in producer.sent)
    assert all(n in acked for n in range(30 - pending))
    producer.fail_batch = 0
    assert await relay.drain() == pending
    assert await relay.pending() == 0
    resent = [n for _p, _k, n in producer.sent[len(acked):]]
    assert sorted(resent) == list(range(30 - pending, 30))
