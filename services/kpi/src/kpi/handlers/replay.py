"""Rebuild the projection from scratch (``kpi replay``), and snapshot every figure.

    kpi replay                      # from the broker: orders, sla, routing and catalogue events, offset 0
    kpi replay --from-dir DIR       # from topic exports: DIR/<topic>.<partition>.jsonl (one envelope a line)
    kpi replay --workers 4          # threads / processes (default: the CPU count, at most 8)

Stop the KPI service first (or accept that it catches up afterwards: applying an
event twice changes nothing). The command empties ``order_facts``,
``consultation_facts``, ``catalogue_skus`` and ``kpi_counters`` and rebuilds them; paid transactions
(ingest API), published flags and disqualification decisions are kept.

Two engines, one result:

- **columnar** (``kpi.adapters.columnar``, the default): DuckDB reads the order and SLA
  topics' JSON lines, checks that every event is in the canonical form and folds
  them into order facts with one GROUP BY, then sums the counters in SQL; the facts
  and counters are written with COPY (PostgreSQL: two connections at once, sorted
  by primary key, secondary indexes built after the load) or executemany (SQLite).
  A broker partition is first read into a file. Routing events (consultation facts)
  and catalogue events go through the validated Python path.
- **per-event** (``kpi.adapters.folder.Folder`` in worker processes): used when some order
  or SLA event is not in the canonical form (or a message holds a line break), since
  those are decided by the contracts (the shared codec), exactly as the live consumer does.
  Partition p goes to worker p mod N; orders are keyed by id on both topics, so an
  order's events are in one worker (should they not be, the rebuild notices — a
  duplicate key — and runs again with one worker); the workers' counters are
  merged with one ``INSERT … SELECT … GROUP BY``.

The facts are an order-insensitive fold (earliest-wins milestones, lowest-version
snapshot) and the figures are sums over them, so the live consumer's incremental
result and either rebuild are identical, whatever the arrival order and with
duplicates (``tests/test_replay.py``, ``tests/test_columnar.py``).
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import shared.contracts  # noqa: F401 - registers event types
from kpi.adapters import columnar
from kpi.domain import projection as P
from kpi.adapters.folder import Folder
from kpi.adapters.store import (CATALOGUE_COLUMNS, CONSULT_COLUMNS, COUNTER_COLUMNS, ROW_COLUMNS, bulk_insert,
                       clear_projection, row_tuple)
from shared.db import create_engine
from shared.kafka import KafkaConnection
from shared.topics import CATALOGUE_EVENTS, ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

TOPICS = (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS, CATALOGUE_EVENTS)
PYTHON_TOPICS = (ROUTING_EVENTS, CATALOGUE_EVENTS)  # few events: the validated Python path, in both engines
STAGE = "kpi_counters_stage"
_FILE = re.compile(r"^(?P<topic>.+?)(?:\.(?P<partition>\d+))?\.jsonl$")


@dataclass(frozen=True)
class Source:
    """One partition of a topic: in a file (``path``) or on the broker (``bootstrap``: a
    shared.kafka.KafkaConnection, picklable for the worker processes, or a plaintext address)."""

    topic: str
    partition: int
    path: str | None = None
    bootstrap: KafkaConnection | str | None = None


def dir_sources(directory: str | Path, topics: Iterable[str] = TOPICS) -> list[Source]:
    out = []
    for p in sorted(Path(directory).iterdir()):
        m = _FILE.match(p.name)
        if m and m["topic"] in topics:
            out.append(Source(m["topic"], int(m["partition"] or 0), path=str(p)))
    return out


async def kafka_sources(bootstrap: "KafkaConnection | str", topics: Iterable[str] = TOPICS) -> list[Source]:
    from aiokafka import AIOKafkaConsumer

    from shared.kafka import kafka_options

    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        return [Source(t, p, bootstrap=bootstrap) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    finally:
        await consumer.stop()


def read_file(path: str, chunk: int = 32 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(chunk)
            if not block:
                break
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line:
                    yield line
        if rest.strip():
            yield rest


async def read_partition(src: Source) -> list[bytes]:
    """Every message value of one partition, from offset 0 up to its current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from shared.kafka import kafka_options

    consumer = AIOKafkaConsumer(**kafka_options(src.bootstrap), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    out: list[bytes] = []
    try:
        tp = TopicPartition(src.topic, src.partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        idle = 0
        while end > 0:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=20000)
            msgs = batches.get(tp, [])
            out.extend(m.value for m in msgs if m.value is not None)
            # ListOffsets of the embedded broker can lag its log; the high watermark of
            # the last fetch is exact: read up to whichever is further
            target = max(end, consumer.highwater(tp) or 0)
            position = await consumer.position(tp)
            if position >= target and consumer.highwater(tp) is not None:
                break
            idle = 0 if msgs else idle + 1
            if idle >= 20 and position >= end:  # 10 s without a record: nothing more is coming
                break
    finally:
        await consumer.stop()
    return out


def fold_sources(sources: Iterable[Source]) -> Folder:
    folder = Folder()
    feed = folder.feed
    for src in sources:
        values = read_file(src.path) if src.path else asyncio.run(read_partition(src))
        for raw in values:
            feed(raw)
    return folder


async def write_folded(database_url: str, folder: Folder, counters_table: str) -> dict:
    """Write one worker's rows, consultation facts, catalogue and counters (one transaction)."""
    t0 = time.perf_counter()
    counters = P.counters_of(folder.rows.values(), folder.consultations.values(), folder.catalogue.values())
    t1 = time.perf_counter()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await bulk_insert(conn, "order_facts", ROW_COLUMNS, [row_tuple(r) for r in folder.rows.values()])
            await bulk_insert(conn, "consultation_facts", CONSULT_COLUMNS,
                              list(folder.consultations.values()))
            await bulk_insert(conn, "catalogue_skus", CATALOGUE_COLUMNS, list(folder.catalogue.values()))
            await bulk_insert(conn, counters_table, COUNTER_COLUMNS, [(*k, *v) for k, v in counters.items()])
    finally:
        await engine.dispose()
    return {"counters_s": round(t1 - t0, 2), "write_s": round(time.perf_counter() - t1, 2), "counters": len(counters)}


def _worker(database_url: str, sources: list[Source], counters_table: str) -> dict:
    t0 = time.perf_counter()
    folder = fold_sources(sources)
    fold_s = time.perf_counter() - t0
    stats = folder.stats()
    out = asyncio.run(write_folded(database_url, folder, counters_table))
    return {**stats, "fold_s": round(fold_s, 2), **out}


async def _prepare(database_url: str, staged: bool) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await clear_projection(conn)
            await conn.execute(text(f"DROP TABLE IF EXISTS {STAGE}"))
            if staged:
                unlogged = "UNLOGGED " if conn.dialect.name == "postgresql" else ""
                await conn.execute(text(
                    f"CREATE {unlogged}TABLE {STAGE} (family VARCHAR(8), merchant_id VARCHAR(200), "
                    f"period VARCHAR(10), dim VARCHAR(240), a BIGINT, b BIGINT, c BIGINT, d BIGINT)"))
    finally:
        await engine.dispose()


async def _merge(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                f"INSERT INTO kpi_counters (family, period, merchant_id, dim, a, b, c, d) "
                f"SELECT family, period, merchant_id, dim, SUM(a), SUM(b), SUM(c), SUM(d) FROM {STAGE} "
                f"GROUP BY family, period, merchant_id, dim "
                f"HAVING SUM(a) <> 0 OR SUM(b) <> 0 OR SUM(c) <> 0 OR SUM(d) <> 0"))
            await conn.execute(text(f"DROP TABLE {STAGE}"))
            if conn.dialect.name == "postgresql":
                for t in ("order_facts", "consultation_facts", "kpi_counters"):
                    await conn.execute(text(f"ANALYZE {t}"))
    finally:
        await engine.dispose()


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def rebuild(database_url: str, sources: list[Source], workers: int | None = None, log=print) -> dict:
    """Empty the projection and rebuild it from ``sources``: with the columnar engine
    (``kpi.adapters.columnar``), or with the per-event Python engine when some order or SLA
    event is outside the canonical form. Runs outside any event loop."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kpi_replay_") as tmp:
        files = _as_files(sources, Path(tmp))
        if files is None:
            log("kpi replay: a message holds a line break (not one JSON line); rebuilding with the per-event engine")
            return _rebuild_python(database_url, sources, workers, log, t0)
        with ThreadPoolExecutor(1) as pool:  # routing and catalogue events in Python while DuckDB folds the rest
            routing = pool.submit(_consultations, [f for t, f in files if t in PYTHON_TOPICS])
            folded = columnar.fold([f for t, f in files if t not in PYTHON_TOPICS],
                                   threads=workers or default_workers())
            consultations, stats = routing.result()
        if folded.odd:
            folded.con.close()
            log(f"kpi replay: {folded.odd} order or SLA events are not in the canonical form; "
                "rebuilding with the per-event engine, which validates them with the contracts")
            return _rebuild_python(database_url, sources, workers, log, t0)
        phases = {"fold_s": round(time.perf_counter() - t0, 2)}
        try:
            phases.update(asyncio.run(_write_columnar(database_url, folded, stats, Path(tmp))))
        finally:
            folded.con.close()
    total = {**_columnar_stats(folded, stats, consultations), "counters": phases.pop("counters")}
    return {**total, "events": total["fast"] + total["slow"] + total["invalid"] + total["ignored"],
            "engine": "columnar", "workers": workers or default_workers(),
            "seconds": round(time.perf_counter() - t0, 2), "phases": phases, "per_worker": []}


def _as_files(sources: list[Source], tmp: Path) -> list[tuple[str, str]] | None:
    """(topic, path) of every source; a broker partition is read into a file first
    (None if a message cannot be one line of such a file)."""
    out = []
    for src in sources:
        if src.path:
            out.append((src.topic, src.path))
            continue
        path = tmp / f"{src.topic}.{src.partition}.jsonl"
        with open(path, "wb") as f:
            for raw in asyncio.run(read_partition(src)):
                if b"\n" in raw:
                    return None
                f.write(raw)
                f.write(b"\n")
        out.append((src.topic, str(path)))
    return out


def _columnar_stats(folded, routing: Folder, consultations: dict) -> dict:
    """What the columnar engine folded (order and SLA events) and the routing and catalogue events' path did."""
    return {"fast": folded.fast, "slow": routing.slow, "invalid": routing.invalid,
            "ignored": folded.ignored + routing.ignored, "orders": folded.orders,
            "consultation_facts": len(consultations), "catalogue_skus": len(routing.catalogue)}


