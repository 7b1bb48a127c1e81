"""Reading and writing the projection's tables (order facts, consultation facts,
counters): per batch for the live consumer, in bulk for the rebuild."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import and_, bindparam, delete, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kpi.domain import projection as P
from kpi.models import CatalogueSku, ConsultationFact, Counter, OrderFact

FACTS = OrderFact.__table__
COUNTERS = Counter.__table__
CONSULTATIONS = ConsultationFact.__table__
CATALOGUE = CatalogueSku.__table__
CATALOGUE_COLUMNS = P.CATALOGUE_FIELDS
ROW_COLUMNS: tuple[str, ...] = P.FIELDS + ("audit_late",)
COUNTER_COLUMNS = ("family", "merchant_id", "period", "dim", "a", "b", "c", "d")
CONSULT_COLUMNS = ("fact_id", "kind", "manufacturer_id", "at", "target", "reason", "package")
CHUNK = 500


def _insert(session_or_conn, table):
    name = session_or_conn.bind.dialect.name if hasattr(session_or_conn, "bind") else session_or_conn.dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def _is_pg(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


# PostgreSQL: the live consumer's statements go straight to the asyncpg connection of
# the session's transaction, ONE statement per table and batch with the values bound as
# arrays (``unnest``): a few round trips per batch and no per-row statement executions.
def _pg_type(col) -> str:
    from sqlalchemy import BigInteger, Boolean, Integer, String

    t = col.type
    if isinstance(t, BigInteger):
        return "int8"
    if isinstance(t, Integer):
        return "int4"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, String):
        return "text"
    return "timestamptz"  # UTCDateTime


def _unnest(columns, table) -> str:
    return "unnest(" + ", ".join(f"${i + 1}::{_pg_type(table.c[c])}[]" for i, c in enumerate(columns)) + ")"


# Creates the missing rows empty, locks every row (in the order of the sorted array) and
# returns it as it is, in one statement that always goes through the primary key (a
# SELECT … FOR UPDATE would be planned as a sequential scan while the table's statistics
# are missing or stale, e.g. after a start on an empty database).
_PG_LOCK_ROWS = ("INSERT INTO order_facts (order_id) SELECT unnest($1::text[]) ON CONFLICT (order_id) "
                 "DO UPDATE SET order_id = EXCLUDED.order_id RETURNING " + ", ".join(P.FIELDS))
def _from_json(columns, table) -> str:
    """The columns of one row of a JSON array of rows (``r``), cast to their types."""
    return ", ".join(f"(r->>{i})::{_pg_type(table.c[c])}" for i, c in enumerate(columns))


# Rows and counter deltas go as ONE JSON parameter (an array of rows, encoded by the C
# encoder): binding 33 arrays costs asyncpg a Python-level check per element.
_PG_SAVE = ("INSERT INTO order_facts (" + ", ".join(ROW_COLUMNS) + ") SELECT " + _from_json(ROW_COLUMNS, FACTS)
            + " FROM jsonb_array_elements($1::jsonb) AS r ON CONFLICT (order_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS if c != "order_id"))
_PG_ADD = ("INSERT INTO kpi_counters (family, merchant_id, period, dim, a, b, c, d) SELECT "
           + _from_json(COUNTER_COLUMNS, COUNTERS) + " FROM jsonb_array_elements($1::jsonb) AS r "
           "ON CONFLICT (family, period, merchant_id, dim) DO UPDATE SET "
           "a = kpi_counters.a + EXCLUDED.a, b = kpi_counters.b + EXCLUDED.b, "
           "c = kpi_counters.c + EXCLUDED.c, d = kpi_counters.d + EXCLUDED.d")
_PG_DROP_ZEROS = ("DELETE FROM kpi_counters k USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
                  "AS z(family, merchant_id, period, dim) WHERE k.family = z.family AND k.merchant_id = z.merchant_id "
                  "AND k.period = z.period AND k.dim = z.dim AND k.a = 0 AND k.b = 0 AND k.c = 0 AND k.d = 0")
_PG_CONSULT = ("INSERT INTO consultation_facts (" + ", ".join(CONSULT_COLUMNS) + ") SELECT * FROM "
               + _unnest(CONSULT_COLUMNS, CONSULTATIONS) + " ON CONFLICT (fact_id) DO NOTHING RETURNING fact_id")


def _json_default(v):
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(f"{type(v).__name__} in a projected row")


_dumps = json.JSONEncoder(default=_json_default, separators=(",", ":")).encode


def _columns(records: list[tuple], width: int) -> list[list]:
    """Rows → one list per column (the arrays bound to an ``unnest`` statement)."""
    return [list(c) for c in zip(*records)] if records else [[] for _ in range(width)]


async def pg_connection(session: AsyncSession):
    """The asyncpg connection of the session's transaction (the transaction is begun
    on it first: the SQLAlchemy adapter begins it lazily, at its first statement)."""
    tx = session.get_transaction()
    if tx is None or session.info.get("kpi_tx") is not tx:
        await session.execute(text("SELECT 1"))
        session.info["kpi_tx"] = session.get_transaction()
    conn = await session.connection()
    return (await conn.get_raw_connection()).driver_connection


def row_tuple(r: P.OrderFact) -> tuple:
    return r.as_tuple() + (r.audit_late,)


def fact_from_db(values) -> P.OrderFact:
    return P.OrderFact.from_tuple(tuple(values)[:len(P.FIELDS)])


# ---------------------------------------------------------------- per batch (live consumer)

async def load_rows(session: AsyncSession, order_ids: list[str]) -> dict[str, P.OrderFact]:
    """The facts of these orders (``order_ids`` sorted). On PostgreSQL the rows are
    locked (created empty first when missing) in order-id order, so replicas applying
    events of the same order (order and SLA topics may sit on different replicas)
    take turns."""
    out: dict[str, P.OrderFact] = {}
    if _is_pg(session):
        found = await (await pg_connection(session)).fetch(_PG_LOCK_ROWS, order_ids)
    else:
        cols = [FACTS.c[c] for c in P.FIELDS]
        found = []
        for i in range(0, len(order_ids), CHUNK):
            found.extend((await session.execute(
                select(*cols).where(FACTS.c.order_id.in_(order_ids[i:i + CHUNK])))).all())
    for values in found:
        r = fact_from_db(values)
        if len(r.__dict__) > 1:  # anything besides the order id (rows are created empty first)
            out[r.order_id] = r
    return out


async def save_rows(session: AsyncSession, rows: list[P.OrderFact]) -> None:
    if not rows:
        return
    if _is_pg(session):
        await (await pg_connection(session)).execute(
            _PG_SAVE, _dumps([row_tuple(r) for r in sorted(rows, key=lambda r: r.order_id)]))
        return
    stmt = _insert(session, FACTS)
    stmt = stmt.on_conflict_do_update(index_elements=["order_id"],
                                      set_={c: stmt.excluded[c] for c in ROW_COLUMNS if c != "order_id"})
    values = [dict(zip(ROW_COLUMNS, row_tuple(r))) for r in sorted(rows, key=lambda r: r.order_id)]
    for i in range(0, len(values), CHUNK):
        await session.execute(stmt, values[i:i + CHUNK])


async def apply_deltas(session: AsyncSession, deltas: dict) -> None:
    """Add ``deltas`` ({(family, merchant, period, dim): [a, b, c, d]}) to the counters;
    counters that fall to zero are removed (so they equal a rebuild's)."""
    items = sorted((k, v) for k, v in deltas.items() if any(v))
    if not items:
        return
    if _is_pg(session):
        raw = await pg_connection(session)
        await raw.execute(_PG_ADD, _dumps([(*k, *v) for k, v in items]))
        shrinking = [k for k, v in items if min(v) < 0]
        if shrinking:
            await raw.execute(_PG_DROP_ZEROS, *_columns(shrinking, 4))
        return
    stmt = _insert(session, COUNTERS)
    t = COUNTERS
    stmt = stmt.on_conflict_do_update(
        index_elements=["family", "period", "merchant_id", "dim"],
        set_={"a": t.c.a + stmt.excluded.a, "b": t.c.b + stmt.excluded.b, "c": t.c.c + stmt.excluded.c,
              "d": t.c.d + stmt.excluded.d})
    values = [dict(zip(COUNTER_COLUMNS, (*k, *v))) for k, v in items]
    for i in range(0, len(values), CHUNK):
        await session.execute(stmt, values[i:i + CHUNK])
    shrinking = [dict(zip(("f", "m", "p", "dm"), k)) for k, v in items if min(v) < 0]
    if shrinking:
        await session.execute(delete(t).where(and_(
            t.c.family == bindparam("f"), t.c.period == bindparam("p"), t.c.merchant_id == bindparam("m"),
            t.c.dim == bindparam("dm"), t.c.a == 0, t.c.b == 0, t.c.c == 0, t.c.d == 0)), shrinking)


async def new_consultations(session: AsyncSession, facts: list[tuple]) -> list[tuple]:
    """Insert the consultation facts not seen before; returns those."""
    unique = {}
    for fact in facts:
        unique.setdefault(fact[0], fact)
    if not unique:
        return []
    ids = sorted(unique)
    if _is_pg(session):
        new_ids = {r[0] for r in await (await pg_connection(session)).fetch(
            _PG_CONSULT, *_columns([unique[i] for i in ids], len(CONSULT_COLUMNS)))}
        return [unique[i] for i in ids if i in new_ids]
    seen: set[str] = set()
    for i in range(0, len(ids), CHUNK):
        seen.update((await session.execute(select(CONSULTATIONS.c.fact_id).where(
            CONSULTATIONS.c.fact_id.in_(ids[i:i + CHUNK])))).scalars())
    fresh = [unique[i] for i in ids if i not in seen]
    if fresh:
        stmt = _insert(session, CONSULTATIONS).on_conflict_do_nothing(index_elements=["fact_id"])
        await session.execute(stmt, [dict(zip(CONSULT_COLUMNS, fact)) for fact in fresh])
    return fresh


async def project_catalogue(session: AsyncSession, entries: Iterable[tuple]) -> int:
    """Apply catalogue entries (``P.catalogue_entry``) in the session's transaction: an
    entry newer than the stored one (``P.newer_entry``) replaces it, and the merchant's
    catalogue counters (``ccat``) move from the old category to the new. One SKU's events
    share a partition (keyed by SKU), so one consumer applies them at a time. Returns the
    number of entries written."""
    latest: dict[tuple, tuple] = {}
    for e in entries:
        if P.newer_entry(e, latest.get(e[:2])):
            latest[e[:2]] = e
    if not latest:
        return 0
    keys = sorted(latest)
    t = CATALOGUE
    stored: dict[tuple, tuple] = {}
    for i in range(0, len(keys), CHUNK):
        q = select(t.c.merchant_id, t.c.sku, t.c.category, t.c.at).where(
            tuple_(t.c.merchant_id, t.c.sku).in_(keys[i:i + CHUNK]))
        if _is_pg(session):
            q = q.with_for_update()
        for r in (await session.execute(q)).all():
            stored[(r[0], r[1])] = tuple(r)
    deltas: dict = {}
    changed = []
    for k in keys:
        new, old = latest[k], stored.get(k)
        if not P.newer_entry(new, old):
            continue
        changed.append(dict(zip(CATALOGUE_COLUMNS, new)))
        if old is not None:
            P.add_contributions(deltas, P.catalogue_contributions(old), -1)
        P.add_contributions(deltas, P.catalogue_contributions(new))
    if changed:
        stmt = _insert(session, t)
        stmt = stmt.on_conflict_do_update(index_elements=["merchant_id", "sku"],
                                          set_={"category": stmt.excluded.category, "at": stmt.excluded.at})
        for i in range(0, len(changed), CHUNK):
            await session.execute(stmt, changed[i:i + CHUNK])
        await apply_deltas(session, deltas)
    return len(changed)


async def project(session: AsyncSession, events: Iterable[tuple]) -> int:
    """Apply validated events — (type, its decoded data (a contract)[, the envelope's time])
    — in the session's transaction (``project_folds``; catalogue events, which need the
    envelope's time, ``project_catalogue``). Returns the number of rows changed."""
    order_events, facts, catalogue = [], [], []
    for type_, data, *at in events:
        if not P.relevant(type_, data):
            continue
        if type_ in P.CATALOGUE_TYPES:
            catalogue.append(P.catalogue_entry(data, at[0]))
        elif type_ in P.CONSULT_TYPES:
            fact = P.consultation_fact(type_, data)
            if fact is not None:
                facts.append(fact)
        else:
            order_events.append((P.order_id_of(type_, data), model_fold(type_, data)))
    changed = await project_folds(session, order_events, facts)
    return changed + await project_catalogue(session, catalogue)


_NONE: tuple[list, list] = ([], [])


def model_fold(type_: str, data):
    """The fold of one validated order event (``fold(row) -> changed``)."""
    return lambda row: P.fold_model(row, type_, data)


async def project_folds(session: AsyncSession, order_events: list[tuple[str, object]], facts: list[tuple]) -> int:
    """Apply order events — (order id, ``fold(row) -> changed``) — and consultation
    facts in the session's transaction: load (and on PostgreSQL lock) the orders'
    rows, fold the events in, write the rows that changed and the difference of their
    contributions to the counters. Returns the number of rows changed."""
    deltas: dict = {}
    changed: list[P.OrderFact] = []
    if order_events:
        ids = sorted({oid for oid, _ in order_events})
        rows = await load_rows(session, ids)
        before = {oid: P.contributions(r) for oid, r in rows.items()}
        touched: dict[str, P.OrderFact] = {}
        for oid, fold in order_events:
            row = rows.get(oid)
            if row is None:
                row = rows[oid] = P.OrderFact(oid)
            if fold(row):
                touched[oid] = row
        for oid, row in touched.items():
            P.add_difference(deltas, before.get(oid, _NONE), P.contributions(row))
            changed.append(row)
        await save_rows(session, changed)
    if facts:
        for fact in await new_consultations(session, facts):
            P.add_contributions(deltas, P.consultation_contributions(fact))
    await apply_deltas(session, deltas)
    return len(changed)


# ---------------------------------------------------------------- bulk (rebuild)

def _sqlite_dt(v):
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


async def bulk_insert(conn: AsyncConnection, table: str, columns: tuple[str, ...], records: list[tuple]) -> None:
    """Fast insert of many rows: COPY on PostgreSQL, executemany on SQLite (times
    written in the text form SQLAlchemy uses there)."""
    if not records:
        return
    raw = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        await raw.copy_records_to_table(table, records=records, columns=list(columns))
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conv = [tuple(_sqlite_dt(v) for v in rec) for rec in records]
    await raw.executemany(sql, conv)


async def clear_projection(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("TRUNCATE order_facts, consultation_facts, catalogue_skus, kpi_counters"))
        return
    for t in ("order_facts", "consultation_facts", "catalogue_skus", "kpi_counters"):
        await conn.execute(text(f"DELETE FROM {t}"))
