"""shared.db.one_of: ``column IN values`` with one statement text whatever the number of
values on PostgreSQL (an array parameter), the IN list on SQLite; and shared.db.postgres_url."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, select, text

from shared.db import create_engine, one_of, postgres_url, session_factory

meta = MetaData()
T = Table("one_of_rows", meta, Column("id", String(36), primary_key=True), Column("n", Integer))


async def test_the_rows_whose_column_is_one_of_the_values(database_url):
    engine = create_engine(await database_url("one_of"))
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *_: sent.append(statement))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
            await conn.execute(T.insert(), [{"id": f"o{i}", "n": i} for i in range(30)])
        sessions = session_factory(engine)
        async with sessions() as s:
            async def ids(values) -> list[str]:
                return list((await s.execute(select(T.c.id).where(one_of(s, T.c.id, values)).order_by(T.c.n)))
                            .scalars())

            sent.clear()
            assert await ids([]) == []
            assert await ids(["o3"]) == ["o3"]
            assert await ids(("o7", "o1", "missing", "o1")) == ["o1", "o7"]
            assert await ids(f"o{i}" for i in range(0, 30, 2)) == [f"o{i}" for i in range(0, 30, 2)]
            assert await ids([f"o{i}" for i in range(29, 26, -1)]) == ["o27", "o28", "o29"]
            if s.get_bind().dialect.name == "postgresql":
                # one statement for every length: compiled, prepared and planned once
                assert len(set(sent)) == 1, sent
                assert "= ANY (" in sent[0]
    finally:
        await engine.dispose()


def test_a_server_url_over_tcp_or_through_the_unix_socket():
    assert postgres_url("postgres@127.0.0.1:5432", "orders") == "postgresql+asyncpg://postgres@127.0.0.1:5432/orders"
    assert postgres_url("postgres@/var/run/postgresql", "orders") == \
        "postgresql+asyncpg://postgres@/orders?host=/var/run/postgresql"
    assert postgres_url("root@/tmp", "x", "postgresql") == "postgresql://root@/x?host=/tmp"


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_a_socket_url_reaches_the_server(database_url):
    # the machine's PostgreSQL keeps its socket in the Debian directory; elsewhere: nothing to check
    if not Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        pytest.skip("no PostgreSQL socket in /var/run/postgresql")
    url = await database_url("socket_url")  # created over TCP; reached again through the socket
    engine = create_engine(postgres_url("postgres@/var/run/postgresql", url.rsplit("/", 1)[1]))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT inet_client_addr() IS NULL"))).scalar() is True
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_every_execution_is_planned_with_its_values(database_url):
    # (shared.db.create_engine: a generic plan made while a new table was tiny would be kept
    # after it grew; PostgreSQL's default switches to one after five executions)
    engine = create_engine(await database_url("custom_plans"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
        sessions = session_factory(engine)
        async with sessions() as s:
            for k in range(10):
                await s.execute(select(T.c.n).where(one_of(s, T.c.id, [f"o{i}" for i in range(k + 1)])))
            plans = (await s.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE 'SELECT one_of_rows.n %'"))).all()
        assert [tuple(p) for p in plans] == [(0, 10)]
    finally:
        await engine.dispose()