def _is_python(raw: bytes) -> bool:
    """A routing or catalogue event (the validated Python path in either engine)."""
    head = raw[:120]
    return b'"type":"routing.' in head or b'"type":"catalogue.' in head


def _consultations_of(raws: Iterable[bytes]) -> tuple[dict, Folder]:
    """Routing and catalogue events (a few per thousand) through the validated path."""
    folder = Folder()
    for raw in raws:
        folder.feed(raw)
    return folder.consultations, folder


def _consultations(paths: list[str]) -> tuple[dict, Folder]:
    return _consultations_of(raw for path in paths for raw in read_file(path))


async def _write_consultations(conn, folder: Folder) -> int:
    """Consultation facts, catalogue entries and their counters (families of their own:
    cons, bill packages, ccat); returns how many counters."""
    consultations, catalogue = list(folder.consultations.values()), list(folder.catalogue.values())
    counters = [(*k, *v) for k, v in P.counters_of((), consultations, catalogue).items()]
    await bulk_insert(conn, "consultation_facts", CONSULT_COLUMNS, consultations)
    await bulk_insert(conn, "catalogue_skus", CATALOGUE_COLUMNS, catalogue)
    await bulk_insert(conn, "kpi_counters", COUNTER_COLUMNS, counters)
    return len(counters)


