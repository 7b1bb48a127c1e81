"""Many rows in one statement on PostgreSQL (shared/bulk.py): every column type the services
bulk-write comes back as it went in, the conflict clause applies, and bad rows are refused
before anything is written."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, String, Table, select

from shared.bulk import json_rows, json_rows_insert
from shared import db
from shared.db import UTCDateTime, create_engine

meta = MetaData()
T = Table("bulk_rows", meta, Column("id", String(64), primary_key=True), Column("n", Integer),
          Column("ok", Boolean), Column("at", UTCDateTime()), Column("note", String(60), nullable=True),
          Column("doc", JSON, nullable=True))
COLUMNS = ("id", "n", "ok", "at", "note", "doc")


def test_rows_are_arrays_in_column_order_and_times_keep_their_offset():
    at = datetime(2026, 11, 11, 0, 30, tzinfo=timezone(timedelta(hours=8)))
    assert json_rows([{"id": "a", "n": 1, "ok": True, "at": at, "note": "退货", "doc": {"k": [1]}}], COLUMNS) == \
        '[["a",1,true,"2026-11-11T00:30:00+08:00","退货",{"k":[1]}]]'
    with pytest.raises(ValueError, match="naive"):
        json_rows([{"id": "a", "n": 1, "ok": True, "at": datetime(2026, 1, 1), "note": None, "doc": None}], COLUMNS)


def test_the_statement_casts_each_column_and_ends_with_the_clause():
    sql = str(json_rows_insert(T, COLUMNS, "ON CONFLICT (id) DO NOTHING"))
    assert sql.startswith('INSERT INTO "bulk_rows" ("id", "n", "ok", "at", "note", "doc") SELECT (r->>0)::VARCHAR(64), '
                          "(r->>1)::INTEGER, (r->>2)::BOOLEAN, (r->>3)::TIMESTAMP WITH TIME ZONE, (r->>4)::VARCHAR(60), "
                          "(r->5)::JSON FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r ON CONFLICT")


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_rows_round_trip_and_the_conflict_clause_applies(database_url):
    engine = create_engine(await database_url("bulk"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
        at = datetime(2026, 11, 11, 0, 0, 1, 123456, tzinfo=timezone.utc)
        beijing = timezone(timedelta(hours=8))  # written with its offset: the same instant comes back
        rows = [{"id": f"o{i}", "n": i, "ok": i % 2 == 0, "at": (at + timedelta(seconds=i)).astimezone(beijing),
                 "note": None if i == 1 else f"第{i}单", "doc": {"i": i} if i else None} for i in range(3)]
        upsert = json_rows_insert(T, COLUMNS, "ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n")
        async with engine.begin() as conn:
            await conn.execute(upsert, {"rows": json_rows(rows, COLUMNS)})
            await conn.execute(upsert, {"rows": json_rows([{**rows[0], "n": 40, "note": "ignored"}], COLUMNS)})
        async with engine.connect() as conn:
            got = [dict(r._mapping) for r in (await conn.execute(select(*(T.c[c] for c in COLUMNS))
                                                                 .order_by(T.c.id))).all()]
        assert got == [{**rows[0], "n": 40}, rows[1], rows[2]]
        assert got[0]["at"].tzinfo is not None
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_a_bulk_write_upserts_alike_on_both_databases(database_url):
    from sqlalchemy.dialects import sqlite

    from shared.bulk import BulkWrite

    upsert = sqlite.insert(T)
    write = BulkWrite(T, COLUMNS, pg_suffix="ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n",
                      portable=upsert.on_conflict_do_update(index_elements=["id"], set_={"n": upsert.excluded.n}))
    engine = create_engine(await database_url("bulk_write"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
        at = datetime(2026, 11, 11, tzinfo=timezone.utc)
        rows = [{"id": f"o{i}", "n": i, "ok": True, "at": at, "note": None, "doc": None} for i in range(3)]
        async with db.session_factory(engine)() as s, s.begin():
            await write(s, rows)
            await write(s, [{**rows[1], "n": 41, "note": "ignored"}])
            await write(s, [])
        async with engine.connect() as conn:
            got = (await conn.execute(select(T.c.id, T.c.n, T.c.note).order_by(T.c.id))).all()
        assert [tuple(r) for r in got] == [("o0", 0, None), ("o1", 41, None), ("o2", 2, None)]
    finally:
        await engine.dispose()

