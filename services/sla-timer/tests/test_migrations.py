"""The hand-written migrations and the models describe the same schema."""
from sla_timer.app import MIGRATIONS
from sla_timer.models import Base
from shared.migrations import schema_drift


async def test_models_match_migrations(database_url):
    assert await schema_drift(MIGRATIONS, await database_url("sla-timer"), Base.metadata) == []
