"""What the benchmarks share: throwaway PostgreSQL databases, one-value queries, a
process's memory, progress lines."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg

from shared.db import postgres_url

SOCKET_DIR = "/var/run/postgresql"
# The PostgreSQL server, as ``user@host:port`` or ``user@/socket-directory``: by default the
# local server's Unix socket where it has one (every service of a benchmark and PostgreSQL
# share this machine; a round trip through the socket skips the TCP stack on both sides).
PG_SERVER = os.environ.get("BENCH_PG") or (
    f"postgres@{SOCKET_DIR}" if Path(SOCKET_DIR, ".s.PGSQL.5432").exists() else "postgres@127.0.0.1:5432")
ADMIN_DSN = postgres_url(PG_SERVER, "postgres", "postgresql")


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
    return db, postgres_url(PG_SERVER, db, "postgresql"), postgres_url(PG_SERVER, db)


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
