"""The hot writes of a transition: the order row (optimistic version check), its
timeline entry, its rating. Always inside the caller's transaction (session).

On PostgreSQL they go straight to the session's asyncpg connection, which is already
in the session's transaction (the order was loaded through it first): SQLAlchemy's
execution layers cost several times the driver's own work per statement, and these
run on every request. Elsewhere (SQLite) prebuilt Core statements do the same.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, bindparam, insert, update

from orders.models import Rating, ServiceOrder, TimelineEntry

_ORDERS = ServiceOrder.__table__
_JSON_COLUMNS = {t.name: {c.name for c in t.columns if isinstance(c.type, JSON)}
                 for t in (_ORDERS, TimelineEntry.__table__, Rating.__table__)}
_ORDER_COLUMNS = set(_ORDERS.columns.keys())

# Core forms (built once, so SQLAlchemy reuses their cache keys and compiled SQL).
_UPDATE = update(_ORDERS).where(_ORDERS.c.id == bindparam("b_id"), _ORDERS.c.version == bindparam("b_version"))
_INSERTS = {"timeline": insert(TimelineEntry.__table__), "ratings": insert(Rating.__table__)}

_sql_cache: dict[tuple, str] = {}


async def _driver(s):
    """The session's asyncpg connection, or None when not on PostgreSQL or when the
    session's transaction has not begun on it yet (SQLAlchemy begins lazily, at its
    first statement): then the Core path runs, which begins it."""
    if s.bind.dialect.name != "postgresql":
        return None
    conn = await s.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    return driver if driver.is_in_transaction() else None


def _param(table: str, column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS[table] else value


async def update_order(s, order_id: str, expected_version: int, values: dict[str, Any]) -> bool:
    """``UPDATE service_orders SET <values> WHERE id = … AND version = …``; False if no row matched."""
    unknown = set(values) - _ORDER_COLUMNS
    if unknown:
        raise ValueError(f"not columns of service_orders: {sorted(unknown)}")
    driver = await _driver(s)
    if driver is None:
        result = await s.execute(_UPDATE, {"b_id": order_id, "b_version": expected_version, **values})
        return result.rowcount == 1
    cols = tuple(values)
    sql = _sql_cache.get(("u", cols))
    if sql is None:
        sets = ", ".join(f'"{c}" = ${i}' for i, c in enumerate(cols, start=3))
        sql = _sql_cache[("u", cols)] = f"UPDATE service_orders SET {sets} WHERE id = $1 AND version = $2"
    status = await driver.execute(sql, order_id, expected_version,
                                  *(_param("service_orders", c, values[c]) for c in cols))
    return status == "UPDATE 1"


async def insert_row(s, table: str, row: dict[str, Any]) -> None:
    """One row into ``timeline`` or ``ratings``."""
    driver = await _driver(s)
    if driver is None:
        await s.execute(_INSERTS[table], row)
        return
    cols = tuple(row)
    sql = _sql_cache.get((table, cols))
    if sql is None:
        names = ", ".join(f'"{c}"' for c in cols)
        marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        sql = _sql_cache[(table, cols)] = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    await driver.execute(sql, *(_param(table, c, row[c]) for c in cols))
