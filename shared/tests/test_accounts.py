"""Revocation in every service: the account guard refuses tokens older than their account's
latest version, learnt from ``account.changed`` on ``accounts.events`` by a listener that
every service runtime starts."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI

from shared.accounts import AccountGuard, AccountListener, apply_message
from shared.auth import Policy, Principal, issue_token
from shared.clock import SystemClock
from shared.errors import ApiError, install_error_handlers
from shared.events import Envelope, make_envelope
from shared.kafka import TopicSpec, ensure_topics
from shared.testing import eventually
from shared.topics import ACCOUNT_EVENTS

SECRET = "k3J9x-Qw7pL2mZ8vR4tY6uN1bC5dE0fG-test"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def staff(version: int | None) -> Principal:
    return Principal("merchant_staff", "m-1.alice", merchant_id="m-1", permissions=frozenset({"audit"}),
                     version=version)


def changed(client_id: str = "m-1.alice", version: int = 2, active: bool = False) -> bytes:
    return make_envelope(type_="account.changed", key=client_id, producer="orders", occurred_at=NOW,
                         data={"client_id": client_id, "role": "merchant_staff", "merchant_id": "m-1",
                               "version": version, "active": active, "changes": ["active"],
                               "changed_at": NOW}).to_bytes()


def test_a_token_older_than_its_account_is_refused():
    g = AccountGuard()
    g.check(staff(1))  # never changed: any token passes
    g.check(staff(None))
    assert g.note("m-1.alice", 2)
    for old in (1, None):  # a token without ``ver`` counts as version 0
        with pytest.raises(ApiError) as e:
            g.check(staff(old))
        assert e.value.status == 401 and e.value.code == "token_revoked"
    g.check(staff(2))  # issued after the change
    g.check(Principal("merchant_staff", "m-1.bob", merchant_id="m-1", version=1))  # another account


def test_versions_only_grow():
    g = AccountGuard()
    assert g.note("a", 3) and not g.note("a", 2) and not g.note("a", 3)
    assert g.latest("a") == 3 and g.latest("b") is None


def test_only_account_changes_are_applied():
    g = AccountGuard()
    assert apply_message(g, changed(version=4))
    assert g.latest("m-1.alice") == 4
    env = Envelope(type="something.else", occurred_at=NOW, producer="x", key="k", data={})
    assert not apply_message(g, env.to_bytes())


async def test_the_listener_reads_every_partition_from_the_beginning(broker):
    # Even when the topic was created (e.g. auto-created by a metadata request) with
    # several partitions.
    await ensure_topics(broker.bootstrap, [TopicSpec(ACCOUNT_EVENTS, partitions=3)], default_partitions=3)
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await p.start()
    try:
        await p.send_and_wait(ACCOUNT_EVENTS, changed("m-1.alice", 2), partition=2)  # before the listener starts
        g = AccountGuard()
        task = asyncio.create_task(AccountListener(g, broker.bootstrap).run())
        try:
            await eventually(lambda: _latest(g, "m-1.alice", 2), timeout=20)
            await p.send_and_wait(ACCOUNT_EVENTS, changed("m-1.bob", 5), partition=0)
            await p.send_and_wait(ACCOUNT_EVENTS, b"not json", partition=1)  # skipped, not fatal
            await p.send_and_wait(ACCOUNT_EVENTS, changed("m-1.carol", 3), partition=1)
            await eventually(lambda: _latest(g, "m-1.carol", 3), timeout=20)
            assert g.latest("m-1.bob") == 5
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await p.stop()


async def _latest(g: AccountGuard, client_id: str, version: int) -> bool:
    return g.latest(client_id) == version


async def test_a_service_policy_refuses_a_revoked_token():
    """``Policy`` asks ``runtime.account_guard`` (shared.runtime installs one per service)."""
    guard = AccountGuard()
    app = FastAPI()
    app.state.runtime = SimpleNamespace(settings=SimpleNamespace(token_secret=SECRET), clock=SystemClock(),
                                        account_guard=guard)
    install_error_handlers(app)

    @app.get("/timers", dependencies=[Depends(Policy("merchant_main", "merchant_staff"))])
    async def timers() -> dict:
        return {}

    old = {"Authorization": "Bearer " + issue_token(staff(1), SECRET)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/timers", headers=old)).status_code == 200
        apply_message(guard, changed(version=2))
        r = await c.get("/timers", headers=old)
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
        new = {"Authorization": "Bearer " + issue_token(staff(2), SECRET)}
        assert (await c.get("/timers", headers=new)).status_code == 200


async def test_every_service_runtime_has_a_guard(tmp_path):
    from pathlib import Path

    from sqlalchemy import MetaData

    from shared.messaging_tables import MessagingTables
    from shared.runtime import Runtime, ServiceDefinition
    from shared.settings import ServiceSettings

    md = MetaData()
    rt = Runtime(ServiceDefinition(name="x", title="x", metadata=md, tables=MessagingTables(md),
                                   migrations_dir=Path(tmp_path)),
                 ServiceSettings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    try:
        assert isinstance(rt.account_guard, AccountGuard)
    finally:
        await rt.engine.dispose()
