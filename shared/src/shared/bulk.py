"""Many rows in one statement on PostgreSQL: the rows travel as ONE JSON parameter (an array
of arrays, one per row) that ``jsonb_array_elements`` expands and the statement casts to the
columns' types.

Why not an executemany: asyncpg pipelines it, but PostgreSQL still binds and executes the
statement once per row, and a consumer's batch writes hundreds of rows a table. Why not a
multi-row VALUES: its text changes with every row count (compiled again, prepared again).
One JSON parameter is one statement text whatever the number of rows, encoded in C.

SQLite runs statements in-process: there the same write is an executemany (``BulkWrite``)."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Iterable, Sequence

import msgspec
from sqlalchemy import JSON, Executable, Table, TextClause, insert, text


@functools.cache
def _pg():
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def _cast(table: Table, column: str, i: int) -> str:
    t = table.c[column].type
    if isinstance(t, JSON):
        return f"(r->{i})::{t.compile(dialect=_pg())}"
    return f"(r->>{i})::{t.compile(dialect=_pg())}"


def json_rows_insert(table: Table, columns: Sequence[str], suffix: str = "") -> TextClause:
    """``INSERT INTO table (columns) SELECT … FROM jsonb_array_elements(:rows)`` followed by
    ``suffix`` (an ``ON CONFLICT`` clause); bind ``rows=json_rows(...)``. Within one statement a
    key may appear once under ``DO UPDATE`` (PostgreSQL refuses to change a row twice)."""
    names = ", ".join(f'"{c}"' for c in columns)
    casts = ", ".join(_cast(table, c, i) for i, c in enumerate(columns))
    return text(f'INSERT INTO "{table.name}" ({names}) SELECT {casts} '
                f"FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r {suffix}".rstrip())


def _unsupported(v: Any) -> Any:
    raise TypeError(f"{type(v).__name__} in a bulk row")


# msgspec writes the JSON in C, times included (RFC 3339 with their offset, which the
# ``::timestamptz`` casts read); the json module called back into Python for every datetime
_encode = msgspec.json.Encoder(enc_hook=_unsupported).encode


def json_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """The ``rows`` parameter of a ``json_rows_insert`` statement: each row's values in ``columns`` order.
    A naive datetime is refused, as the UTC columns (``shared.db.UTCDateTime``) refuse it."""
    values = [[row[c] for c in columns] for row in rows]
    if any(type(v) is datetime and v.tzinfo is None for row in values for v in row):
        raise ValueError("naive datetime given to a UTC column")
    return _encode(values).decode()


class BulkWrite:
    """A table's rows written together, one way per database: on PostgreSQL the
    ``json_rows_insert`` statement (``pg_suffix``: its conflict clause), elsewhere ``portable``
    (a SQLAlchemy insert with the same conflict clause; default a plain insert) as an executemany."""

    def __init__(self, table: Table, columns: Sequence[str], *, pg_suffix: str = "",
                 portable: Executable | None = None) -> None:
        self.columns = tuple(columns)
        self.pg = json_rows_insert(table, self.columns, pg_suffix)
        self.portable = portable if portable is not None else insert(table)

    async def __call__(self, session, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if session.bind.dialect.name == "postgresql":
            await session.execute(self.pg, {"rows": json_rows(rows, self.columns)})
        else:
            await session.execute(self.portable, rows)
