"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL alike, in chunks."""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

CHUNK = 1000


async def upsert(session, table, rows: list[dict], key: str) -> None:
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i:i + CHUNK]
        stmt = insert(table).values(chunk)
        stmt = stmt.on_conflict_do_update(
            index_elements=[key], set_={c: stmt.excluded[c] for c in chunk[0] if c != key}
        )
        await session.execute(stmt)
