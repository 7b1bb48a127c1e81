#!/usr/bin/env bash
# Creates every topic of the platform with its partitions, replication factor,
# min.insync.replicas and retention. Idempotent: an existing topic is left as it is, but one
# with fewer partitions than the platform needs stops the run (adding partitions moves keys
# to other partitions, which breaks per-order ordering: a deliberate operation, see
# deploy/README.md). Run first, before any service starts: the brokers do not auto-create.
#
# Run by the `kafka-topics` one-off of deploy/compose and the `kafka-topics` Job of
# deploy/kubernetes (apache/kafka image). The topic list is the code's
# (shared/src/shared/topics.py); tests/deploy checks it stays the same.
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:?set BOOTSTRAP to the brokers, host:port[,host:port]}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-3}"
MIN_INSYNC_REPLICAS="${MIN_INSYNC_REPLICAS:-2}"
# The services' KAFKA_TOPIC_PARTITIONS: the partitions of every topic not pinned below.
PARTITIONS="${PARTITIONS:-6}"
# -1: kept for ever. `kpi replay` rebuilds the KPI facts from offset 0 of the order, SLA and
# routing topics, and a parked message is re-driven from the topic (deploy/README.md).
RETENTION_MS="${RETENTION_MS:--1}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
# A client properties file for TLS / SASL listeners (security.protocol, sasl.mechanism, ...).
COMMAND_CONFIG="${COMMAND_CONFIG:-}"

kafka_topics() {
  if [[ -n "$COMMAND_CONFIG" ]]; then
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" "$@"
  else
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" "$@"
  fi
}

failed=0
topic() {  # topic NAME PARTITIONS
  local name="$1" partitions="$2" have
  kafka_topics --create --if-not-exists --topic "$name" --partitions "$partitions" \
    --replication-factor "$REPLICATION_FACTOR" \
    --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" --config "retention.ms=$RETENTION_MS"
  have="$(kafka_topics --describe --topic "$name" | grep -o 'PartitionCount: *[0-9]*' | head -n 1 | grep -o '[0-9]*$')"
  if [[ -z "$have" ]]; then
    echo "create-topics: $name: not found after creation" >&2
    failed=1
  elif (( have < partitions )); then
    echo "create-topics: $name has $have partitions, the platform needs $partitions (see deploy/README.md, 'Topics')" >&2
    failed=1
  else
    echo "create-topics: $name ok ($have partitions, replication factor $REPLICATION_FACTOR)"
  fi
}

# Keyed by service order id (orders, sla), manufacturer (routing), merchant (kpi), SKU (catalogue).
topic orders.events "$PARTITIONS"
topic sla.events "$PARTITIONS"
topic routing.events "$PARTITIONS"
topic kpi.events "$PARTITIONS"
topic notifier.events "$PARTITIONS"
topic catalogue.events "$PARTITIONS"
# One partition: every replica of every service reads all account changes (rare) in order.
topic accounts.events 1
# One partition: every service reads all clock announcements in order (virtual clock only).
topic platform.clock 1

exit "$failed"
