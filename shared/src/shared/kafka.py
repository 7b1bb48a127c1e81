"""aiokafka clients: the connection options (TLS, SASL) every client is built with, topic
administration, and the producer handle.

The producer is (re)started lazily so a service starts, and keeps taking requests,
while the broker is down; the outbox relay retries through this handle.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.retry import Backoff
from shared.stopping import bounded

log = logging.getLogger(__name__)


MAX_BATCH_BYTES = 256 * 1024
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code in a CreateTopics answer


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them. Plain values only (no SSL context), so
    it can be handed to worker processes (``kpi replay``); :func:`kafka_options` turns it into
    the keyword arguments of an aiokafka client."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_key_password: str = field(default="", repr=False)
    ssl_check_hostname: bool = True

    @classmethod
    def from_settings(cls, settings) -> "KafkaConnection":
        return cls(
            bootstrap=settings.kafka_bootstrap,
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password.get_secret_value(),
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_key_password=settings.kafka_ssl_key_password.get_secret_value(),
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
        )


# A bare "host:port[,host:port]" is a plaintext connection (the embedded broker, tests).
Kafka = Union[KafkaConnection, str]


@lru_cache(maxsize=16)
def _ssl_context(cafile: str, certfile: str, keyfile: str, password: str, check_hostname: bool) -> ssl.SSLContext:
    # Once per process and file set: every client of the service shares the context.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile or None)
    if certfile:
        ctx.load_cert_chain(certfile, keyfile or None, password or None)
    ctx.check_hostname = check_hostname
    return ctx


def kafka_options(kafka: Kafka) -> dict:
    """The connection keyword arguments of every aiokafka client (producer, consumer, admin):
    bootstrap servers, security protocol, TLS context, SASL mechanism and credentials.
    Every client of the platform is built with ``**kafka_options(...)``."""
    conn = KafkaConnection(bootstrap=kafka) if isinstance(kafka, str) else kafka
    opts: dict = {"bootstrap_servers": conn.bootstrap, "security_protocol": conn.security_protocol}
    if conn.security_protocol in ("SSL", "SASL_SSL"):
        opts["ssl_context"] = _ssl_context(conn.ssl_cafile, conn.ssl_certfile, conn.ssl_keyfile,
                                           conn.ssl_key_password, conn.ssl_check_hostname)
    if conn.security_protocol.startswith("SASL_"):
        # aiokafka takes SCRAM credentials in the sasl_plain_* arguments too.
        opts.update(sasl_mechanism=conn.sasl_mechanism, sasl_plain_username=conn.sasl_username,
                    sasl_plain_password=conn.sasl_password)
    return opts


def kafka_connection(settings) -> KafkaConnection:
    """The service's connection, checked once at start: TLS files that cannot be read stop
    the service with a message naming the setting (not a reconnect loop logging forever)."""
    from shared.settings import SettingsError

    conn = KafkaConnection.from_settings(settings)
    if conn.security_protocol in ("SSL", "SASL_SSL"):
        prefix = settings.model_config.get("env_prefix", "")
        try:
            kafka_options(conn)
        except (OSError, ssl.SSLError) as exc:
            names = [f"{prefix}KAFKA_SSL_{n}".upper() for n, v in
                     (("cafile", conn.ssl_cafile), ("certfile", conn.ssl_certfile), ("keyfile", conn.ssl_keyfile)) if v]
            raise SettingsError(f"invalid settings: {', '.join(names) or prefix + 'KAFKA_SSL_CAFILE'}: "
                                f"cannot load the TLS files: {exc}") from None
    return conn


class TopicSpec:
    def __init__(self, name: str, partitions: int | None = None) -> None:
        self.name = name
        self.partitions = partitions


def topic_configs(min_insync_replicas: int | None, retention_ms: int | None) -> dict[str, str]:
    configs = {}
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    if retention_ms is not None:
        configs["retention.ms"] = str(retention_ms)
    return configs


async def ensure_topics(
    kafka: Kafka, topics: list[TopicSpec], *, default_partitions: int, replication_factor: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Create missing topics (an in-memory broker forgets them on restart)."""
    admin = AIOKafkaAdminClient(**kafka_options(kafka), request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t.name, t.partitions or default_partitions, replication_factor, topic_configs=configs or None)
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


@dataclass
class TopicReport:
    name: str
    wanted_partitions: int
    partitions: int
    replication_factor: int
    created: bool
    problems: list[str]


