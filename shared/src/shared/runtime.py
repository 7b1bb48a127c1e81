"""Everything a running service holds: settings, engine, clock, outbox, relay,
consumers. ``create_service_app`` wires it into a FastAPI app whose lifespan
starts the relay and consumers and stops them cleanly."""
from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel, Field
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import db
from shared.accounts import AccountGuard, AccountListener
from shared.api_docs import install_api_docs
from shared.access import document, enforce
from shared.auth import Policy
from shared.clock import (CLOCK_TOPIC, Clock, ClockListener, ClockStateFile, SystemClock, VirtualClock,
                          advance_announcement)
from shared.consumer import ConsumerConfig, EventConsumer, Handler
from shared.errors import ApiError, install_error_handlers
from shared.events import EventRegistry, registry as default_registry
from shared.kafka import ProducerHandle, TopicSpec, kafka_connection, topic_configs
from shared.logging import configure_logging
from shared.metrics import SampledGauges
from shared.messaging_tables import MessagingTables
from shared.migrations import SchemaState, upgrade
from shared.operations import ClockAdvanced, ClockState, DeadLetters, OutboxState
from shared.gc_tuning import freeze_startup_objects
from shared.observability import RequestContextMiddleware, health_router, run_checks
from shared.outbox import Outbox, OutboxRelay
from shared.settings import ServiceSettings
from shared.stopping import bounded, cancel_and_wait
from shared.topics import ALL_TOPICS

log = logging.getLogger(__name__)
# Stopping: background tasks are warned about after STOP_WARN_S and abandoned after
# STOP_GIVE_UP_S (the routing decision writer may legitimately take up to 15 s to hand over).
STOP_WARN_S = 5.0
STOP_GIVE_UP_S = 20.0
STOP_DISPOSE_S = 5.0
SCHEMA_POLL_S = 1.0  # a replica started before its migrations looks for them this often


@dataclass
class ConsumerSpec:
    """A consumer group of this service: its topics and its handlers per event type."""

    suffix: str
    topics: list[str]
    handlers: Callable[["Runtime"], dict[str, Handler]]


@dataclass
class ServiceDefinition:
    name: str
    title: str
    metadata: MetaData
    tables: MessagingTables
    migrations_dir: Path
    routers: list[APIRouter] = field(default_factory=list)
    consumers: list[ConsumerSpec] = field(default_factory=list)
    registry: EventRegistry = default_registry
    topics: list[TopicSpec] = field(default_factory=lambda: list(ALL_TOPICS))
    on_start: Callable[["Runtime"], object] | None = None
    # The service's own parts (a dataclass of its workers, metrics, caches), built once with the
    # runtime, before its consumers' handlers, and held as ``Runtime.parts``: services read it
    # through a typed accessor rather than adding attributes to the runtime.
    parts: Callable[["Runtime"], object] | None = None


