"""The order store on PostgreSQL through asyncpg: a decision in ONE statement (adapters/store.py).

An action is read-decide-write with optimistic versioning, so it needs no explicit
transaction: the order is read (or taken from this process's cache, below), the domain
decides, and everything the decision writes goes in one statement whose data-modifying
CTEs only write when the versioned ``UPDATE`` matched::

    WITH u AS (UPDATE service_orders SET … WHERE id = $1 AND version = $2 RETURNING 1),
         i0 AS (INSERT INTO timeline … SELECT … FROM u),        -- timeline, rating, attachments,
         i1 AS (INSERT INTO outbox … SELECT … FROM u),          -- exchange order, the events
         x0 AS (UPDATE exchange_orders SET … WHERE id = … AND EXISTS (SELECT 1 FROM u))
    SELECT count(*) FROM u

A single statement is atomic: the order row, its records and its events commit together or
not at all (transactional outbox), and a lost version race writes nothing. That is two round
trips per action instead of six (BEGIN, SELECT, UPDATE, INSERT, INSERT, COMMIT), without the
session's layers on the request path. An application is a transaction holding the line's
advisory lock (BEGIN and the lock in one round trip): one read of its facts, one statement
inserting order, timeline entry and events, COMMIT.

The reads are the port's Core statements (adapters/store.py) compiled once for PostgreSQL.
Connections come from an asyncpg pool; JSON columns use the codec SQLAlchemy's dialect
installs on its own connections (parameters are JSON text, results decoded values).
"""
from __future__ import annotations

import asyncio
import functools
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import asyncpg
from sqlalchemy import JSON
from sqlalchemy.engine import URL

from orders.adapters.store import TABLES, Collided, OrderUnit, line_lock_key
from orders.domain.application import Application
from orders.domain.decisions import Decision, Order
from shared.outbox import Outbox

POOL_SIZE = 20


@functools.cache
def _pg():
    """SQLAlchemy's asyncpg dialect: the SQL text and casts of the port's statements (imported on
    first use: a service on SQLite never loads it)."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    return dialect()


class _Tables:
    """Column types (for the casts of ``SELECT $n::type`` rows) and JSON columns of the written tables."""

    def __init__(self, tables) -> None:
        self.types = {t.name: {c.name: c.type.compile(dialect=_pg()) for c in t.columns} for t in tables}
        self.json = {t.name: frozenset(c.name for c in t.columns if isinstance(c.type, JSON)) for t in tables}

    def value(self, table: str, column: str, value: Any) -> Any:
        return json.dumps(value) if value is not None and column in self.json[table] else value


_compiled: dict[Any, tuple[str, tuple[str, ...], dict[str, Any]]] = {}


def _query(stmt) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(SQL text, parameter names in ``$n`` order, values of the statement's own literals)."""
    found = _compiled.get(stmt)
    if found is None:
        c = stmt.compile(dialect=_pg())
        found = _compiled[stmt] = (str(c), tuple(c.positiontup), dict(c.params))
    return found