FACTS_KEY = ("order_id",)
COUNTERS_KEY = ("family", "period", "merchant_id", "dim")


async def _write_columnar(database_url: str, folded, consultations: Folder, tmp: Path) -> dict:
    """Write the facts, counters, consultation facts and catalogue; returns how long each step
    took (and ``counters``: how many). On PostgreSQL the facts and the counters load
    at once on two connections (COPY of CSV files DuckDB writes, counting the
    counters while the facts load); both transactions commit only once both loads
    succeeded, so a failure leaves the previous projection as it was."""
    took: dict = {}
    engine = create_engine(database_url)
    try:
        if engine.dialect.name != "postgresql":
            async with engine.begin() as conn:
                took["counters"] = await _write_rows(conn, folded, consultations)
            return took
        t = time.perf_counter()
        facts_csv = tmp / "order_facts.csv"
        columnar.export_csv(folded, "facts", ROW_COLUMNS, facts_csv, order_by=FACTS_KEY)
        took["facts_csv_s"] = round(time.perf_counter() - t, 2)

        def count_and_export() -> Path:
            t = time.perf_counter()
            took["counters"] = columnar.count(folded)
            path = tmp / "kpi_counters.csv"
            columnar.export_csv(folded, "counters", COUNTER_COLUMNS, path, order_by=COUNTERS_KEY)
            took["count_s"] = round(time.perf_counter() - t, 2)
            return path

        counting = asyncio.ensure_future(asyncio.to_thread(count_and_export))

        async def load_facts(conn) -> None:
            t = time.perf_counter()
            await conn.execute(text("TRUNCATE order_facts"))
            await _copy_csv(conn, "order_facts", ROW_COLUMNS, facts_csv)
            await conn.execute(text("ANALYZE order_facts"))
            took["facts_load_s"] = round(time.perf_counter() - t, 2)

        async def load_counters(conn) -> None:
            path = await counting
            t = time.perf_counter()
            await conn.execute(text("TRUNCATE kpi_counters, consultation_facts, catalogue_skus"))
            await _copy_csv(conn, "kpi_counters", COUNTER_COLUMNS, path)
            took["counters"] += await _write_consultations(conn, consultations)
            await conn.execute(text("ANALYZE kpi_counters"))
            await conn.execute(text("ANALYZE consultation_facts"))
            await conn.execute(text("ANALYZE catalogue_skus"))
            took["counters_load_s"] = round(time.perf_counter() - t, 2)

        async with engine.connect() as facts_conn, engine.connect() as counters_conn:
            facts_tx, counters_tx = await facts_conn.begin(), await counters_conn.begin()
            try:
                await asyncio.gather(load_facts(facts_conn), load_counters(counters_conn))
            except BaseException:
                await asyncio.gather(facts_tx.rollback(), counters_tx.rollback(), return_exceptions=True)
                # a thread cannot be cancelled: let it finish before the caller closes DuckDB
                await asyncio.gather(counting, return_exceptions=True)
                raise
            await facts_tx.commit()
            await counters_tx.commit()
    finally:
        await engine.dispose()
    return took


