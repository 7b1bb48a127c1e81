"""The topics step of deploy/ (the Compose one-off and the Kubernetes Job `kafka-topics`) runs
`orders provision-topics` with settings that give every topic of the code
(shared/src/shared/topics.py) its partitions, replication factor 3, min ISR 2 and unlimited
retention. The command itself (creation, idempotence, the too-few-partitions failure) is tested
against a broker in shared/tests/test_provision_topics.py."""
from __future__ import annotations

import pytest

from shared.kafka import topic_configs
from shared.topics import ALL_TOPICS
from tests.deploy import kit
from tests.deploy.test_compose import _env as compose_env
from tests.deploy.test_kubernetes import CONFIGMAPS, JOBS, _containers, _resolved_env


def _steps() -> dict[str, tuple[list[str], dict[str, str]]]:
    """(command, environment) of the topics step in Compose and on Kubernetes."""
    compose = kit.load_compose()["services"]["kafka-topics"]
    job = JOBS["kafka-topics"]
    c = _containers(job)[0]
    return {"compose": (compose["command"], compose_env("kafka-topics")),
            "kubernetes": (c["command"], _resolved_env(job, c))}


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_the_topics_step_provisions_every_topic_with_the_services_settings(where, monkeypatch):
    from shared.settings import load_settings

    command, env = _steps()[where]
    assert command == ["orders", "provision-topics"] and kit.check_command(command) is None
    with kit.environment(monkeypatch, env, "ORDERS_"):
        s = load_settings(kit.settings_class("orders"))
    assert s.environment == "production"
    assert (s.kafka_topic_partitions, s.kafka_replication_factor, s.kafka_min_insync_replicas) == (6, 3, 2)
    assert topic_configs(s.kafka_min_insync_replicas, s.kafka_topic_retention_ms) == {
        "min.insync.replicas": "2", "retention.ms": "-1"}
    # what it creates: every topic of the code, the ones pinned to one partition included
    assert {t.name: t.partitions or s.kafka_topic_partitions for t in ALL_TOPICS}["accounts.events"] == 1
    # the services create missing topics the same way (and read the same partitions)
    for service, prefix in kit.PREFIXES.items():
        svc_env = compose_env(service) if where == "compose" else CONFIGMAPS[f"{service}-config"]["data"]
        assert svc_env[f"{prefix}KAFKA_TOPIC_PARTITIONS"] == env["ORDERS_KAFKA_TOPIC_PARTITIONS"]
        assert svc_env[f"{prefix}KAFKA_BOOTSTRAP"] == env["ORDERS_KAFKA_BOOTSTRAP"]
        assert svc_env[f"{prefix}KAFKA_MIN_INSYNC_REPLICAS"] == "2"


def test_the_runbook_runs_the_command_first():
    readme = (kit.DEPLOY / "README.md").read_text()
    assert "provision-topics" in readme
