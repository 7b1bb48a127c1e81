"""shared.db.create_engine's pool on PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_the_pool_hands_back_the_connection_used_last(database_url):
    # (shared.db.create_engine: a few concurrent transactions keep the same connections and
    # their prepared statements, rather than cycling through the whole pool)
    engine = create_engine(await database_url("pool_lifo"))
    try:
        async def backend_pid(conn) -> int:
            return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        async with engine.connect() as a, engine.connect() as b, engine.connect() as c:
            pids = [await backend_pid(x) for x in (a, b, c)]
        # the context managers close in reverse (c, b, then a): a was given back last
        for _ in range(3):
            async with engine.connect() as conn:
                assert await backend_pid(conn) == pids[0]
    finally:
        await engine.dispose()
