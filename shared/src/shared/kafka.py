"""aiokafka producer handle and topic administration.

The producer is (re)started lazily so a service starts, and keeps taking requests,
while the broker is down; the outbox relay retries through this handle.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.stopping import bounded

log = logging.getLogger(__name__)


MAX_BATCH_BYTES = 256 * 1024


class TopicSpec:
    def __init__(self, name: str, partitions: int | None = None) -> None:
        self.name = name
        self.partitions = partitions


async def ensure_topics(
    bootstrap: str, topics: list[TopicSpec], *, default_partitions: int, replication_factor: int = 1
) -> None:
    """Create missing topics (an in-memory broker forgets them on restart)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t.name, t.partitions or default_partitions, replication_factor)
            for t in topics
            if t.name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()


class TopicsMissing(RuntimeError):
    """The broker lost topics (restarted empty); they were re-created, send again."""


class ProducerHandle:
    def __init__(
        self,
        bootstrap: str,
        *,
        idempotent: bool,
        client_id: str,
        topics: list[TopicSpec],
        default_partitions: int,
        replication_factor: int = 1,
    ) -> None:
        self.bootstrap = bootstrap
        self.idempotent = idempotent
        self.client_id = client_id
        self.topics = topics
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                await ensure_topics(
                    self.bootstrap,
                    self.topics,
                    default_partitions=self.default_partitions,
                    replication_factor=self.replication_factor,
                )
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=self.idempotent,
                    request_timeout_ms=5000,
                    linger_ms=2,
                    # Room for a few hundred events per partition in one record batch: the
                    # client keeps one request in flight per broker, so the batch size bounds
                    # how much a round trip carries (the default, 16 KiB, is ~25 events).
                    max_batch_size=MAX_BATCH_BYTES,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def ensure_present(self, topics: set[str]) -> None:
        """Make sure ``topics`` exist on the broker right now.

        The embedded broker accepts writes to a topic it no longer has after a
        restart and then never serves them, so the relay checks before a batch
        (re-creating what is missing) and again after the acks (a restart in
        between means the batch must be sent again)."""
        producer = await self.get()
        cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=5)
        missing = topics - set(cluster.topics())
        if missing:
            specs = {t.name: t for t in self.topics}
            await ensure_topics(
                self.bootstrap,
                [specs.get(name, TopicSpec(name)) for name in missing],
                default_partitions=self.default_partitions,
                replication_factor=self.replication_factor,
            )
            raise TopicsMissing(f"topics re-created on the broker: {sorted(missing)}")

    async def reset(self) -> None:
        """Drop the producer after a failure; the next ``get`` reconnects and re-creates topics."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await bounded(producer.stop(), what="producer stop", timeout_s=5)  # best effort

    async def healthy(self) -> bool:
        try:
            producer = await asyncio.wait_for(self.get(), timeout=3)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        await self.reset()


async def consume_reconnecting(make_consumer, body, what: str) -> None:
    """Start a consumer from ``make_consumer()`` and run ``body(consumer)`` with it; on any
    failure (the broker gone, a restarted in-memory broker) stop it, wait (0.2 s doubling to
    5 s) and start a new one. Ends only when cancelled."""
    backoff = 0.2
    while True:
        consumer = make_consumer()
        try:
            await consumer.start()
            backoff = 0.2
            await body(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reconnect on any broker failure
            log.warning("%s reconnecting: %r", what, exc)
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)
        finally:
            await bounded(consumer.stop(), what=f"{what} stop", timeout_s=5)  # a broken client may fail
