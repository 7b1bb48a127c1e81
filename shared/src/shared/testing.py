"""Pytest fixtures shared by every test suite (loaded from the root conftest.py).

- ``broker``: a fresh embedded broker per test (it starts in milliseconds); ``producer``
  publishes to it.
- ``db_backend``: every DB test runs on SQLite and on PostgreSQL
  (127.0.0.1:5432, trust auth). Without a reachable PostgreSQL the postgres
  variant is skipped locally and FAILS in CI (CI=true), so it cannot vanish silently.
- ``database_url(name)``: a fresh, empty database for one service.
- ``start_service(create_app, settings_cls, **overrides)``: the service's real
  ASGI app with its lifespan (migrations, relay, consumers) and an httpx client.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import AsyncExitStack
from typing import Any, Awaitable, Callable

import httpx
import pytest

from shared.broker import EmbeddedBroker

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_HOST = os.environ.get("TEST_PG_HOST", "postgres@127.0.0.1:5432")


def _pg_available() -> bool:
    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN_DSN), timeout=3)
        except Exception:  # noqa: BLE001
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


_PG_OK: bool | None = None


def pg_available() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    return _PG_OK


@pytest.fixture
def broker():
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def producer(broker):
    """A plain producer on the test's broker (no idempotence: the embedded broker has none)."""
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request) -> str:
    if request.param == "postgres" and not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    return request.param


# The services a test started, stopped by whichever teardown comes first: the services' own,
# or the databases' (services must not outlive their databases, whatever the fixture order).
_STOP_SERVICES = pytest.StashKey[Callable[[], Awaitable[Any]]]()


@pytest.fixture
async def database_url(db_backend, tmp_path, request) -> Callable[[str], Awaitable[str]]:
    """Factory: ``await database_url("orders")`` → URL of a new empty database."""
    import asyncpg

    created: list[str] = []

    async def make(name: str) -> str:
        if db_backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path}/{name.replace('-', '_')}.db"
        db = f"t_{uuid.uuid4().hex[:12]}_{name.replace('-', '_')}"[:60]
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{db}"')
        finally:
            await conn.close()
        created.append(db)
        return f"postgresql+asyncpg://{PG_HOST}/{db}"

    yield make
    stop_services = request.node.stash.get(_STOP_SERVICES, None)
    if stop_services is not None:
        await stop_services()
    if created:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            for db in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()


class RunningService:
    def __init__(self, app, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.runtime = app.state.runtime


@pytest.fixture
async def start_service(broker, request, tmp_path_factory):
    """Factory starting real service apps in-process on the test's broker; all
    stopped at teardown (before the broker and before their databases are dropped).
    Each gets a data directory of its own (journals, clock state, blobs)."""
    from asgi_lifespan import LifespanManager

    async with AsyncExitStack() as stack:
        request.node.stash[_STOP_SERVICES] = stack.aclose

        async def start(create_app: Callable[..., Any], settings_cls, **overrides) -> RunningService:
            overrides.setdefault("kafka_session_timeout_ms", 2000)
            overrides.setdefault("kafka_bootstrap", broker.bootstrap)
            overrides.setdefault("data_dir", str(tmp_path_factory.mktemp("service-data")))
            settings = settings_cls(environment="test", log_json=False, outbox_poll_interval_s=0.1, **overrides)
            app = create_app(settings)
            await stack.enter_async_context(LifespanManager(app, startup_timeout=60, shutdown_timeout=60))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            )
            return RunningService(app, client)

        yield start


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns a truthy value (for cross-service delivery, not for time rules)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


async def serve_uvicorn(app):
    """``app`` under a real uvicorn server (the services' HTTP protocol: ``shared.http_server``)
    on a free loopback port, lifespan off: (server, its task, port). Stop it with
    ``server.should_exit = True; await task``."""
    import socket

    import uvicorn

    from shared.http_server import uvicorn_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="critical",
                                           access_log=False, http=uvicorn_options()["http"]))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port
