"""PostgreSQL hot path of order transitions: one read and one atomic write, on the driver.

A transition is read-decide-write with optimistic versioning, so it needs no explicit
transaction: the order is read with one ``SELECT`` (autocommit), the rules decide in
Python, and everything the transition writes goes in ONE statement whose data-modifying
CTEs only insert when the versioned ``UPDATE`` matched::

    WITH u AS (UPDATE service_orders SET … WHERE id = $1 AND version = $2 RETURNING 1),
         t AS (INSERT INTO timeline … SELECT … FROM u),      -- the timeline entry
         r AS (INSERT INTO ratings … SELECT … FROM u),       -- rating (rate only)
         o AS (INSERT INTO outbox … SELECT … FROM u)         -- the event(s)
    SELECT count(*) FROM u

A single statement is atomic: the order row, its timeline entry and its events commit
together or not at all (transactional outbox), and a lost version race writes nothing
(0 → 409 ``version_conflict``). That is two round trips per request instead of six
(BEGIN, SELECT, UPDATE, INSERT, INSERT, COMMIT), without SQLAlchemy's session, ORM
identity map and statement layers on the request path.

Connections come from a small pool of raw asyncpg connections (``DirectPool``: idle
ping and dropping of broken connections like the SQLAlchemy pool's, shared/db.py),
closed with the runtime. JSON columns use the codec SQLAlchemy's dialect installs on
its own connections: parameters are JSON text, results are decoded values.
"""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg
from sqlalchemy import JSON
from sqlalchemy.dialects import postgresql

from orders.models import Rating, ServiceOrder, TimelineEntry
from shared.stopping import bounded

_PG = postgresql.dialect()
_ORDERS = ServiceOrder.__table__
ORDER_COLUMNS: tuple[str, ...] = tuple(_ORDERS.columns.keys())
_ORDER_COLUMN_SET = frozenset(ORDER_COLUMNS)
_SELECT = "SELECT {} FROM service_orders WHERE id = $1".format(", ".join(f'"{c}"' for c in ORDER_COLUMNS))


def _types(table) -> dict[str, str]:
    return {c.name: c.type.compile(dialect=_PG) for c in table.columns}


