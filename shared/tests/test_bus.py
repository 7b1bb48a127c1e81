"""``platform-bus`` against the real embedded broker: topics with their message counts,
consumer groups with committed offsets and lag, a topic tailed as JSON with key and
event-type filters (phones masked), and the command line itself."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared import bus


def envelope(type_: str, order_id: str, n: int) -> bytes:
    return json.dumps({"id": str(uuid.uuid4()), "type": type_, "key": order_id, "producer": "orders",
                       "data": {"order_id": order_id, "n": n, "customer_phone": "13800138000"}}).encode()


async def seed(broker, producer) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("orders.events", 3, 1), NewTopic("sla.events", 2, 1)])
    finally:
        await admin.close()
    for n in range(12):
        order = f"o-{n % 4}"
        kind = "service_order.created" if n < 4 else "service_order.transitioned"
        await producer.send_and_wait("orders.events", envelope(kind, order, n), key=order.encode())
    await producer.send_and_wait("orders.events", b"not an envelope, call 13912345678", key=b"junk")
    # a group that read 5 messages and committed
    c = AIOKafkaConsumer("orders.events", bootstrap_servers=broker.bootstrap, group_id="sla-timer.orders",
                         session_timeout_ms=2000, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        read = 0
        while read < 5:
            for tp, records in (await c.getmany(timeout_ms=1000, max_records=5 - read)).items():
                read += len(records)
                await c.commit({tp: records[-1].offset + 1})
    finally:
        await c.stop()


async def test_topics_groups_and_tail(broker, producer):
    await seed(broker, producer)
    conn = bus.connection_from_env("NO_SUCH_SERVICE_", broker.bootstrap)

    topics = {t["topic"]: t for t in await bus.list_topics(conn)}
    assert topics["orders.events"]["partitions"] == 3 and topics["orders.events"]["messages"] == 13
    assert topics["orders.events"]["newest"].endswith("+08:00")  # Beijing time
    assert topics["sla.events"] == {"topic": "sla.events", "partitions": 2, "messages": 0, "newest": None}
    assert "TOPIC" in bus.format_topics(list(topics.values()))

    [group] = [g for g in await bus.list_groups(conn) if g["group"] == "sla-timer.orders"]
    [t] = group["topics"]
    assert (t["topic"], t["committed"], t["end"], t["lag"]) == ("orders.events", 5, 13, 8)
    assert 0 <= t["oldest_unread_s"] < 120
    assert "sla-timer.orders" in bus.format_groups([group])
    [only] = await bus.list_groups(conn, ["sla-timer.orders"])
    assert only["group"] == "sla-timer.orders"

    everything = [m async for m in bus.tail(conn, "orders.events", last=None)]
    assert len(everything) == 13
    stamps = [m.timestamp for m in everything]
    assert stamps == sorted(stamps)  # oldest first across partitions
    o1 = [m async for m in bus.tail(conn, "orders.events", last=None, key="o-1")]
    assert [m.value["data"]["n"] for m in o1] == [1, 5, 9]  # one order's events, in order
    transitions = [m async for m in bus.tail(conn, "orders.events", last=None, event_type="service_order.t*")]
    assert len(transitions) == 8 and {m.event_type for m in transitions} == {"service_order.transitioned"}
    last = [m async for m in bus.tail(conn, "orders.events", last=1)]
    newest = {}
    for m in everything:
        newest[m.partition] = max(newest.get(m.partition, -1), m.offset)
    assert sorted((m.partition, m.offset) for m in last) == sorted(newest.items())  # the last of each partition
    m = o1[0]
    assert m.value["data"]["customer_phone"] == "138****8000"  # masked, as everywhere operators read
    pretty = bus.format_message(m)
    assert pretty.splitlines()[0].startswith("── orders.events p") and '"n": 1' in pretty
    [junk] = [m async for m in bus.tail(conn, "orders.events", last=None, key="junk")]
    assert junk.value == "not an envelope, call 139****5678"
    line = json.loads(bus.format_message(junk, compact=True))
    assert line["key"] == "junk" and line["topic"] == "orders.events"


async def test_the_command_line(broker, producer):
    await seed(broker, producer)
    run = [sys.executable, "-m", "shared.bus", "--bootstrap", broker.bootstrap]
    out = subprocess.run([*run, "groups", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [g] = [g for g in json.loads(out.stdout) if g["group"] == "sla-timer.orders"]
    assert g["topics"][0]["lag"] == 8
    out = subprocess.run([*run, "tail", "orders.events", "--from-beginning", "--type", "service_order.created",
                          "--compact"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 4 and {x["value"]["type"] for x in lines} == {"service_order.created"}


def test_a_missing_topic_or_an_unreachable_broker_is_one_line(broker, capsys):
    with pytest.raises(SystemExit) as exit_:
        bus.main(["--bootstrap", broker.bootstrap, "tail", "no.such.topic"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "platform-bus: no topic 'no.such.topic'"
    with pytest.raises(SystemExit) as exit_:
        bus.main(["--bootstrap", "127.0.0.1:1", "topics"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("platform-bus: 127.0.0.1:1: ") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        bus.main(["--bootstrap", broker.bootstrap, "topics"])
    assert exit_.value.code == 0 and "no.such.topic" not in capsys.readouterr().out  # looking created nothing


def test_the_connection_comes_from_a_service_settings():
    env = {"KPI_KAFKA_BOOTSTRAP": "k1:9093,k2:9093", "KPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "KPI_KAFKA_SASL_USERNAME": "kpi", "KPI_KAFKA_SASL_PASSWORD": "pw", "KPI_KAFKA_SSL_CHECK_HOSTNAME": "false"}
    c = bus.connection_from_env("KPI_", environ=env)
    assert (c.bootstrap, c.security_protocol, c.sasl_username, c.sasl_password) == ("k1:9093,k2:9093", "SASL_SSL",
                                                                                   "kpi", "pw")
    assert c.ssl_check_hostname is False and c.sasl_mechanism == "SCRAM-SHA-512"
    assert bus.connection_from_env("KPI_", "b:1", environ=env).bootstrap == "b:1"
    assert bus.connection_from_env("X_", environ={}).bootstrap == bus.DEFAULT_BOOTSTRAP
