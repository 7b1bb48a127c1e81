"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL alike.

PostgreSQL gets one statement text per (table, columns) with the rows as one JSON parameter
(shared/bulk.py): a multi-row VALUES would be compiled anew for every batch size, which cost
the orders follower a third of its time."""
from __future__ import annotations

import functools

from sqlalchemy.dialects import sqlite

from shared.bulk import BulkWrite


@functools.cache
def _writer(table, columns: tuple[str, ...], key: str) -> BulkWrite:
    changed = [c for c in columns if c != key]
    portable = sqlite.insert(table)
    return BulkWrite(table, columns,
                     pg_suffix=f"ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"'
                                                                                for c in changed),
                     portable=portable.on_conflict_do_update(index_elements=[key],
                                                             set_={c: portable.excluded[c] for c in changed}))


async def upsert(session, table, rows: list[dict], key: str) -> None:
    """``rows`` (the same columns each, one row a key) inserted, or their other columns updated."""
    if rows:
        await _writer(table, tuple(rows[0]), key)(session, rows)