class Runtime:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.name = definition.name
        self.metrics = CollectorRegistry()
        # Gauges recomputed every METRICS_REFRESH_S (shared.metrics): the dead letters here,
        # and what a service adds with ``sampled.gauge`` (its consumers' handlers may, when built below).
        self.sampled = SampledGauges()
        self.metrics.register(self.sampled)
        self.engine = db.create_engine(settings.database_url)
        self.sessions = db.session_factory(self.engine)
        self.clock: Clock = VirtualClock() if settings.clock == "virtual" else SystemClock()
        self.tables = definition.tables
        self.registry = definition.registry
        self.outbox = Outbox(self.tables, self.registry, self.clock)
        # Every Kafka client of the service connects with these (TLS, SASL: shared.kafka).
        self.kafka = kafka_connection(settings)
        self.topic_configs = topic_configs(settings.kafka_min_insync_replicas, settings.kafka_topic_retention_ms)
        self.producer = ProducerHandle(
            self.kafka,
            idempotent=settings.kafka_idempotent_producer,
            client_id=f"{self.name}",
            topics=definition.topics,
            default_partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
            topic_configs=self.topic_configs,
            marker_topic=CLOCK_TOPIC,  # one partition, no consumer group reads it: the relay's marker lags nothing
        )
        self.relay = OutboxRelay(
            service=self.name,
            sessions=self.sessions,
            tables=self.tables,
            producer=self.producer,
            clock=self.clock,
            is_postgres=not settings.is_sqlite,
            poll_interval_s=settings.outbox_poll_interval_s,
            metrics=self.metrics,
            republish_window_s=settings.outbox_republish_window_s,
            keep_sent_s=settings.outbox_keep_sent_s,
            inbox_keep_s=settings.inbox_keep_s,
        )
        self.parts: object = definition.parts(self) if definition.parts else None
        self.consumers = [
            EventConsumer(
                ConsumerConfig(
                    name=f"{self.name}.{spec.suffix}",
                    topics=spec.topics,
                    bootstrap=self.kafka,
                    session_timeout_ms=settings.kafka_session_timeout_ms,
                ),
                sessions=self.sessions,
                tables=self.tables,
                registry=self.registry,
                handlers=spec.handlers(self),
                clock=self.clock,
                after_commit=self.relay.wake,
                metrics=self.metrics,
            )
            for spec in definition.consumers
        ]
        # Revocation (shared.accounts): Policy asks it on every request; the orders service
        # installs its own, fed from its database too.
        self.account_guard: AccountGuard = AccountGuard()
        # /ready: the schema is at the migrations' head (shared.migrations.SchemaState).
        self.schema = SchemaState(definition.migrations_dir, self.engine, self.name)
        self.ready_checks = {"database": self.db_ready, "broker": self.producer.healthy, "schema": self.ready_schema}
        self.sampled.gauge("consumer_dead_letters", "Parked messages held in this service's dead letters, per "
                           "consumer group (until deleted once re-driven)", ["group"], self._dead_letters)
        self.ready_gauge = Gauge("service_ready", "Readiness checks of /ready, sampled every METRICS_REFRESH_S "
                                 "(1 passed, 0 failed)", ["check"], registry=self.metrics)
        self._tasks: list[asyncio.Task] = []
        self._metrics_server = None
        self._started = False  # the definition's on_start has run

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        """One transaction; wakes the relay after commit if it wrote events."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop("outbox_added", False):
                self.relay.wake()

    async def start(self) -> None:
        if self.settings.run_migrations_on_start:
            await upgrade(self.definition.migrations_dir, self.settings.database_url)
        await self.schema.load()
        if self.settings.metrics_port:
            # prometheus_client's own operations listener (a thread): scraped without a token,
            # bound to METRICS_HOST (a private interface), never the public service port.
            from prometheus_client import start_http_server

            self._metrics_server, _ = start_http_server(self.settings.metrics_port, addr=self.settings.metrics_host,
                                                        registry=self.metrics)
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(self._sample_metrics(), "metrics-sampler")
        for c in self.consumers:
            self._spawn(c.run(), f"consumer-{c.config.name}")
        self._spawn(AccountListener(self.account_guard, self.kafka,
                                    replication_factor=self.settings.kafka_replication_factor,
                                    topic_configs=self.topic_configs).run(), "account-listener")
        if isinstance(self.clock, VirtualClock):
            state = ClockStateFile(self.settings.clock_state_file) if self.settings.clock_state_file else None
            listener = ClockListener(self.clock, self.kafka, announce=self.announce_clock,
                                     state=state, name=self.name)
            self._spawn(listener.run(), "clock-listener")
        if self.definition.on_start:
            try:
                migrated = await self.schema.check() is True
            except Exception as exc:  # noqa: BLE001 - the database away at start: wait for it below
                log.warning("database not reachable at start", extra={"error": repr(exc)})
                migrated = False
            if migrated:
                await self._on_start()
            else:
                # Started before `<service> migrate` (its on_start reads its tables): not ready
                # (/ready: migrations pending) until the schema is at the head, then it starts.
                log.warning("database schema not at the migrations' head: waiting for `%s migrate`", self.name)
                self._spawn(self._on_start_when_migrated(), "start-when-migrated")
        else:
            self._started = True
        freeze_startup_objects()  # a serving process only (shared.gc_tuning)
        log.info("service started", extra={"port": self.settings.port})

    async def _on_start(self) -> None:
        result = self.definition.on_start(self)
        if asyncio.iscoroutine(result):
            await result
        self._started = True

    async def _on_start_when_migrated(self) -> None:
        while True:
            try:
                if await self.schema.check() is True:
                    await self._on_start()
                    return
            except Exception as exc:  # noqa: BLE001 - the database away or on_start failed: again
                log.warning("start after migration failed, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(SCHEMA_POLL_S)

    async def _dead_letters(self):
        dl = self.tables.dead_letters
        counts = {c.config.name: 0 for c in self.consumers}
        async with self.sessions() as s:
            counts.update((await s.execute(select(dl.c.consumer, func.count()).group_by(dl.c.consumer))).all())
        return [((group,), n) for group, n in counts.items()]

    async def _sample_metrics(self) -> None:
        """Every METRICS_REFRESH_S: the readiness checks, then (once the service has started:
        its tables exist) the outbox backlog and the sampled gauges. Failures keep the last
        values and are logged once until the next success."""
        backlog_failed = False
        while True:
            detail, _ = await run_checks(self.ready_checks)
            for check, ok in detail.items():
                self.ready_gauge.labels(check).set(1 if ok else 0)
            if self._started:
                try:
                    await self.relay.backlog()
                    backlog_failed = False
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the database away: sampled again next round
                    if not backlog_failed:
                        log.warning("outbox backlog could not be sampled: %r", exc)
                    backlog_failed = True
                await self.sampled.refresh()
            # until the service has started, readiness is sampled every second (it changes then)
            await asyncio.sleep(self.settings.metrics_refresh_s if self._started
                                else min(SCHEMA_POLL_S, self.settings.metrics_refresh_s))

    async def ready_schema(self) -> bool | str:
        """/ready's schema check: at the migrations' head, and the service's own start done."""
        result = await self.schema.check()
        if result is True and not self._started:
            return "starting: the schema is migrated, the service is finishing its start"
        return result

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def spawn(self, coro, name: str) -> None:
        """Background work owned by the service; cancelled on stop."""
        self._spawn(coro, name)

    @staticmethod
    def _task_done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died", extra={"task": task.get_name(), "error": repr(task.exception())})

    async def stop(self) -> None:
        """Bounded: a background task that does not end within STOP_GIVE_UP_S of its
        cancellation is logged with what it waits on and left behind (see shared.stopping)."""
        await cancel_and_wait(self._tasks, what=f"{self.name} stop", warn_after_s=STOP_WARN_S,
                              give_up_after_s=STOP_GIVE_UP_S)
        self._tasks.clear()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        await self.producer.close()
        await bounded(self.engine.dispose(), what=f"{self.name} database connections close", timeout_s=STOP_DISPOSE_S)

    async def announce_clock(self, payload: bytes) -> None:
        producer = await self.producer.get()
        try:
            await self.producer.ensure_present({CLOCK_TOPIC})
        except Exception:  # noqa: BLE001 - re-created just now; send below
            pass
        await producer.send_and_wait(CLOCK_TOPIC, payload, key=b"clock", partition=0)

    async def db_ready(self) -> bool:
        try:
            await db.ping(self.engine)
            return True
        except Exception:  # noqa: BLE001
            return False


