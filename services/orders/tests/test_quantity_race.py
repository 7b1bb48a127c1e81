"""The quantity in service for an order line never exceeds what was bought, whatever the
number of concurrent applications (each with its own idempotency key): on SQLite (the
session adapter's in-process line lock) and on PostgreSQL (the line's advisory lock, taken
by both adapters of the order store)."""
import asyncio

import pytest
from sqlalchemy import func, select

from orders.app import order_store
from orders.models import ServiceOrder

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
