"""The shared metrics helpers (one family per registry, counts at commit, sampled gauges),
the consumer's metric names and lag, and the log format: human lines on a terminal outside
production, JSON otherwise."""
from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timezone

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import MetaData, text

from shared import db
from shared.clock import ManualClock
from shared.consumer import ConsumerConfig, EventConsumer, LagTracker
from shared.events import EventRegistry
from shared.logging import configure_logging, reset_correlation_id, set_correlation_id
from shared.messaging_tables import MessagingTables
from shared.metrics import SampledGauges, after_commit, family


def samples(registry) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(generate_latest(registry).decode()) for s in fam.samples}


def test_one_family_per_registry_with_the_group_as_a_label():
    reg = CollectorRegistry()
    a = family(reg, Counter, "things_total", "Things", ["group"])
    assert family(reg, Counter, "things_total", "Things", ["group"]) is a
    with pytest.raises(ValueError):
        family(reg, Gauge, "things_total", "Things", ["group"])
    assert family(None, Counter, "things_total", "Things") is not a  # unregistered, for a bare consumer

    tables = MessagingTables(MetaData())
    clock = ManualClock(datetime(2026, 3, 2, tzinfo=timezone.utc))
    consumers = [EventConsumer(ConsumerConfig(name=g, topics=["t"], bootstrap="127.0.0.1:1"), sessions=None,
                               tables=tables, registry=EventRegistry(), handlers={}, clock=clock, metrics=reg)
                 for g in ("orders.deadlines", "notifier.sla")]
    consumers[0].processed_total.inc(3)
    consumers[1].parked_total.inc()
    got = samples(reg)
    assert got[("consumer_messages_processed_total", frozenset({("group", "orders.deadlines")}))] == 3
    assert got[("consumer_messages_processed_total", frozenset({("group", "notifier.sla")}))] == 0
    assert got[("consumer_messages_parked_total", frozenset({("group", "notifier.sla")}))] == 1
    assert got[("consumer_lag_seconds", frozenset({("group", "orders.deadlines")}))] == 0
    assert got[("consumer_lag_messages", frozenset({("group", "notifier.sla")}))] == 0
    assert not any(name.startswith("consumer_orders") or name.startswith("consumer_notifier") for name, _ in got)


class _Record:
    def __init__(self, offset: int, ts: float) -> None:
        self.offset, self.timestamp = offset, int(ts * 1000)


class _Consumer:
    """What LagTracker asks of an AIOKafkaConsumer: its assignment and high watermarks."""

    def __init__(self, assigned, high) -> None:
        self.assigned, self.high = set(assigned), high

    def assignment(self):
        return self.assigned

    def highwater(self, tp):
        return self.high.get(tp)


def test_lag_in_seconds_and_messages():
    now = [1000.0]
    lag = LagTracker(wall_clock=lambda: now[0])
    p0, p1 = TopicPartition("orders.events", 0), TopicPartition("orders.events", 1)
    assert lag.seconds() == 0 and lag.messages() == 0
    # fetched, not applied yet: the oldest in hand counts
    lag.fetched({p0: [_Record(10, 940), _Record(11, 950)], p1: [_Record(3, 990)]})
    assert lag.seconds() == 60
    now[0] = 1010
    assert lag.seconds() == 70  # a stuck handler: the lag grows
    # p1 applied and caught up; p0 applied but 5 behind its high watermark: the next message is
    # no older than the last applied (950)
    consumer = _Consumer({p0, p1}, {p0: 17, p1: 4})
    lag.committed(consumer, {p1: 4})
    assert lag.seconds() == 70 and lag.messages() == 0  # p0's 940 still in hand
    lag.committed(consumer, {p0: 12})
    assert lag.seconds() == 60 and lag.messages() == 5
    consumer.high[p0] = 12
    lag.committed(consumer, {p0: 12})
    assert lag.seconds() == 0 and lag.messages() == 0  # caught up
    # a partition revoked in a rebalance stops counting
    lag.fetched({p1: [_Record(4, 1000)]})
    consumer.assigned = {p0}
    lag.committed(consumer, {p0: 12})
    assert lag.seconds() == 0


