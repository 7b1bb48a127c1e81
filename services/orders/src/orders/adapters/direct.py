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
session's layers on the request path. An application is two round trips as well: one read of
its facts (the line's version among them), then one statement whose gate is the line's new
version instead of the order's::

    WITH u AS (INSERT INTO sales_lines … VALUES (…, $new)
               ON CONFLICT (sales_order_id, order_line_id) DO UPDATE SET version = EXCLUDED.version …
               WHERE sales_lines.version = $read RETURNING 1),
         i0 AS (INSERT INTO service_orders … SELECT … FROM u), …     -- order, timeline, events
    SELECT count(*) FROM u

No row from ``u``: another application for the line was stored since the facts were read
(under PostgreSQL's ``ON CONFLICT`` a concurrent one is waited for, then its version compared).

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

from orders.adapters.store import TABLES, Collided, OrderUnit, line_turn
from orders.domain.application import Application
from orders.domain.decisions import Decision, Order
from orders.models import SalesLine
from shared.outbox import Outbox

POOL_SIZE = 20
# The gate of an application's write: the line's version (``_Statements.sql``).
LINE = "line"
LINE_COLUMNS = ("sales_order_id", "order_line_id", "version", "updated_at")


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

    def _insert(self, name: str, table: str, cols: tuple[str, ...], rows: int, first: int) -> tuple[str, int]:
        types = self.tables.types[table]
        n = first
        tuples = []
        for _ in range(rows):
            tuples.append(", ".join(f"${i}::{types[c]}" for i, c in enumerate(cols, start=n)))
            n += len(cols)
        names = ", ".join(f'"{c}"' for c in cols)
        body = " UNION ALL ".join(f"SELECT {t} FROM u" for t in tuples)
        return f"{name} AS (INSERT INTO {table} ({names}) {body})", n

    def sql(self, gate: tuple[str, ...] | str, inserts: tuple, updates: tuple) -> str:
        """The statement of one write: its gate ``u``, either the columns of the versioned order
        update or ``LINE`` (the line's version, see the module's docstring); ``inserts``
        ((table, columns, rows), …) and ``updates`` ((table, columns), …) of side rows, by id,
        done only when the gate matched."""
        key = (gate, inserts, updates)
        sql = self._sql.get(key)
        if sql is not None:
            return sql
        if gate == LINE:
            types = self.tables.types["sales_lines"]
            values = ", ".join(f"${i}::{types[c]}" for i, c in enumerate(LINE_COLUMNS, start=1))
            n = len(LINE_COLUMNS) + 1
            ctes = [f"u AS (INSERT INTO sales_lines ({', '.join(LINE_COLUMNS)}) VALUES ({values}) "
                    "ON CONFLICT (sales_order_id, order_line_id) DO UPDATE SET version = EXCLUDED.version, "
                    f"updated_at = EXCLUDED.updated_at WHERE sales_lines.version = ${n} RETURNING 1)"]
            n += 1
        else:
            sets = ", ".join(f'"{c}" = ${i}' for i, c in enumerate(gate, start=3))
            ctes = [f"u AS (UPDATE service_orders SET {sets} WHERE id = $1 AND version = $2 RETURNING 1)"]
            n = 3 + len(gate)
        for i, (table, cols, rows) in enumerate(inserts):
            cte, n = self._insert(f"i{i}", table, cols, rows, n)
            ctes.append(cte)
        for i, (table, cols) in enumerate(updates):
            sets = ", ".join(f'"{c}" = ${j}' for j, c in enumerate(cols, start=n))
            n += len(cols)
            ctes.append(f"x{i} AS (UPDATE {table} SET {sets} WHERE id = ${n} AND EXISTS (SELECT 1 FROM u))")
            n += 1
        sql = self._sql[key] = f"WITH {', '.join(ctes)} SELECT count(*) FROM u"
        return sql

    def write(self, gate: tuple[str, int, dict[str, Any]] | tuple[dict[str, Any], int],
              inserts: list[tuple[str, dict[str, Any]]],
              updates: list[tuple[str, str, dict[str, Any]]]) -> tuple[str, list[Any]]:
        """(SQL, arguments) for the gate — the order update (order id, expected version, values)
        or the line's (new ``sales_lines`` row, version read) — the rows to insert (table, row),
        consecutive rows of one table and the same columns in one CTE, and the side rows to
        change (table, id, values)."""
        value = self.tables.value
        args: list[Any]
        if len(gate) == 2:
            line, read = gate
            gate_key: tuple[str, ...] | str = LINE
            args = [*(line[c] for c in LINE_COLUMNS), read]
        else:
            order_id, version, values = gate
            gate_key = tuple(values)
            args = [order_id, version, *(value("service_orders", c, values[c]) for c in gate_key)]
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
        return self.sql(gate_key, tuple(map(tuple, groups)), tuple(side)), args


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
        order = application.order
        sql, args = store.statements.write((self.line.row(order.created_at), self.line.read), [
            ("service_orders", vars(order)), ("timeline", application.timeline),
            *(("outbox", row) for row in store.outbox.rows(events))], [])
        try:
            stored = await self.conn.fetchval(sql, *args) == 1
        except asyncpg.exceptions.UniqueViolationError:
            raise Collided from None
        if not stored:
            raise Collided
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
        self.statements = _Statements(_Tables([*TABLES.values(), SalesLine.__table__, outbox.tables.outbox]))
        self.cache = OrderCache()

    async def _connection_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_made:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(**self._connect, min_size=0, max_size=self._pool_size,
                                                           init=_json_codec, reset=_keep_session_state)
        return self._pool

    @asynccontextmanager
    async def transition(self) -> AsyncIterator[DirectUnit]:
        pool = await self._connection_pool()
        async with pool.acquire() as conn:
            unit = DirectUnit(self, conn)
            try:
                yield unit  # autocommit: each write is one atomic statement
            finally:
                if unit.wrote_events:
                    self.after_commit()

    @asynccontextmanager
    async def application(self, sales_order_id: str, order_line_id: str) -> AsyncIterator[DirectUnit]:
        async with line_turn(sales_order_id, order_line_id), self.transition() as unit:
            yield unit

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()
