"""`<service> provision-topics` (every service's command line, shared.cli): creates every
topic of shared.topics with its partitions, replication factor, min ISR and retention,
idempotently, and stops (exit 1) on a topic provisioned short. Against the embedded broker."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic_settings import SettingsConfigDict

from shared.cli import run_cli
from shared.settings import ServiceSettings
from shared.topics import ALL_TOPICS, SLA_EVENTS


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", validate_default=True)
    service_name: str = "demo"


def provision(monkeypatch, capsys, bootstrap: str, **env) -> tuple[int, str, str]:
    for k, v in {"DEMO_KAFKA_BOOTSTRAP": bootstrap, **env}.items():
        monkeypatch.setenv(k, str(v))
    with pytest.raises(SystemExit) as done:
        run_cli("demo", DemoSettings, lambda s: None, None, argv=["provision-topics"])
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


async def _describe(bootstrap: str) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        names = [t.name for t in ALL_TOPICS]
        parts = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        configs = {}
        for answer in answers:
            for res in answer.resources:
                configs[res[3]] = {e[0]: e[1] for e in res[4]}
        return parts, configs
    finally:
        await admin.close()


def test_creates_every_topic_with_its_partitions_and_configs_and_is_idempotent(broker, monkeypatch, capsys):
    code, out, err = provision(monkeypatch, capsys, broker.bootstrap, DEMO_KAFKA_TOPIC_PARTITIONS=5,
                               DEMO_KAFKA_TOPIC_RETENTION_MS=-1)
    assert code == 0, err
    parts, configs = asyncio.run(_describe(broker.bootstrap))
    assert parts == {t.name: t.partitions or 5 for t in ALL_TOPICS}
    for t in ALL_TOPICS:
        assert configs[t.name]["retention.ms"] == "-1" and configs[t.name]["min.insync.replicas"] == "1"
        assert f"demo: provision-topics: {t.name} created ({t.partitions or 5} partitions" in out
    # again: nothing to do, nothing changed, still success
    code, out, err = provision(monkeypatch, capsys, broker.bootstrap, DEMO_KAFKA_TOPIC_PARTITIONS=5)
    assert code == 0 and err == ""
    assert all(f"{t.name} exists" in out for t in ALL_TOPICS)
    assert asyncio.run(_describe(broker.bootstrap))[0] == parts


def test_reports_a_topic_with_too_few_partitions_and_fails(broker, monkeypatch, capsys):
    async def auto_created_earlier():  # e.g. by a broker's auto-creation with its default count
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(SLA_EVENTS, 3, 1)])
        await admin.close()

    asyncio.run(auto_created_earlier())
    code, out, err = provision(monkeypatch, capsys, broker.bootstrap, DEMO_KAFKA_TOPIC_PARTITIONS=6)
    assert code == 1
    assert f"{SLA_EVENTS}: has 3 partitions, the platform needs 6" in err
    assert f"{SLA_EVENTS}" not in out and "orders.events created" in out  # the others were still created
    parts, _ = asyncio.run(_describe(broker.bootstrap))
    assert parts[SLA_EVENTS] == 3  # left as it was: adding partitions is the operator's decision


def test_an_unreachable_broker_is_one_line_and_exit_2(monkeypatch, capsys):
    from shared.broker import free_port

    code, out, err = provision(monkeypatch, capsys, f"127.0.0.1:{free_port()}")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "demo: provision-topics: 127.0.0.1:" in err


def test_the_embedded_default_is_the_count_the_broker_auto_creates(broker):
    """After a restart the embedded broker is empty and a consumer's subscription re-creates
    a topic with the broker's own count before any service provisions it. The platform's
    default must be that count: with more, a producer holding the old metadata wrote to
    partitions that the consumers of the re-created topic never read (lost events)."""
    from aiokafka import AIOKafkaConsumer

    from shared.broker import EMBEDDED_PARTITIONS
    from shared.settings import ServiceSettings

    async def auto_created() -> set[int]:
        consumer = AIOKafkaConsumer("auto.created.by.subscription", bootstrap_servers=broker.bootstrap,
                                    group_id="auto-create-probe")
        await consumer.start()
        try:
            for _ in range(50):
                parts = consumer.partitions_for_topic("auto.created.by.subscription")
                if parts:
                    return parts
                await asyncio.sleep(0.1)
            return set()
        finally:
            await consumer.stop()

    assert len(asyncio.run(auto_created())) == EMBEDDED_PARTITIONS
    assert ServiceSettings.model_fields["kafka_topic_partitions"].default == EMBEDDED_PARTITIONS