async def _write_rows(conn, folded, consultations: Folder) -> int:
    """The columnar result written row by row on one connection (SQLite; the in-process
    rebuild); returns how many counters."""
    columnar.count(folded)
    counters = columnar.rows(folded, "counters", COUNTER_COLUMNS)
    await clear_projection(conn)
    await bulk_insert(conn, "order_facts", ROW_COLUMNS, columnar.rows(folded, "facts", ROW_COLUMNS))
    await bulk_insert(conn, "kpi_counters", COUNTER_COLUMNS, counters)
    return len(counters) + await _write_consultations(conn, consultations)


async def _copy_csv(conn, table: str, columns: tuple[str, ...], path: Path) -> None:
    """COPY a CSV file in; the table's secondary indexes are dropped first and built
    again after the load (in bulk, from sorted data), which is several times cheaper
    than maintaining them row by row."""
    raw = (await conn.get_raw_connection()).driver_connection
    indexes = await raw.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", table)
    for ix in indexes:
        await raw.execute(f'DROP INDEX "{ix["indexname"]}"')
    await raw.copy_to_table(table, source=str(path), columns=list(columns), format="csv")
    for ix in indexes:
        await raw.execute(ix["indexdef"])


def _rebuild_python(database_url: str, sources: list[Source], workers: int | None, log, t0: float) -> dict:
    """The per-event engine: worker processes fold whole partitions with
    ``kpi.adapters.folder.Folder`` (events outside the canonical form validated by the
    contracts), sum counters in memory and write them in bulk."""
    workers = max(1, min(workers or default_workers(), len({s.partition for s in sources}) or 1))
    shards: list[list[Source]] = [[] for _ in range(workers)]
    for s in sources:
        shards[s.partition % workers].append(s)
    staged = workers > 1
    asyncio.run(_prepare(database_url, staged))
    table = STAGE if staged else "kpi_counters"
    try:
        if workers == 1:
            results = [_worker(database_url, shards[0], table)]
        else:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                results = pool.starmap(_worker, [(database_url, sh, table) for sh in shards])
    except Exception as exc:  # noqa: BLE001
        if workers > 1 and "order_facts" in repr(exc) and ("duplicate" in repr(exc).lower()
                                                             or "unique" in repr(exc).lower()):
            log("kpi replay: an order's events span partitions of different workers; again with one worker")
            return _rebuild_python(database_url, sources, 1, log, t0)
        raise
    if staged:
        asyncio.run(_merge(database_url))
    total = {k: sum(r[k] for r in results) for k in ("fast", "slow", "invalid", "ignored", "orders",
                                                       "consultation_facts", "counters")}
    return {**total, "events": total["fast"] + total["slow"] + total["invalid"] + total["ignored"],
            "engine": "python", "workers": workers, "seconds": round(time.perf_counter() - t0, 2),
            "per_worker": results}