class ClockAdvance(BaseModel):
    seconds: float = Field(gt=0, le=10 * 365 * 86400, description="How far to move the virtual clock forward")


OPERATOR = Policy("platform_operator")
MAX_OFFSET = 1_000_000  # list offsets beyond this are refused (422), not passed to the database


def admin_router() -> APIRouter:
    # Operations endpoints are for platform operators only (dead letters hold customer data;
    # the virtual clock would fire every deadline).
    router = APIRouter(prefix="/admin", tags=["operations"], dependencies=[Depends(OPERATOR)])

    @router.get("/clock", summary="This service's clock", response_model=ClockState)
    async def get_clock(request: Request) -> dict:
        rt: Runtime = request.app.state.runtime
        clock = rt.clock
        virtual = isinstance(clock, VirtualClock)
        return {
            "now": clock.now().isoformat(),
            "virtual": virtual,
            "offset_seconds": clock.offset.total_seconds() if virtual else 0.0,
            "seq": clock.seq if virtual else 0,
        }

    @router.post("/clock/advance", summary="Move the shared virtual clock forward (virtual clock only)",
                 response_model=ClockAdvanced)
    async def advance_clock(body: ClockAdvance, request: Request) -> dict:
        rt: Runtime = request.app.state.runtime
        clock = rt.clock
        if not isinstance(clock, VirtualClock):
            raise ApiError(409, "clock_not_virtual", "this service runs on the system clock; set CLOCK=virtual")
        # Announced, not applied here: every service (this one included) applies advances in
        # the topic's order, so two advances made at once on two services both count.
        advance_id = uuid.uuid4().hex
        try:
            await rt.announce_clock(advance_announcement(body.seconds, advance_id, rt.name))
        except Exception as exc:  # noqa: BLE001
            raise ApiError(503, "broker_unavailable", f"the clock advance could not be announced: {exc!r}")
        if not await clock.wait_applied(advance_id, timeout=10):
            raise ApiError(503, "clock_not_applied", "the advance was announced but not read back within 10 s; "
                                                     "it will apply when the clock listener catches up")
        offset, seq = clock.offset.total_seconds(), clock.seq
        return {"now": clock.now().isoformat(), "offset_seconds": offset, "seq": seq}

    @router.get("/dead-letters", summary="Parked messages this service could not apply", response_model=DeadLetters)
    async def dead_letters(request: Request, limit: int = Query(50, ge=1, le=500),
                           offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
        rt: Runtime = request.app.state.runtime
        dl = rt.tables.dead_letters
        async with rt.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(dl))
            rows = (await s.execute(select(dl).order_by(dl.c.id.desc()).limit(limit).offset(offset))).mappings().all()
        return {
            "total": total,
            "items": [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows],
        }

    @router.get("/outbox", summary="Outbox backlog", response_model=OutboxState)
    async def outbox_state(request: Request) -> dict:
        rt: Runtime = request.app.state.runtime
        return {"pending": await rt.relay.pending()}

    return router


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """``router``'s routes as routes of the app itself (see ``create_service_app``)."""
    if router.dependencies or router.responses or router.callbacks or router.on_startup or router.on_shutdown \
            or router.deprecated or not router.include_in_schema:
        raise ValueError(f"router {router.prefix!r} sets what only an inclusion applies: include it instead")
    app.router.routes.extend(router.routes)


