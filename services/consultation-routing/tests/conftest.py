"""Fixtures: the real routing app over ASGI on a fresh database with a manual
clock (no broker: events stay in the outbox table where tests read them), and
tokens signed with the service's secret."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from consultation_routing.app import MIGRATIONS, create_app
from consultation_routing.parts import routing_of
from consultation_routing.settings import ConsultationRoutingSettings
from shared.auth import Principal, issue_token
from shared.clock import ManualClock
from shared.migrations import upgrade
from shared.outbox import row_messages

TUESDAY_10 = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)  # Tue 2026-03-03 10:00 Beijing, a working day


class Api:
    def __init__(self, app, client: httpx.AsyncClient, clock: ManualClock) -> None:
        self.app, self.client, self.clock = app, client, clock
        self.rt = app.state.runtime
        self.routing = routing_of(self.rt)

    def token(self, role: str = "platform_operator", merchant_id: str | None = None) -> dict:
        p = Principal(role=role, subject=f"{role}-client", merchant_id=merchant_id)
        return {"Authorization": f"Bearer {issue_token(p, self.rt.settings.token_secret, now=self.clock.now())}"}

    @property
    def op(self) -> dict:
        return self.token()

    async def enroll(self, mid: str = "m-1", categories=("phones",), **extra) -> dict:
        body = {"name": f"Maker {mid}", "categories": list(categories), "im_queue_id": f"q-{mid}",
                "phone_extension": "8001", **extra}
        r = await self.client.put(f"/v1/manufacturers/{mid}/enrollment", json=body, headers=self.op)
        assert r.status_code == 200, r.text
        return r.json()

    async def skus(self, text: str, ctype: str = "text/csv") -> dict:
        r = await self.client.post("/v1/catalogue/skus", content=text.encode(), headers={**self.op, "content-type": ctype})
        assert r.status_code == 200, r.text
        return r.json()

    async def queue(self, mid: str = "m-1", agents: int = 2, length: int = 0, wait: int | None = None) -> dict:
        r = await self.client.put(f"/v1/queues/{mid}/state", headers=self.op,
                                  json={"agents_online": agents, "queue_length": length, "expected_wait_s": wait})
        assert r.status_code == 200, r.text
        return r.json()

    @property
    def storefront(self) -> dict:
        return self.token("storefront")

    async def route(self, status: int = 200, headers: dict | None = None, **params) -> dict:
        """GET /v1/route as the storefront (or with ``headers``), on the server's clock."""
        params.setdefault("channel", "im")
        params.setdefault("entry_point", "product_page")
        r = await self.client.get("/v1/route", params=params, headers=self.storefront if headers is None else headers)
        assert r.status_code == status, r.text
        return r.json()

    async def what_if(self, at: str, **params) -> dict:
        """An operator's what-if at ``at``: answered, never recorded."""
        a = await self.route(headers=self.op, at=at, **params)
        assert a["what_if"] is True
        return a

    async def events(self, type_: str | None = None) -> list[dict]:
        await self.routing.publisher.flush()
        ob = self.rt.tables.outbox
        async with self.rt.sessions() as s:
            rows = (await s.execute(select(ob).order_by(ob.c.id))).mappings().all()
        # decisions are written as bundle rows: one row, many events
        out = [json.loads(value) for r in rows for _key, value in row_messages(r["event_type"], r["key"], r["payload"])]
        return [e for e in out if type_ is None or e["type"] == type_]


@pytest.fixture
async def api(database_url, tmp_path):
    url = await database_url("routing")
    settings = ConsultationRoutingSettings(environment="test", database_url=url, log_json=False, data_dir=str(tmp_path))
    app = create_app(settings)
    rt = app.state.runtime
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(TUESDAY_10)
    rt.clock = clock
    rt.outbox.clock = clock
    await routing_of(rt).state.refresh()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(app, client, clock)
    await rt.engine.dispose()
