"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL alike, in chunks.

PostgreSQL gets one statement text per (table, columns) with the rows as one JSON parameter
(shared/bulk.py): a multi-row VALUES would be compiled anew for every batch size, which cost
the orders follower a third of its time."""
from __future__ import annotations

import functools

from sqlalchemy.dialects import sqlite

from shared.bulk import json_rows, json_rows_insert

CHUNK = 1000


@functools.cache
def _pg_upsert(table, columns: tuple[str, ...], key: str):
    return json_rows_insert(table, columns, f"ON CONFLICT ({key}) DO UPDATE SET "
                            + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != key))


async def upsert(session, table, rows: list[dict], key: str) -> None:
    """``rows`` (the same columns each, one row a key) inserted, or their other columns updated."""
    if not rows:
        return
    columns = tuple(rows[0])
    if session.bind.dialect.name == "postgresql":
        await session.execute(_pg_upsert(table, columns, key), {"rows": json_rows(rows, columns)})
        return
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i:i + CHUNK]
        stmt = sqlite.insert(table).values(chunk)
        stmt = stmt.on_conflict_do_update(index_elements=[key], set_={c: stmt.excluded[c] for c in columns if c != key})
        await session.execute(stmt)
