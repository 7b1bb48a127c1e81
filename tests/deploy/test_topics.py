"""deploy/kafka/create-topics.sh creates exactly the code's topics (shared/src/shared/topics.py)
with their partitions, replication factor 3 and min ISR 2, is idempotent, and stops on a
topic with too few partitions. Run against a stand-in for Kafka's kafka-topics.sh that
records its arguments and answers --describe like the real one."""
from __future__ import annotations

import os
import subprocess

from shared.settings import ServiceSettings
from shared.topics import ALL_TOPICS
from tests.deploy import kit

SCRIPT = kit.DEPLOY / "kafka" / "create-topics.sh"

FAKE_KAFKA_TOPICS = r"""#!/usr/bin/env bash
# A stand-in for kafka-topics.sh: topics live as files <state>/<name> holding the partition count.
state="$FAKE_STATE"; echo "$*" >> "$state/calls"
topic=""; partitions=""; mode=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --create) mode=create ;; --describe) mode=describe ;;
    --topic) topic="$2"; shift ;; --partitions) partitions="$2"; shift ;;
  esac
  shift
done
if [[ "$mode" == create && ! -f "$state/$topic" ]]; then echo "$partitions" > "$state/$topic"; fi
if [[ "$mode" == describe ]]; then
  [[ -f "$state/$topic" ]] || exit 1
  printf 'Topic: %s\tTopicId: x\tPartitionCount: %s\tReplicationFactor: 3\tConfigs: min.insync.replicas=2\n' "$topic" "$(cat "$state/$topic")"
fi
"""


def _run(tmp_path, **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "kafka-topics.sh"
    fake.write_text(FAKE_KAFKA_TOPICS)
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    full_env = {**os.environ, "KAFKA_BIN": str(bin_dir), "FAKE_STATE": str(state), "BOOTSTRAP": "k1:9092,k2:9092", **env}
    proc = subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=30)
    return proc, state


def test_creates_every_topic_of_the_code_with_its_partitions(tmp_path):
    proc, state = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    default = ServiceSettings.model_fields["kafka_topic_partitions"].default
    expected = {t.name: t.partitions or default for t in ALL_TOPICS}
    created = {p.name: int(p.read_text()) for p in state.iterdir() if p.name != "calls"}
    assert created == expected
    creates = [c for c in (state / "calls").read_text().splitlines() if "--create" in c]
    assert len(creates) == len(ALL_TOPICS)
    for call in creates:
        assert "--if-not-exists" in call and "--replication-factor 3" in call
        assert "--config min.insync.replicas=2" in call and "--bootstrap-server k1:9092,k2:9092" in call


def test_is_idempotent_and_refuses_a_topic_with_too_few_partitions(tmp_path):
    assert _run(tmp_path)[0].returncode == 0
    proc, _ = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    # a topic the broker auto-created earlier with 4 partitions: stop, do not go on silently
    (tmp_path / "state" / "sla.events").write_text("4")
    proc, _ = _run(tmp_path)
    assert proc.returncode != 0
    assert "sla.events has 4 partitions, the platform needs 6" in proc.stderr


def test_passes_a_client_config_for_secured_listeners(tmp_path):
    proc, state = _run(tmp_path, COMMAND_CONFIG="/etc/kafka/client.properties", REPLICATION_FACTOR="5")
    assert proc.returncode == 0, proc.stderr
    calls = (state / "calls").read_text().splitlines()
    assert all("--command-config /etc/kafka/client.properties" in c for c in calls)
    assert all("--replication-factor 5" in c for c in calls if "--create" in c)
