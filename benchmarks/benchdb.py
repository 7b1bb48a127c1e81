"""What the benchmarks share: throwaway PostgreSQL databases, one-value queries, a
process's memory, progress lines."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg

ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]


def log(msg: str) -> None:
    print(msg, flush=True)


async def make_db(name: str) -> tuple[str, str, str]:
    """(database, asyncpg DSN, SQLAlchemy URL) of a new empty database."""
    db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(ADMIN_DSN)
    try:
        await c.execute(f'CREATE DATABASE "{db}"')
    finally:
        await c.close()
    return db, f"postgresql://{PG_HOST}/{db}", f"postgresql+asyncpg://{PG_HOST}/{db}"


async def drop_db(db: str) -> None:
    c = await asyncpg.connect(ADMIN_DSN)
    try:
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await c.close()


async def scalar(dsn: str, sql: str, *args):
    c = await asyncpg.connect(dsn)
    try:
        return await c.fetchval(sql, *args)
    finally:
        await c.close()


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a running process; NaN when it is gone."""
    try:
        fields = dict(line.partition(":")[::2] for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        return float("nan"), float("nan")
