"""Fixtures for the orders tests: the real app over ASGI (no broker: events stay in
the outbox table where the tests read them), a manual clock, and principals obtained
through the token endpoint."""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from orders.app import MIGRATIONS, create_app
from orders.handlers.accounts import create_client
from orders.settings import OrdersSettings
from shared.clock import ManualClock
from shared.migrations import upgrade

START = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing


class Api:
    def __init__(self, app, client: httpx.AsyncClient, clock: ManualClock) -> None:
        self.app, self.client, self.clock = app, client, clock
        self.rt = app.state.runtime
        self._n = 0

    @staticmethod
    def cust(sf: dict, customer: str = "c-1") -> dict:
        return {**sf, "X-Customer-Id": customer}

    async def token(self, client_id: str, secret: str) -> dict:
        r = await self.client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                             "client_secret": secret})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def bootstrap(self, role: str = "platform_operator", client_id: str = "op-1") -> dict:
        creds = await create_client(self.rt, client_id=client_id, role=role, name=client_id)
        return await self.token(creds["client_id"], creds["client_secret"])

    async def merchant(self, op: dict, mid: str = "m-1", mode: str = "pop_self_service", **extra) -> dict:
        body = {"id": mid, "name": f"Merchant {mid}", "kind": "pop_seller", "mode": mode,
                "contact_phone": "400-000-1234", "return_address": "Beijing, Yizhuang, 1 Return Rd",
                "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"},
                         {"sku": "sku-2", "category": "phones", "price": "199.00"},
                         {"sku": "sku-3", "category": "phones", "price": "299.00"}], **extra}
        r = await self.client.post("/v1/platform/merchants", json=body, headers=op)
        assert r.status_code == 201, r.text
        c = r.json()["main_account"]
        return await self.token(c["client_id"], c["client_secret"])

    async def staff(self, main: dict, login: str, permissions=("audit", "process"), categories=("phones",)) -> dict:
        r = await self.client.post("/v1/merchant/staff", headers=main, json={
            "login": login, "name": login, "permissions": list(permissions), "categories": list(categories)})
        assert r.status_code == 201, r.text
        c = r.json()["credentials"]
        return await self.token(c["client_id"], c["client_secret"])

    def apply_body(self, customer: str = "c-1", **changes) -> dict:
        self._n += 1
        body = {"merchant_id": "m-1", "customer_id": customer, "customer_phone": "13800138000",
                "customer_level": "regular", "sales_order_id": f"so-{self._n}", "order_line_id": "1",
                "sku": "sku-1", "category": "phones", "purchased_quantity": 1, "quantity": 1,
                "amount_paid": "199.00", "service_type": "return", "problem_type": "quality",
                "delivered_at": (self.clock.now() - timedelta(days=2)).isoformat(), "description": "broken"}
        body.update(changes)
        return body

    async def apply(self, sf: dict, customer: str = "c-1", key: str | None = None, **changes) -> dict:
        r = await self.client.post("/v1/storefront/service-orders", json=self.apply_body(customer, **changes),
                                   headers={**sf, "X-Customer-Id": customer, "Idempotency-Key": key or f"k{self._n}"})
        assert r.status_code == 201, r.text
        return r.json()

    async def post(self, path: str, headers: dict, body: dict | None = None, status: int = 200, **kw) -> dict:
        r = await self.client.post(path, json=body or {}, headers=headers, **kw)
        assert r.status_code == status, r.text
        return r.json()

    async def events(self, order_id: str | None = None) -> list[dict]:
        ob = self.rt.tables.outbox
        async with self.rt.sessions() as s:
            rows = (await s.execute(select(ob).order_by(ob.c.id))).mappings().all()
        import json

        out = []
        for r in rows:
            env = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
            if order_id is None or env.get("key") == order_id:
                out.append(env)
        return out


@asynccontextmanager
async def open_api(url: str, tmp_path, **settings):
    """The orders app on a migrated database ``url``; ``settings`` override the test settings
    (e.g. ``order_store``; by default ``auto`` picks the adapter: the session one on SQLite, the
    single-statement one on PostgreSQL; ``ORDERS_ORDER_STORE=session`` in the environment runs
    the PostgreSQL variants through the session adapter)."""
    s = OrdersSettings(**{"environment": "test", "database_url": url, "log_json": False, "token_ttl_s": 90 * 86400,
                          "blob_dir": str(tmp_path / "blobs"), "data_dir": str(tmp_path), **settings})
    app = create_app(s)
    rt = app.state.runtime
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(START)
    rt.clock = clock
    rt.outbox.clock = clock
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Api(app, client, clock)
    finally:
        await rt.order_store.close()
        await rt.engine.dispose()


@pytest.fixture
async def api(database_url, tmp_path):
    async with open_api(await database_url("orders"), tmp_path) as a:
        yield a


async def make_world(api: Api) -> dict:
    """An operator, a POP merchant m-1 with an auditor/processor, a storefront, an arbitrator."""
    op = await api.bootstrap()
    main = await api.merchant(op)
    staff = await api.staff(main, "alice")
    sf_creds = (await api.post("/v1/platform/clients", op, {"client_id": "web", "role": "storefront",
                                                            "name": "web shop"}, status=201))
    sf = await api.token(sf_creds["client_id"], sf_creds["client_secret"])
    arb = await api.bootstrap("arbitrator", "arb-1")
    return {"op": op, "main": main, "staff": staff, "sf": sf, "arb": arb}


@pytest.fixture
async def world(api):
    return await make_world(api)


def cust(sf: dict, customer: str = "c-1") -> dict:
    return {**sf, "X-Customer-Id": customer}
