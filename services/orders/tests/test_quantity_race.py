"""The quantity in service for an order line never exceeds what was bought, whatever the
number of concurrent applications (each with its own idempotency key): on SQLite and on
PostgreSQL, through both adapters of the order store. Within a process applications for one
line take turns; across processes (replicas) the line's version decides: of two applications
decided on the same facts, the second to write stores nothing and is decided again."""
import asyncio

import pytest
from sqlalchemy import func, select

from orders.adapters.store import Collided
from orders.app import order_store
from orders.domain.application import decide_application
from orders.handlers.apply import request_hash
from orders.models import SalesLine, ServiceOrder
from orders.schemas import ApplicationIn

S = "/v1/storefront/service-orders"


async def _race(api, sf, n: int, purchased: int, **changes) -> list[int]:
    body = api.apply_body(purchased_quantity=purchased, quantity=1, **changes)
    body["sales_order_id"] = "so-race"

    async def one(i: int) -> int:
        r = await api.client.post(S, json=body, headers={**sf, "X-Customer-Id": "c-1", "Idempotency-Key": f"race-{i}"})
        assert r.status_code in (201, 422), r.text
        if r.status_code == 422:
            assert r.json()["error"]["code"] == "quantity_exceeds_available"
        return r.status_code

    return await asyncio.gather(*(one(i) for i in range(n)))


async def _in_service(api) -> int:
    async with api.rt.sessions() as s:
        return await s.scalar(select(func.coalesce(func.sum(ServiceOrder.quantity), 0)).where(
            ServiceOrder.sales_order_id == "so-race", ServiceOrder.order_line_id == "1"))


@pytest.fixture(params=["configured", "session"])
def adapter(request, api, db_backend):
    """The configured adapter, and on PostgreSQL the session one as well."""
    if request.param == "session":
        if db_backend == "sqlite":
            pytest.skip("on SQLite the configured adapter is the session one")
        api.rt.order_store = order_store(api.rt, api.rt.settings.model_copy(update={"order_store": "session"}))
    return type(api.rt.order_store).__name__


async def test_twenty_concurrent_applications_for_one_unit_store_one(api, world, adapter):
    statuses = await _race(api, world["sf"], 20, purchased=1)
    assert statuses.count(201) == 1
    assert await _in_service(api) == 1


async def test_concurrent_applications_fill_the_line_exactly(api, world, adapter):
    statuses = await _race(api, world["sf"], 12, purchased=3)
    assert statuses.count(201) == 3
    assert await _in_service(api) == 3


def _decide(api, unit_facts, body: ApplicationIn, key: str):
    return decide_application(body, unit_facts, idempotency_key=key, digest=request_hash(body), now=api.clock.now(),
                              windows=api.rt.settings.eligibility_windows,
                              platform_return_address=api.rt.settings.platform_return_address)


async def test_an_application_decided_on_facts_another_replica_changed_stores_nothing(api, world, adapter):
    """Two replicas read the line's facts, one stores its order: the other's write finds the
    line's version moved and stores nothing (``Collided``); decided again, it is refused."""
    store = api.rt.order_store
    body = ApplicationIn(**api.apply_body(purchased_quantity=1, quantity=1))
    async with store.transition() as a:  # a unit without this process's turn: another replica
        facts_a = await a.application_facts(body, "rep-a")
        async with store.transition() as b:
            facts_b = await b.application_facts(body, "rep-b")
            await b.create(_decide(api, facts_b, body, "rep-b"), [])
        with pytest.raises(Collided):
            await a.create(_decide(api, facts_a, body, "rep-a"), [])
    async with api.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ServiceOrder).where(
            ServiceOrder.sales_order_id == body.sales_order_id)) == 1
        assert await s.scalar(select(func.count()).select_from(SalesLine).where(
            SalesLine.sales_order_id == body.sales_order_id)) == 1
    async with store.transition() as a:
        facts = await a.application_facts(body, "rep-a")
        assert facts.in_service == 1
        with pytest.raises(Exception) as refused:
            _decide(api, facts, body, "rep-a")
        assert refused.value.code == "quantity_exceeds_available"


async def test_replicas_racing_for_one_line_never_exceed_the_purchase(api, world, adapter, db_backend):
    """Many replicas at once (units without this process's turns), each deciding again after a
    collision: exactly the purchased quantity is stored."""
    if db_backend == "sqlite":
        pytest.skip("SQLite is one process: its applications for a line always take turns")
    store = api.rt.order_store
    raw = api.apply_body(purchased_quantity=3, quantity=1)

    async def replica(i: int) -> str:
        body = ApplicationIn(**raw)
        for _ in range(30):
            async with store.transition() as unit:
                facts = await unit.application_facts(body, f"rr-{i}")
                try:
                    application = _decide(api, facts, body, f"rr-{i}")
                except Exception as refused:  # noqa: BLE001 - the domain's refusal
                    return refused.code
                try:
                    await unit.create(application, [])
                except Collided:
                    continue
                return "created"
        return "gave up"

    outcomes = await asyncio.gather(*(replica(i) for i in range(10)))
    assert outcomes.count("created") == 3, outcomes
    assert set(outcomes) == {"created", "quantity_exceeds_available"}, outcomes
    async with api.rt.sessions() as s:
        assert await s.scalar(select(func.coalesce(func.sum(ServiceOrder.quantity), 0)).where(
            ServiceOrder.sales_order_id == raw["sales_order_id"])) == 3


async def test_applications_on_different_replicas_are_answered_without_conflicts(api, world, adapter, monkeypatch):
    """Every application for the line on a replica of its own (no turns taken in common): the
    collisions are decided again until each is stored or refused; none is answered 409."""
    import contextlib

    from orders.adapters import direct, session_store

    @contextlib.asynccontextmanager
    async def no_turn(*_line):
        yield

    monkeypatch.setattr(direct, "line_turn", no_turn)
    monkeypatch.setattr(session_store, "line_turn", no_turn)
    statuses = await _race(api, world["sf"], 12, purchased=3)
    assert statuses.count(201) == 3
    assert await _in_service(api) == 3