async def _json_codec(conn: asyncpg.Connection) -> None:
    """The codec SQLAlchemy's asyncpg dialect installs: JSON text in, decoded values out."""
    await conn.set_type_codec("json", encoder=str.encode, decoder=lambda b: json.loads(b.decode()),
                              schema="pg_catalog", format="binary")


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo. These connections set no session state (no SET, no
    LISTEN, only transaction-scoped locks), and asyncpg's default reset would cost a round trip
    on every request. An open transaction is still rolled back by the pool itself."""


class _Statements:
    def __init__(self, tables: _Tables) -> None:
        self.tables = tables
        self._sql: dict[tuple, str] = {}

    def _insert(self, name: str, table: str, cols: tuple[str, ...], rows: int, first: int,
                gated: bool) -> tuple[str, int]:
        types = self.tables.types[table]
        n = first
        tuples = []
        for _ in range(rows):
            tuples.append(", ".join(f"${i}::{types[c]}" for i, c in enumerate(cols, start=n)))
            n += len(cols)
        names = ", ".join(f'"{c}"' for c in cols)
        if gated:
            body = " UNION ALL ".join(f"SELECT {t} FROM u" for t in tuples)
        else:
            body = "VALUES " + ", ".join(f"({t})" for t in tuples)
        return f"{name} AS (INSERT INTO {table} ({names}) {body})", n

    def sql(self, update_cols: tuple[str, ...] | None, inserts: tuple, updates: tuple) -> str:
        """The statement of one write: ``update_cols`` of the versioned order update (None: an
        insert-only write), ``inserts`` ((table, columns, rows), …), ``updates`` ((table,
        columns), …) of side rows, by id, done only when the order update matched."""
        key = (update_cols, inserts, updates)
        sql = self._sql.get(key)
        if sql is not None:
            return sql
        ctes, n = [], 1
        gated = update_cols is not None
        if gated:
            sets = ", ".join(f'"{c}" = ${i}' for i, c in enumerate(update_cols, start=3))
            ctes.append(f"u AS (UPDATE service_orders SET {sets} WHERE id = $1 AND version = $2 RETURNING 1)")
            n = 3 + len(update_cols)
        for i, (table, cols, rows) in enumerate(inserts):
            cte, n = self._insert(f"i{i}", table, cols, rows, n, gated)
            ctes.append(cte)
        for i, (table, cols) in enumerate(updates):
            sets = ", ".join(f'"{c}" = ${j}' for j, c in enumerate(cols, start=n))
            n += len(cols)
            ctes.append(f"x{i} AS (UPDATE {table} SET {sets} WHERE id = ${n} AND EXISTS (SELECT 1 FROM u))")
            n += 1
        tail = "SELECT count(*) FROM u" if gated else "SELECT 1"
        sql = self._sql[key] = f"WITH {', '.join(ctes)} {tail}"
        return sql

    def write(self, update: tuple[str, int, dict[str, Any]] | None, inserts: list[tuple[str, dict[str, Any]]],
              updates: list[tuple[str, str, dict[str, Any]]]) -> tuple[str, list[Any]]:
        """(SQL, arguments) for ``update`` (order id, expected version, values), the rows to insert
        (table, row) — consecutive rows of one table and the same columns in one CTE — and the
        side rows to change (table, id, values)."""
        value = self.tables.value
        args: list[Any] = []
        update_cols = None
        if update is not None:
            order_id, version, values = update
            update_cols = tuple(values)
            args += [order_id, version, *(value("service_orders", c, values[c]) for c in update_cols)]
        groups: list[list] = []  # [table, cols, rows]
        for table, row in inserts:
            cols = tuple(row)
            if groups and groups[-1][0] == table and groups[-1][1] == cols:
                groups[-1][2] += 1
            else:
                groups.append([table, cols, 1])
            args += [value(table, c, row[c]) for c in cols]
        side = []
        for table, row_id, values in updates:
            cols = tuple(values)
            side.append((table, cols))
            args += [*(value(table, c, values[c]) for c in cols), row_id]
        return self.sql(update_cols, tuple(map(tuple, groups)), tuple(side)), args


class OrderCache:
    """The orders this process last wrote, to spare an action its read.

    Sound because of one invariant: every change to a ``service_orders`` row bumps its
    ``version`` (every change is a versioned decision; purge deletes). A write decided on a
    cached copy applies only when the row is still exactly that copy; if another process,
    replica or a consumer changed the order meanwhile, it writes nothing and the handler
    decides again on a fresh read. Likewise a refusal decided on a cached copy is decided again
    on a fresh read (handlers/lifecycle.py), so a stale copy can cost a round trip but never
    changes an answer. Bounded (oldest out first)."""

    def __init__(self, size: int = 4096) -> None:  # about 2.5 KB an order
        self._size = size
        self._rows: dict[str, dict[str, Any]] = {}

    def get(self, order_id: str) -> Order | None:
        cols = self._rows.get(order_id)
        return Order(**cols) if cols is not None else None

    def put(self, order: Order) -> None:
        rows = self._rows
        rows.pop(order.id, None)
        if len(rows) >= self._size:
            del rows[next(iter(rows))]
        rows[order.id] = dict(vars(order))

    def forget(self, order_id: str) -> None:
        self._rows.pop(order_id, None)


class DirectUnit(OrderUnit):
    def __init__(self, store: "DirectStore", conn: asyncpg.Connection) -> None:
        self.store = store
        self.conn = conn
        self.wrote_events = False

    async def _rows(self, stmt, params: dict[str, Any]):
        sql, names, own = _query(stmt)
        return await self.conn.fetch(sql, *(params[n] if n in params else own[n] for n in names))

    async def load(self, order_id: str) -> tuple[Order | None, bool]:
        cached = self.store.cache.get(order_id)
        if cached is not None:
            return cached, True
        return await self.load_fresh(order_id), False

    async def commit(self, decision: Decision, events: list) -> bool:
        store = self.store
        order = decision.order
        sql, args = store.statements.write(
            (order.id, decision.expected_version, decision.values),
            [*decision.inserts(), *(("outbox", row) for row in store.outbox.rows(events))], decision.updates())
        try:
            written = await self.conn.fetchval(sql, *args) == 1
        except BaseException:
            store.cache.forget(order.id)
            raise
        if not written:
            store.cache.forget(order.id)
            return False
        store.cache.put(order)
        self.wrote_events = self.wrote_events or bool(events)
        return True

    async def create(self, application: Application, events: list) -> None:
        store = self.store
        sql, args = store.statements.write(None, [
            ("service_orders", vars(application.order)), ("timeline", application.timeline),
            *(("outbox", row) for row in store.outbox.rows(events))], [])
        try:
            await self.conn.execute(sql, *args)
        except asyncpg.exceptions.UniqueViolationError:
            raise Collided from None
        self.wrote_events = self.wrote_events or bool(events)


class DirectStore:
    def __init__(self, url: URL, outbox: Outbox, *, after_commit: Callable[[], None],
                 pool_size: int = POOL_SIZE) -> None:
        connect = url.translate_connect_args(username="user", database="database")
        connect.update(url.query)
        self._connect = connect
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_made = asyncio.Lock()
        self.outbox = outbox
        self.after_commit = after_commit  # wakes the outbox relay
        self.statements = _Statements(_Tables([*TABLES.values(), outbox.tables.outbox]))
        self.cache = OrderCache()

    async def _connection_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_made:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(**self._connect, min_size=0, max_size=self._pool_size,
                                                           init=_json_codec, reset=_keep_session_state)
        return self._pool

    @asynccontextmanager
    async def _unit(self, *, line_lock: int | None = None) -> AsyncIterator[DirectUnit]:
        pool = await self._connection_pool()
        async with pool.acquire() as conn:
            unit = DirectUnit(self, conn)
            try:
                if line_lock is None:
                    yield unit  # autocommit: each write is one atomic statement
                else:
                    # BEGIN and the lock in one round trip (the simple query protocol: the key is
                    # our own integer, never text from a request)
                    await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({int(line_lock)})")
                    try:
                        yield unit
                    except BaseException:
                        if not conn.is_closed():
                            await conn.execute("ROLLBACK")
                        raise
                    await conn.execute("COMMIT")
            finally:
                if unit.wrote_events:  # (after a failed commit of the transaction: a harmless extra wake-up)
                    self.after_commit()

    def transition(self):
        return self._unit()

    def application(self, sales_order_id: str, order_line_id: str):
        return self._unit(line_lock=line_lock_key(sales_order_id, order_line_id))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()