def create_service_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    configure_logging(definition.name, settings.log_level, settings.log_json,
                      production=settings.environment == "production")
    runtime = Runtime(definition, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        enforce(app)  # default-deny: a route without an access policy is never served
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # /docs and /redoc with their assets served here, not from a CDN (shared.api_docs)
    app = FastAPI(title=definition.title, version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The service's own routes first: a request is matched against the routes in order, and
    # the service's hot routes (GET /v1/route at thousands a second) should not try the
    # operations routes before their own.
    # Their routes join the app's own list (``Router.routes``) rather than being included:
    # FastAPI keeps an included router as one entry and scans its routes twice per request (to
    # match, then to dispatch), a tenth of an order action's time. The routes already carry their
    # router's prefix and tags, and the routers set nothing else an inclusion would add (no
    # dependencies, responses, callbacks or lifespan: checked here), so the OpenAPI document and
    # every answer are the same (shared/tests/test_add_routes.py compares them).
    for r in definition.routers:
        add_routes(app, r)
    install_api_docs(app)
    app.state.runtime = runtime
    app.add_middleware(RequestContextMiddleware, metrics=runtime.metrics)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "X-Customer-Id", "Idempotency-Key",
                                          "If-Match", "X-Correlation-ID"])
    install_error_handlers(app)
    app.include_router(health_router(definition.name, runtime.metrics, runtime.ready_checks))
    app.include_router(admin_router())
    enforce(app)
    document(app, settings.token_url)
    return app


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime
