"""Revocation: a token issued before its account last changed is refused, on every service.

Every account (an OAuth2 client of the orders service) has a version, starting at 1,
that the orders service raises when the account is deactivated or reactivated or its
permissions or categories change. The token endpoint writes the version it issued for in
the token (claim ``ver``, ``Principal.version``). ``AccountGuard`` knows the latest version
of every account that changed and refuses (401 ``token_revoked``) a token carrying an
older one; ``shared.auth.Policy`` asks it on every request (``runtime.account_guard``).

Where a guard learns versions from:

- the orders service: its own database (authoritative; see the orders README), and at
  once from a change made by the same process;
- every service (orders included): ``AccountListener``, which follows ``accounts.events``
  (``account.changed``, published through the orders outbox) from the beginning, without
  a consumer group, like the clock listener: every replica sees every change. A change
  takes effect there within the event latency (outbox relay + one fetch, well under a
  second on a healthy broker), and after a service starts once the listener has read the
  topic. The topic's retention must exceed the token lifetime.

A token without ``ver`` (minted with the signing secret by tooling, never by the token
endpoint) counts as version 0: valid as long as its account never changed.
"""
from __future__ import annotations

import logging

from shared.auth import Principal
from shared.contracts.accounts import AccountChanged
from shared.errors import ApiError
from shared.events import decode_head, registry
from shared.topics import ACCOUNT_EVENTS

log = logging.getLogger(__name__)

ACCOUNT_CHANGED = "account.changed"


class AccountGuard:
    """Latest versions of the accounts that changed; ``check`` refuses older tokens."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}

    def note(self, client_id: str, version: int) -> bool:
        """Record an account's version (versions only grow: an older one is ignored)."""
        if version > self._versions.get(client_id, 0):
            self._versions[client_id] = version
            return True
        return False

    def latest(self, client_id: str) -> int | None:
        return self._versions.get(client_id)

    def apply(self, change: AccountChanged) -> bool:
        return self.note(change.client_id, change.version)

    def check(self, principal: Principal) -> None:
        """ApiError 401 ``token_revoked`` when the account changed after the token was issued."""
        latest = self._versions.get(principal.subject)
        if latest is not None and (principal.version or 0) < latest:
            raise ApiError(401, "token_revoked",
                           "this token was issued before its account was deactivated or changed; get a new one")

    def __len__(self) -> int:
        return len(self._versions)


def apply_message(guard: AccountGuard, raw: bytes) -> bool:
    """Apply one message of ``accounts.events``; other event types are ignored."""
    head = decode_head(raw)
    if head.type != ACCOUNT_CHANGED or head.schema_version != 1:
        return False
    return guard.apply(registry.decode_data(head).data)


class AccountListener:
    """Follows ``accounts.events`` from the beginning (no consumer group: every replica of
    every service must see every change) and feeds ``guard``."""

    def __init__(self, guard: AccountGuard, kafka, *, replication_factor: int = 1,
                 topic_configs: dict[str, str] | None = None) -> None:
        self.guard = guard
        self.kafka = kafka  # shared.kafka.Kafka: the service's connection or a plaintext address
        # for creating the topic when it is missing (provisioning normally created it)
        self.replication_factor = replication_factor
        self.topic_configs = topic_configs

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from shared.kafka import TopicSpec, consume_reconnecting, ensure_topics, kafka_options

        def make():
            return AIOKafkaConsumer(**kafka_options(self.kafka), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", metadata_max_age_ms=3000)

        async def follow(consumer) -> None:
            # Created here if missing (one partition), before any metadata request could have
            # the broker auto-create it with its default partition count; every partition it
            # has is read all the same.
            await ensure_topics(self.kafka, [TopicSpec(ACCOUNT_EVENTS, partitions=1)], default_partitions=1,
                                replication_factor=self.replication_factor, configs=self.topic_configs)
            await consumer.topics()  # metadata
            tps = [TopicPartition(ACCOUNT_EVENTS, p) for p in sorted(consumer.partitions_for_topic(ACCOUNT_EVENTS) or {0})]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=1000)
                for msgs in batch.values():
                    for msg in msgs:
                        try:
                            if apply_message(self.guard, msg.value):
                                log.info("account change applied",
                                         extra={"key": (msg.key or b"").decode(errors="replace")})
                        except Exception as exc:  # noqa: BLE001 - a bad message is skipped, never fatal
                            log.warning("bad account event skipped", extra={"error": repr(exc)})
                ends = await consumer.end_offsets(tps)
                for tp in tps:
                    if await consumer.position(tp) > ends[tp]:
                        # The in-memory broker restarted: its log is shorter than where we
                        # were (the versions already learnt are kept).
                        await consumer.seek_to_beginning(tp)

        await consume_reconnecting(make, follow, "account listener")