async def provision_topics(
    kafka: Kafka, topics: list[TopicSpec], *, default_partitions: int, replication_factor: int,
    configs: dict[str, str], timeout_ms: int = 30000,
) -> list[TopicReport]:
    """Create every topic that is missing with its partitions, replication factor and
    ``configs``; describe every topic and report the ones with fewer partitions or replicas
    than wanted (existing topics are never changed: adding partitions moves keys, so it is
    an operator's decision). Idempotent."""
    admin = AIOKafkaAdminClient(**kafka_options(kafka), request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {t.name: t.partitions or default_partitions for t in topics}
        missing = [NewTopic(name, n, replication_factor, topic_configs=configs or None)
                   for name, n in wanted.items() if name not in existing]
        created = set()
        if missing:
            answer = await admin.create_topics(missing)
            for name, code, message in (answer.topic_errors or ()):
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed: error {code} ({message})")
                if code == 0:
                    created.add(name)
        # Describe only topics that exist now: asking a broker with auto-creation on about a
        # missing topic would create it with the broker's default partition count.
        described = {d["topic"]: d for d in await admin.describe_topics(list(wanted))}
        reports = []
        for name, n in wanted.items():
            d = described.get(name)
            parts = d.get("partitions", []) if d else []
            rf = min((len(p.get("replicas", [])) for p in parts), default=0)
            problems = []
            if not parts:
                problems.append("not found after creation")
            elif len(parts) < n:
                problems.append(f"has {len(parts)} partitions, the platform needs {n}")
            if parts and rf < replication_factor:
                problems.append(f"has replication factor {rf}, the settings ask for {replication_factor}")
            reports.append(TopicReport(name, n, len(parts), rf, name in created, problems))
        return reports
    finally:
        await admin.close()


class TopicsMissing(RuntimeError):
    """The broker lost topics (restarted empty); they were re-created, send again."""


class ProducerHandle:
    def __init__(
        self,
        kafka: Kafka,
        *,
        idempotent: bool,
        client_id: str,
        topics: list[TopicSpec],
        default_partitions: int,
        replication_factor: int = 1,
        topic_configs: dict[str, str] | None = None,
        marker_topic: str | None = None,
    ) -> None:
        self.kafka = kafka
        self.idempotent = idempotent
        self.client_id = client_id
        self.topics = topics
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self.topic_configs = topic_configs
        # The partition (0) of this topic under which the relay keeps its marker on the broker
        # (``broker_marked``); a topic every broker of the platform has.
        self.marker_topic = marker_topic or (topics[0].name if topics else "")
        self._producer: AIOKafkaProducer | None = None
        self._marker: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                await ensure_topics(
                    self.kafka,
                    self.topics,
                    default_partitions=self.default_partitions,
                    replication_factor=self.replication_factor,
                    configs=self.topic_configs,
                )
                producer = AIOKafkaProducer(
                    **kafka_options(self.kafka),
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
                self.kafka,
                [specs.get(name, TopicSpec(name)) for name in missing],
                default_partitions=self.default_partitions,
                replication_factor=self.replication_factor,
                configs=self.topic_configs,
            )
            raise TopicsMissing(f"topics re-created on the broker: {sorted(missing)}")

    # ---- the relay's marker: is this the broker the relay published to?
    @property
    def relay_group(self) -> str:
        """The consumer group holding the relay's marker (it never joins or reads)."""
        return f"{self.client_id}.outbox-relay"

    async def _marker_client(self) -> AIOKafkaConsumer:
        if self._marker is None:
            async with self._lock:
                if self._marker is None:
                    consumer = AIOKafkaConsumer(**kafka_options(self.kafka), client_id=f"{self.client_id}-relay-marker",
                                                group_id=self.relay_group, enable_auto_commit=False,
                                                request_timeout_ms=5000)
                    try:
                        await consumer.start()
                    except BaseException:
                        await bounded(consumer.stop(), what="marker client stop", timeout_s=5)
                        raise
                    self._marker = consumer
        return self._marker

    async def broker_marked(self, timeout_s: float = 5.0) -> bool:
        """Whether the broker holds the relay's marker: a committed offset of the relay's group
        on partition 0 of ``marker_topic``. A broker that restarted empty (the embedded one
        keeps nothing, committed offsets included) has lost it; Apache Kafka keeps it (a
        replicated, compacted ``__consumer_offsets``; ``mark_broker`` refreshes it long
        before ``offsets.retention.minutes`` could expire it)."""
        async with asyncio.timeout(timeout_s):
            consumer = await self._marker_client()
            return await consumer.committed(TopicPartition(self.marker_topic, 0)) is not None

    async def mark_broker(self, timeout_s: float = 5.0) -> None:
        """Leave (or refresh) the marker on the broker; ``marker_topic`` must exist."""
        tp = TopicPartition(self.marker_topic, 0)
        async with asyncio.timeout(timeout_s):
            consumer = await self._marker_client()
            # a commit needs the partition assigned; unassigned at once, so the client never
            # fetches it nor asks for its metadata (a broker may auto-create a topic it is
            # asked about, with its default partition count)
            consumer.assign([tp])
            try:
                await consumer.commit({tp: (0, "outbox relay marker")})
            finally:
                consumer.unsubscribe()

    async def ensure_all_present(self) -> None:
        """Every topic of the handle on the broker, missing ones created with their partitions."""
        try:
            await self.ensure_present({t.name for t in self.topics} | {self.marker_topic})
        except TopicsMissing:
            pass

    async def reset(self) -> None:
        """Drop the producer after a failure; the next ``get`` reconnects and re-creates topics."""
        async with self._lock:
            producer, self._producer = self._producer, None
            marker, self._marker = self._marker, None
        if producer is not None:
            await bounded(producer.stop(), what="producer stop", timeout_s=5)  # best effort
        if marker is not None:
            await bounded(marker.stop(), what="marker client stop", timeout_s=5)

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
    failure (the broker gone, a restarted in-memory broker) stop it, wait (``shared.retry``:
    0.2 s doubling to 5 s, jittered, back to 0.2 s once a client starts) and start a new one.
    Ends only when cancelled."""
    backoff = Backoff(0.2, 5.0)
    while True:
        consumer = make_consumer()
        try:
            await consumer.start()
            backoff.reset()
            await body(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reconnect on any broker failure
            log.warning("%s reconnecting: %r", what, exc)
            await backoff.wait()
        finally:
            await bounded(consumer.stop(), what=f"{what} stop", timeout_s=5)  # a broken client may fail
