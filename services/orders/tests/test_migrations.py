"""The hand-written migrations and the models describe the same schema."""
from orders.app import MIGRATIONS
from orders.models import Base
from shared.migrations import schema_drift


async def test_models_match_migrations(database_url):
    assert await schema_drift(MIGRATIONS, await database_url("orders"), Base.metadata) == []
