"""Alembic per service: each service keeps its migrations beside its code.
They run on start in development and as a one-off command (``<service> migrate``)
in production."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(migrations_dir: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(migrations_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, url), revision)


async def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade_sync, migrations_dir, url, revision)


def run_env(target_metadata) -> None:
    """Body of every service's ``env.py``."""
    from alembic import context
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import create_engine

    config = context.config
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_engine(url) if url.startswith("sqlite") else create_async_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())


class SchemaState:
    """Whether the database schema is at this code's migrations head, for ``/ready``: a
    replica started on a database nobody migrated yet must not take traffic (its first
    request would fail on a missing table).

    The head is read from the migration scripts once (``load``, at start); the database's
    revision on each check until it is at the head, then never again (a schema does not go
    back). A revision this code does not know is a later release's (the rolling upgrade
    migrates first, backward compatibly, while this release still serves): ready."""

    def __init__(self, migrations_dir: Path, engine, service: str) -> None:
        self.migrations_dir = migrations_dir
        self.engine = engine
        self.service = service
        self.heads: frozenset[str] | None = None
        self.known: frozenset[str] = frozenset()
        self.at_head = False

    def _read_scripts(self) -> tuple[frozenset[str], frozenset[str]]:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config(self.migrations_dir, "sqlite://"))
        return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())

    async def load(self) -> None:
        if self.heads is None:
            self.heads, self.known = await asyncio.to_thread(self._read_scripts)

    async def check(self) -> bool | str:
        """True when at the head (or newer); otherwise why not (``/ready`` shows it)."""
        if self.at_head:
            return True
        await self.load()
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                current = frozenset((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        except Exception as exc:  # noqa: BLE001 - no table (never migrated) or no database: not ready
            if "alembic_version" not in str(exc):
                raise
            current = frozenset()
        if current == self.heads or (current and not current <= self.known):
            self.at_head = True
            return True
        have = ", ".join(sorted(current)) or "no schema"
        return (f"migrations pending: the database is at {have}, this release needs {', '.join(sorted(self.heads))} "
                f"(run `{self.service} migrate`)")


async def schema_drift(migrations_dir, url: str, metadata) -> list:
    """What differs between the schema the migrations build and the models' ``metadata``
    (empty when they agree; types not compared). For each service's migration test."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    await upgrade(migrations_dir, url)
    engine = create_async_engine(url)

    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return [d for d in compare_metadata(ctx, metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")]

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()