# ---------------------------------------------------------------- in-process helpers (tests)

async def apply(session: AsyncSession, envelopes) -> int:
    """Apply envelopes through the live consumer's path (``kpi.adapters.store.project``)."""
    from kpi.adapters.store import project

    events = [(env.type, env.data, env.occurred_at) for env in envelopes
              if env.type in P.HANDLED_TYPES]
    await project(session, events)
    return len(events)


async def rebuild_in_process(conn, raws: Iterable[bytes], engine: str = "columnar") -> dict:
    """Rebuild on one connection from envelope bytes, with the columnar engine (the
    per-event engine if ``engine="python"`` or an event is not in the canonical form)."""
    raws = list(raws)
    if engine == "columnar" and not any(b"\n" in r for r in raws):
        with tempfile.TemporaryDirectory(prefix="kpi_replay_") as tmp:
            orders = Path(tmp) / "events.jsonl"
            orders.write_bytes(b"".join(r + b"\n" for r in raws if not _is_python(r)))
            folded = columnar.fold([orders], threads=2)
            try:
                if not folded.odd:
                    consultations, stats = _consultations_of(r for r in raws if _is_python(r))
                    await _write_rows(conn, folded, stats)
                    return {**_columnar_stats(folded, stats, consultations), "engine": "columnar"}
            finally:
                folded.con.close()
    folder = Folder()
    for raw in raws:
        folder.feed(raw)
    await clear_projection(conn)
    counters = P.counters_of(folder.rows.values(), folder.consultations.values(), folder.catalogue.values())
    await bulk_insert(conn, "order_facts", ROW_COLUMNS, [row_tuple(r) for r in folder.rows.values()])
    await bulk_insert(conn, "consultation_facts", CONSULT_COLUMNS, list(folder.consultations.values()))
    await bulk_insert(conn, "catalogue_skus", CATALOGUE_COLUMNS, list(folder.catalogue.values()))
    await bulk_insert(conn, "kpi_counters", COUNTER_COLUMNS, [(*k, *v) for k, v in counters.items()])
    return {**folder.stats(), "engine": "python"}


# ---------------------------------------------------------------- snapshot of every figure

async def snapshot(session: AsyncSession, settings) -> dict:
    """Every figure the service computes, in a comparable form (plus the raw tables)."""
    from sqlalchemy import select

    from kpi.domain.index import IndexPolicy
    from kpi.domain.scorecard import flags, rank
    from kpi.handlers.figures import all_weeks, billing, composite, penalties, published_statistics, service_express
    from kpi.models import CatalogueSku, ConsultationFact, Counter, OrderFact

    weeks = await all_weeks(session)
    se = await service_express(session, settings.consultation_weights)
    months = sorted({p for (p,) in (await session.execute(
        select(Counter.period).where(Counter.family == "st").distinct())).all()})
    periods = months + sorted({f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in months})
    days = sorted({p for (p,) in (await session.execute(
        select(Counter.period).where(Counter.family == "ix").distinct())).all()})
    policy = IndexPolicy(platinum_min_peers=settings.platinum_min_peers)
    from datetime import date

    return {
        "facts": sorted(tuple(r) for r in (await session.execute(select(OrderFact.__table__))).all()),
        "consultations": sorted(tuple(r) for r in (await session.execute(select(ConsultationFact.__table__))).all()),
        "catalogue": sorted(tuple(r) for r in (await session.execute(select(CatalogueSku.__table__))).all()),
        "counters": sorted(tuple(r) for r in (await session.execute(select(Counter.__table__))).all()),
        "scorecards": {w.isoformat(): {m: c.as_dict() for m, c in sorted(cards.items())}
                       for w, cards in sorted(weeks.items())},
        "rankings": {w.isoformat(): [(e.merchant_id, str(e.score), e.rank, e.bottom10) for e in rank(cards)]
                     for w, cards in sorted(weeks.items())},
        "flags": flags(weeks),
        "penalties": await penalties(session),
        "billing": await billing(session, settings.package_prices, settings.order_fee_cny),
        "service_express": {w.isoformat(): {m: {k: str(v.get(k)) for k in ("after_sales", "consultation")}
                                            for m, v in sorted(ms.items())} for w, ms in sorted(se.items())},
        "statistics": {p: await published_statistics(session, p) for p in periods},
        "index": {d: await composite(session, date.fromisoformat(d), settings.category_parents, policy)
                  for d in sorted(set(days[len(days) // 2:len(days) // 2 + 1] + days[-1:]))},
    }