async def test_counts_land_only_when_the_transaction_commits(tmp_path):
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    sessions = db.session_factory(engine)
    done: list[str] = []
    try:
        async with sessions() as s:
            async with s.begin():
                await s.execute(text("SELECT 1"))
                after_commit(s, lambda: done.append("first"))
                assert done == []  # not before the commit
            assert done == ["first"]
            with pytest.raises(RuntimeError):
                async with s.begin():
                    after_commit(s, lambda: done.append("rolled back"))
                    raise RuntimeError
            async with s.begin():
                after_commit(s, lambda: done.append("second"))
                after_commit(s, lambda: done.append("third"))
        assert done == ["first", "second", "third"]
    finally:
        await engine.dispose()


async def test_sampled_gauges_keep_their_last_values_when_a_sample_fails(caplog):
    reg = CollectorRegistry()
    sampled = SampledGauges()
    reg.register(sampled)
    state = {"fail": False, "n": 3}

    async def sample():
        if state["fail"]:
            raise ConnectionError("database away")
        return [(("a",), state["n"]), (("b",), 0)]

    sampled.gauge("widgets", "Widgets by kind", ["kind"], sample)
    with pytest.raises(ValueError):
        sampled.gauge("widgets", "again", [], sample)
    assert "# TYPE widgets gauge" in generate_latest(reg).decode()  # declared before the first sample
    await sampled.refresh()
    assert samples(reg)[("widgets", frozenset({("kind", "a")}))] == 3
    state.update(fail=True, n=5)
    with caplog.at_level(logging.WARNING):
        await sampled.refresh()
        await sampled.refresh()
    assert samples(reg)[("widgets", frozenset({("kind", "a")}))] == 3
    assert sum("widgets could not be sampled" in r.getMessage() for r in caplog.records) == 1  # once, not every round
    state["fail"] = False
    await sampled.refresh()
    assert samples(reg)[("widgets", frozenset({("kind", "a")}))] == 5


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_one(stream, **kw) -> str:
    configure_logging("orders", "INFO", stream=stream, **kw)
    token = set_correlation_id("3f2a9c")
    try:
        logging.getLogger("orders.test").warning("order stuck", extra={"order_id": "o-1"})
    finally:
        reset_correlation_id(token)
    return stream.getvalue()


def test_human_lines_on_a_terminal_outside_production(restore_logging, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    line = _log_one(_Terminal()).rstrip("\n")
    assert "\n" not in line and not line.startswith("{")
    time_, rest = line.split(" ", 1)
    datetime.strptime(time_, "%H:%M:%S.%f")
    assert rest.split()[:2] == ["orders", "WARNING"]
    assert "order stuck" in rest and "order_id=o-1" in rest and rest.endswith("cid=3f2a9c")
    assert "\x1b[" not in line  # NO_COLOR
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[33mWARNING" in _log_one(_Terminal())  # coloured level on a terminal


def test_json_when_not_a_terminal_or_in_production_or_asked(restore_logging):
    for stream, kw in ((io.StringIO(), {}), (_Terminal(), {"production": True}), (_Terminal(), {"json_output": True})):
        doc = json.loads(_log_one(stream, **kw))
        assert (doc["level"], doc["service"], doc["message"], doc["correlation_id"]) == (
            "WARNING", "orders", "order stuck", "3f2a9c")
        assert doc["order_id"] == "o-1" and datetime.fromisoformat(doc["ts"].replace(",", "."))
    # LOG_JSON=false forces human lines wherever the output goes
    assert not _log_one(io.StringIO(), json_output=False).startswith("{")


def test_human_lines_carry_the_traceback(restore_logging):
    stream = _Terminal()
    configure_logging("kpi", "INFO", stream=stream)
    try:
        raise ValueError("bad figure")
    except ValueError:
        logging.getLogger("kpi").exception("refresh failed")
    out = stream.getvalue()
    assert "refresh failed" in out.splitlines()[0] and "ValueError: bad figure" in out
