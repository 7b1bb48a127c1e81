"""/ready checks the schema: a replica started on a database nobody migrated answers 503
"migrations pending" (not 200, then 500 on the first request), turns ready once
`<service> migrate` has run, and stays ready when a later release migrated further
(the rolling upgrade migrates first, while this release still serves)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from shared.migrations import upgrade
from shared.testing import eventually
from tests.helpers import SERVICES


@pytest.mark.parametrize("service", list(SERVICES))
async def test_ready_is_503_until_the_schema_is_at_the_head(service, start_service, database_url):
    create_app, settings_cls = SERVICES[service]
    url = await database_url(service)
    svc = await start_service(create_app, settings_cls, database_url=url, run_migrations_on_start=False)
    started = time.monotonic()
    r = await svc.client.get("/ready")
    assert time.monotonic() - started < 1.0
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["checks"]["schema"] is False and body["checks"]["database"] is True
    assert body["reasons"]["schema"].startswith("migrations pending: the database is at no schema")
    assert f"`{service} migrate`" in body["reasons"]["schema"]

    await upgrade(svc.runtime.definition.migrations_dir, url)
    # the service's own start (reading its tables) runs once migrated; ready after it
    r = await eventually(lambda: _ready(svc.client), timeout=10)
    assert r.json()["checks"]["schema"] is True and "reasons" not in r.json()


async def _ready(client):
    r = await client.get("/ready")
    if r.status_code != 200:
        assert r.json()["reasons"]["schema"].startswith("starting: the schema is migrated"), r.text
        return None
    return r


async def test_a_database_behind_the_head_is_pending_and_one_ahead_is_ready(start_service, database_url):
    create_app, settings_cls = SERVICES["orders"]
    url = await database_url("orders")
    svc = await start_service(create_app, settings_cls, database_url=url, run_migrations_on_start=False)
    schema = svc.runtime.schema
    await upgrade(svc.runtime.definition.migrations_dir, url)
    head = sorted(schema.heads)[0]
    older = sorted(schema.known - schema.heads)
    assert older, "orders has more than one migration"
    async with svc.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older[0]})
    reason = await schema.check()
    assert isinstance(reason, str) and f"the database is at {older[0]}, this release needs {head}" in reason
    # a later release's migration, unknown to this code: backward compatible by the upgrade rule
    async with svc.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'f00d_next_release'"))
    assert await schema.check() is True
    # once at the head, never asked again (no query per probe)
    await svc.runtime.engine.dispose()
    assert await schema.check() is True
