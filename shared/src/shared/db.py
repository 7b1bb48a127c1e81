"""Async SQLAlchemy engine/session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
import weakref
from contextlib import asynccontextmanager
from typing import AsyncIterator, Iterable

from sqlalchemy import ColumnElement, Index, MetaData, any_, bindparam, event, exc, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

# Stable constraint names so Alembic migrations are reproducible across backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def declarative_base() -> type[DeclarativeBase]:
    """A fresh declarative base per service, so services never share tables."""

    class Base(DeclarativeBase):
        metadata = new_metadata()

    return Base


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index of the rows meeting ``where`` (SQL text), on PostgreSQL and SQLite alike. A
    query reads it only under that same condition: write the condition's values into the
    query as literals, not bound parameters (a cached generic plan could not prove them)."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


def one_of(session, column, values: Iterable) -> ColumnElement[bool]:
    """``column IN values`` for a statement of ``session``, as ONE statement text whatever the
    number of values.

    PostgreSQL: ``column = ANY(:values)``, the values as one array parameter. An IN list
    is a new statement text for every length: SQLAlchemy renders its parameters one by one
    at every execution, and asyncpg and PostgreSQL prepare and plan each new length again,
    while a consumer's batches (and so its lookups' lists) vary in size. SQLite runs in-process:
    the IN list."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def postgres_url(server: str, database: str, scheme: str = "postgresql+asyncpg") -> str:
    """The URL of ``database`` on ``server``: ``user@host:port`` over TCP, or ``user@/directory``
    through the Unix socket PostgreSQL keeps in that directory (a server on the same machine:
    a round trip then skips the TCP stack on both sides, about a fifth of its CPU here).
    ``scheme`` ``postgresql`` gives an asyncpg or libpq DSN."""
    user, _, host = server.rpartition("@")
    if host.startswith("/"):
        return f"{scheme}://{user}@/{database}?host={host}"
    return f"{scheme}://{server}/{database}"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # WAL lets the relay read while a request writes; NORMAL is durable in WAL mode.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # Pool sized so a busy worker keeps its connections instead of opening and closing
    # overflow ones per request (each new PostgreSQL connection costs a backend process,
    # a TLS attempt and re-preparing statements); same maximum (30) as before.
    # Last in, first out: the pool hands back the connection used last, so a service's few
    # concurrent transactions (a consumer's batch, the relay, a request or two) keep using the
    # same connections, whose prepared statements are already there. First in, first out
    # cycled through all twenty: every statement prepared twenty times, and statements whose
    # text varies (an IN list's length) pushed the others out of each connection's cache.
    # Plans made with each execution's values (``plan_cache_mode``): PostgreSQL's default
    # switches a prepared statement to a generic plan after five executions and keeps it
    # until the table's next ANALYZE. A plan cached while a new database's tables were tiny
    # (a sequential scan) then stays as they grow: a batch's ``= ANY(:ids)`` lookups
    # (``one_of``) took seconds and the notifier fell 5 s behind in the first half-minute of
    # the platform benchmark. Planning every execution costs little here: consumers batch,
    # so their services run few statements a second (the orders service's request path
    # has its own connections, adapters/direct.py, and keeps its generic plans).
    engine = create_async_engine(url, echo=echo, pool_size=20, max_overflow=10, pool_timeout=30, pool_use_lifo=True,
                                 connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}})
    # Rows inserted together (a unit of work's flush, an executemany) go as multi-row INSERTs
    # ("insertmanyvalues", as the psycopg2 dialect does by default) rather than asyncpg's
    # executemany, which PostgreSQL runs as one bind and execute per row: a consumer's batch
    # writes hundreds of rows a table.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for less than this is trusted without a ping.
IDLE_PING_AFTER_S = 5.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle.

    ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every request; a
    connection used a moment ago is almost surely alive, and if the server went away
    meanwhile the failing statement invalidates the whole pool anyway. So ping only
    connections idle for ``IDLE_PING_AFTER_S``; a failed ping makes the pool replace
    the connection (DisconnectionError → retry with a new one), as pre-ping does."""
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _fresh(_dbapi_conn, record):  # pragma: no cover - trivial
        record.info["last_used"] = time.monotonic()

    @event.listens_for(sync, "checkin")
    def _returned(_dbapi_conn, record):
        if record is not None:
            record.info["last_used"] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        if time.monotonic() - record.info.get("last_used", 0.0) < IDLE_PING_AFTER_S:
            return
        try:
            sync.dialect.do_ping(dbapi_conn)
        except Exception as error:  # noqa: BLE001 - any failure means: replace this connection
            raise exc.DisconnectionError(f"idle connection failed its ping: {error!r}") from error
        record.info["last_used"] = time.monotonic()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def lock_key(scope: str, name: str) -> int:
    """A signed 64-bit key naming ``name`` within ``scope`` (PostgreSQL advisory locks)."""
    digest = hashlib.blake2b(f"{scope}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_names(session: AsyncSession, scope: str, names: Iterable[str]) -> None:
    """Hold a lock on each of ``names`` until the session's transaction ends.

    Two transactions that read what the other writes (a check in one, its counterpart in
    the other) must not both read before either commits: each would miss the other. The
    first takes the names' locks, the second waits for its end and then reads what it
    committed. The locks are taken in one order, so two transactions with overlapping
    names cannot deadlock. PostgreSQL: advisory locks (READ COMMITTED: every statement sees
    what committed before it), across replicas. SQLite (one process writes a file): locks of
    this process, released when the transaction ends; its reads run outside the write
    transaction, so the database alone would not order them."""
    if session.get_bind().dialect.name == "postgresql":
        keys = sorted({lock_key(scope, n) for n in names})
        if keys:
            # unnest keeps the array's order: the locks are taken in ascending key order
            await session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                                  {"keys": keys})
        return
    held: dict[tuple[str, str], asyncio.Lock] = session.info.setdefault(_HELD, {})
    for key in sorted({(scope, n) for n in names} - held.keys()):
        lock = _LOCAL_LOCKS.get(key)
        if lock is None:
            lock = _LOCAL_LOCKS[key] = asyncio.Lock()
        await lock.acquire()
        held[key] = lock


_HELD = "shared.db.held_locks"
# a lock lives while a transaction holds it (or waits for it)
_LOCAL_LOCKS: "weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]" = weakref.WeakValueDictionary()


@event.listens_for(Session, "after_transaction_end")
def _release_local_locks(session: Session, transaction) -> None:
    if transaction.parent is None and _HELD in session.info:
        for lock in session.info.pop(_HELD).values():
            lock.release()


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on any error."""
    async with factory() as session:
        async with session.begin():
            yield session


from datetime import datetime, timezone  # noqa: E402

from sqlalchemy import BigInteger, DateTime, Integer  # noqa: E402
from sqlalchemy.types import TypeDecorator  # noqa: E402

# SQLite keeps an autoincrement only on INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