def _json_cols(table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


_TYPES = {"service_orders": _types(_ORDERS), "timeline": _types(TimelineEntry.__table__),
          "ratings": _types(Rating.__table__)}
_JSON = {"service_orders": _json_cols(_ORDERS), "timeline": _json_cols(TimelineEntry.__table__),
         "ratings": _json_cols(Rating.__table__)}
OUTBOX_COLUMNS = ("event_id", "topic", "key", "event_type", "payload", "created_at", "attempts")
_TYPES["outbox"] = {"event_id": "VARCHAR(36)", "topic": "VARCHAR(200)", "key": "VARCHAR(200)",
                    "event_type": "VARCHAR(120)", "payload": "TEXT", "created_at": "TIMESTAMP WITH TIME ZONE",
                    "attempts": "INTEGER"}
_JSON["outbox"] = frozenset()


class OrderRow:
    """A service order as read by the hot path: the same attributes as the ORM class."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"OrderRow({self.__dict__.get('id')!r}, v{self.__dict__.get('version')})"


def is_postgres(rt) -> bool:
    return rt.engine.dialect.name == "postgresql"


# Errors after which a connection cannot be trusted any more: drop it.
_BROKEN = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
           asyncpg.exceptions.InternalClientError, ConnectionError, OSError)
# A connection idle for longer than this is pinged before use (as the SQLAlchemy pool does, shared/db.py).
IDLE_PING_AFTER_S = 5.0


async def _json_codec(conn: asyncpg.Connection) -> None:
    """The codec SQLAlchemy's asyncpg dialect installs: JSON text in, decoded values out."""
    await conn.set_type_codec("json", encoder=str.encode, decoder=lambda b: json.loads(b.decode()),
                              schema="pg_catalog", format="binary")


class DirectPool:
    """A small LIFO pool of raw asyncpg connections for the hot path.

    Checking a connection out of SQLAlchemy's pool costs two greenlet switches and the
    pool's event machinery per request; this is a list and a semaphore. Connections are
    autocommit (the hot path writes in single statements); one that broke, or is left
    inside a transaction, is dropped instead of reused."""

    def __init__(self, connect_kwargs: dict[str, Any], size: int) -> None:
        self._kwargs = connect_kwargs
        self._size = size
        self._free: list[tuple[asyncpg.Connection, float]] = []
        self._sem: asyncio.Semaphore | None = None
        self._all: set[asyncpg.Connection] = set()

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(**self._kwargs)
        try:
            await _json_codec(conn)
        except BaseException:
            conn.terminate()
            raise
        self._all.add(conn)
        return conn

    async def acquire(self) -> asyncpg.Connection:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._size)
        await self._sem.acquire()
        try:
            while self._free:
                conn, last = self._free.pop()
                if conn.is_closed():
                    self._all.discard(conn)
                    continue
                if time.monotonic() - last >= IDLE_PING_AFTER_S:
                    try:
                        await conn.execute("SELECT 1")
                    except Exception:  # noqa: BLE001 - any failure: replace this connection
                        self._drop(conn)
                        continue
                return conn
            return await self._connect()
        except BaseException:
            self._sem.release()
            raise

    def _drop(self, conn: asyncpg.Connection) -> None:
        self._all.discard(conn)
        conn.terminate()

    def release(self, conn: asyncpg.Connection, *, broken: bool = False) -> None:
        if broken or conn.is_closed() or conn.is_in_transaction():
            self._drop(conn)
        else:
            self._free.append((conn, time.monotonic()))
        self._sem.release()

    async def close(self) -> None:
        conns, self._all, self._free = list(self._all), set(), []
        closed = await asyncio.gather(*(bounded(c.close(), what="direct pool close", timeout_s=5) for c in conns))
        for conn, ok in zip(conns, closed):
            if not ok:
                conn.terminate()


def pool_for(rt) -> DirectPool:
    """The runtime's direct pool (made on first use; closed with the runtime)."""
    pool = getattr(rt, "direct_pool", None)
    if pool is None:
        url = rt.engine.url
        kwargs = url.translate_connect_args(username="user", database="database")
        kwargs.update(url.query)
        pool = rt.direct_pool = DirectPool(kwargs, size=DIRECT_POOL_SIZE)
    return pool


DIRECT_POOL_SIZE = 20


@asynccontextmanager
async def connection(rt) -> AsyncIterator[asyncpg.Connection]:
    """A raw driver connection in autocommit (no transaction)."""
    pool = pool_for(rt)
    conn = await pool.acquire()
    try:
        yield conn
    except _BROKEN:
        pool.release(conn, broken=True)
        raise
    except BaseException:
        pool.release(conn)
        raise
    else:
        pool.release(conn)


async def load_order(conn: asyncpg.Connection, order_id: str) -> OrderRow | None:
    rec = await conn.fetchrow(_SELECT, order_id)
    if rec is None:
        return None
    o = OrderRow()
    o.__dict__.update(zip(ORDER_COLUMNS, rec.values()))
    return o


