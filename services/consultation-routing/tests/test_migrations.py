"""The hand-written migration and the models describe the same schema."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from consultation_routing.app import MIGRATIONS
from consultation_routing.models import Base
from shared.migrations import upgrade


async def test_models_match_migrations(database_url):
    url = await database_url("routing")
    await upgrade(MIGRATIONS, url)
    engine = create_async_engine(url)

    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return [d for d in compare_metadata(ctx, Base.metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")]

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
