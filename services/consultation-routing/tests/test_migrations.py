"""The hand-written migrations and the models describe the same schema."""
from consultation_routing.app import MIGRATIONS
from consultation_routing.models import Base
from shared.migrations import schema_drift


async def test_models_match_migrations(database_url):
    assert await schema_drift(MIGRATIONS, await database_url("routing"), Base.metadata) == []