def _value(table: str, column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON[table] and value is not None else value


_sql_cache: dict[tuple, str] = {}


def _insert_cte(name: str, table: str, cols: tuple[str, ...], first: int, rows: int = 1) -> tuple[str, int]:
    types = _TYPES[table]
    names = ", ".join(f'"{c}"' for c in cols)
    selects = []
    n = first
    for _ in range(rows):
        exprs = []
        for c in cols:
            exprs.append(f"${n}::{types[c]}")
            n += 1
        selects.append(f"SELECT {', '.join(exprs)} FROM u")
    return f"{name} AS (INSERT INTO {table} ({names}) {' UNION ALL '.join(selects)})", n


def _sql(update_cols: tuple[str, ...], timeline_cols: tuple[str, ...], rating_cols: tuple[str, ...] | None,
         outbox_rows: int) -> str:
    key = (update_cols, timeline_cols, rating_cols, outbox_rows)
    sql = _sql_cache.get(key)
    if sql is not None:
        return sql
    sets = ", ".join(f'"{c}" = ${i}' for i, c in enumerate(update_cols, start=3))
    n = 3 + len(update_cols)
    ctes = [f"u AS (UPDATE service_orders SET {sets} WHERE id = $1 AND version = $2 RETURNING 1)"]
    cte, n = _insert_cte("t", "timeline", timeline_cols, n)
    ctes.append(cte)
    if rating_cols:
        cte, n = _insert_cte("r", "ratings", rating_cols, n)
        ctes.append(cte)
    if outbox_rows:
        cte, n = _insert_cte("o", "outbox", OUTBOX_COLUMNS, n, outbox_rows)
        ctes.append(cte)
    sql = _sql_cache[key] = f"WITH {', '.join(ctes)} SELECT count(*) FROM u"
    return sql


async def write_transition(conn: asyncpg.Connection, order_id: str, expected_version: int, values: dict[str, Any],
                           timeline: dict[str, Any], rating: dict[str, Any] | None,
                           outbox: list[tuple]) -> bool:
    """The order's versioned UPDATE with its timeline entry, rating and outbox rows, atomically.

    ``outbox`` rows are tuples in ``OUTBOX_COLUMNS`` order. False (nothing written) when
    the order is no longer at ``expected_version``."""
    unknown = set(values) - _ORDER_COLUMN_SET
    if unknown:
        raise ValueError(f"not columns of service_orders: {sorted(unknown)}")
    ucols, tcols = tuple(values), tuple(timeline)
    rcols = tuple(rating) if rating else None
    args: list[Any] = [order_id, expected_version]
    args.extend(_value("service_orders", c, values[c]) for c in ucols)
    args.extend(_value("timeline", c, timeline[c]) for c in tcols)
    if rcols:
        args.extend(_value("ratings", c, rating[c]) for c in rcols)
    for row in outbox:
        args.extend(row)
    return await conn.fetchval(_sql(ucols, tcols, rcols, len(outbox)), *args) == 1


def outbox_row(rt, envelope) -> tuple:
    """An envelope as an outbox row (``OUTBOX_COLUMNS`` order), as ``Outbox.add_many`` writes it."""
    return (str(envelope.id), rt.outbox.registry.topic_for(envelope.type), envelope.key, envelope.type,
            envelope.model_dump_json(), rt.outbox.clock.now(), 0)


def _column_default(column) -> Any:
    d = column.default
    if d is None:
        return None
    return d.arg(None) if d.is_callable else d.arg


# Columns an application does not set get the model's defaults, as an ORM insert would.
_ORDER_DEFAULTS = {c.name: c for c in _ORDERS.columns if c.default is not None or c.nullable}


def new_order(fields: dict[str, Any]) -> OrderRow:
    o = OrderRow()
    for name in ORDER_COLUMNS:
        if name in fields:
            o.__dict__[name] = fields[name]
        elif name in _ORDER_DEFAULTS:
            o.__dict__[name] = _column_default(_ORDER_DEFAULTS[name])
        else:
            raise ValueError(f"service order column {name} has no value and no default")
    return o


class Merchant:
    """The merchant columns an application needs (from ``application_facts``)."""

    def __init__(self, facts) -> None:
        self.mode = facts["mode"]
        self.category_modes = facts["category_modes"]
        self.contact_phone = facts["contact_phone"]
        self.return_address = facts["return_address"]
        self.served_by_platform = facts["served_by_platform"]
        self.disqualified_since = facts["disqualified_since"]


_FACTS = """
SELECT EXISTS (SELECT 1 FROM service_orders WHERE customer_id = $1 AND idempotency_key = $2) AS existing,
       (SELECT coalesce(sum(quantity), 0) FROM service_orders
         WHERE sales_order_id = $3 AND order_line_id = $4 AND state <> ALL($5::varchar[])) AS in_service,
       m.id AS merchant, m.mode, m.category_modes, m.contact_phone, m.return_address, m.served_by_platform,
       m.disqualified_since,
       EXISTS (SELECT 1 FROM skus WHERE merchant_id = $6) AS has_catalogue,
       (SELECT category FROM skus WHERE merchant_id = $6 AND sku = $7) AS sku_category
FROM (SELECT 1) AS one LEFT JOIN merchants AS m ON m.id = $6
"""


async def application_facts(conn: asyncpg.Connection, customer_id: str, idempotency_key: str, sales_order_id: str,
                            order_line_id: str, releasing_states, merchant_id: str, sku: str):
    """What an application needs from storage, in one round trip: is the key stored, how much
    of the sales-order line is in service, the merchant (``merchant`` None: not onboarded),
    whether it has a catalogue and the SKU's category in it (None: not in it); both catalogue
    lookups use the (merchant, SKU) unique index."""
    return await conn.fetchrow(_FACTS, customer_id, idempotency_key, sales_order_id, order_line_id,
                               list(releasing_states), merchant_id, sku)


async def insert_rows(conn: asyncpg.Connection, rows: list[tuple[str, Any]]) -> None:
    """Rows into several tables in ONE statement (atomic): (table, dict of columns) or, for
    ``outbox``, (``"outbox"``, tuple in ``OUTBOX_COLUMNS`` order)."""
    key = []
    args: list[Any] = []
    for table, row in rows:
        if table == "outbox":
            key.append((table, OUTBOX_COLUMNS))
            args.extend(row)
        else:
            cols = tuple(row)
            key.append((table, cols))
            args.extend(_value(table, c, row[c]) for c in cols)
    key_t = ("insert", tuple(key))
    sql = _sql_cache.get(key_t)
    if sql is None:
        ctes, n = [], 1
        for i, (table, cols) in enumerate(key):
            marks = ", ".join(f"${j}" for j in range(n, n + len(cols)))
            n += len(cols)
            names = ", ".join(f'"{c}"' for c in cols)
            ctes.append(f"i{i} AS (INSERT INTO {table} ({names}) VALUES ({marks}))")
        sql = _sql_cache[key_t] = f"WITH {', '.join(ctes)} SELECT 1"
    await conn.execute(sql, *args)


class OrderCache:
    """The orders this process last read or wrote, to spare the hot path its SELECT.

    Sound because of one invariant: every change to a ``service_orders`` row bumps its
    ``version`` (all of them are versioned transitions; purge deletes). A write based on
    a cached copy is the versioned UPDATE, so it only succeeds when the row is still
    exactly the cached one; if another process, replica or the session path changed the
    order meanwhile, the UPDATE matches nothing, nothing is written, and the caller
    drops the copy and does the request again from a fresh read. Likewise any refusal
    decided on a cached copy (404/403/409/422) is re-decided on a fresh read, so a stale
    copy can cost a round trip but never changes an answer. Bounded (oldest out first)."""

    def __init__(self, size: int = 4096) -> None:  # about 2.5 KB an order
        self._size = size
        self._rows: dict[str, dict[str, Any]] = {}

    def get(self, order_id: str) -> OrderRow | None:
        cols = self._rows.get(order_id)
        if cols is None:
            return None
        o = OrderRow()
        o.__dict__.update(cols)
        return o

    def put(self, order: OrderRow) -> None:
        rows = self._rows
        rows.pop(order.id, None)
        if len(rows) >= self._size:
            del rows[next(iter(rows))]
        rows[order.id] = dict(order.__dict__)

    def forget(self, order_id: str) -> None:
        self._rows.pop(order_id, None)


def cache_for(rt) -> OrderCache:
    cache = getattr(rt, "order_cache", None)
    if cache is None:
        cache = rt.order_cache = OrderCache()
    return cache


def forget(rt, order_id: str) -> None:
    """The session path changed (or may change) this order: drop any cached copy."""
    cache = getattr(rt, "order_cache", None)
    if cache is not None:
        cache.forget(order_id)
