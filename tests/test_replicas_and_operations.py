"""Several replicas of a service share a topic's partitions through their consumer
group, each event applied once; operations endpoints answer as documented."""
from sqlalchemy import func, select

from kpi.app import create_app as kpi_app
from kpi.models import OrderFact
from kpi.settings import KpiSettings
from shared.testing import eventually
from tests.helpers import start_services, submit_application, operator_headers


async def test_two_replicas_share_the_work_and_apply_each_event_once(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders"])
    kpi_db = await database_url("kpi")
    replicas = [await start_service(kpi_app, KpiSettings, database_url=kpi_db) for _ in range(2)]
    ids = []
    for n in range(30):
        r = await submit_application(svc["orders"].client, n)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    async def all_there():
        async with replicas[0].runtime.sessions() as s:
            return await s.scalar(select(func.count()).select_from(OrderFact).where(OrderFact.order_id.in_(ids))) == 30

    await eventually(all_there, timeout=60)
    pe = replicas[0].runtime.tables.processed_events
    async with replicas[0].runtime.sessions() as s:
        # the 30 orders, each applied once (onboarding also published the merchant's catalogue)
        assert await s.scalar(select(func.count()).select_from(pe).where(
            pe.c.event_type == "service_order.created")) == 30
        total = await s.scalar(select(func.count()).select_from(pe))
    applied = [r.runtime.consumers[0].processed_total._value.get() for r in replicas]
    assert sum(applied) == total
    assert all(a > 0 for a in applied), applied


async def test_operations_endpoints(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders"])
    c = svc["orders"].client
    assert (await c.get("/health")).json() == {"status": "ok", "service": "orders"}
    ready = await c.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "broker": True, "schema": True}
    r = await submit_application(c, 1, headers={"X-Correlation-ID": "apply-7"})
    assert r.status_code == 201
    # The request's correlation id travels in the event envelope.
    async with svc["orders"].runtime.sessions() as s:
        ob = svc["orders"].runtime.tables.outbox
        payload = await s.scalar(select(ob.c.payload).where(ob.c.event_type == "service_order.created"))
    assert '"correlation_id":"apply-7"' in payload
    r = await c.get("/health", headers={"X-Correlation-ID": "trace-42"})
    assert r.headers["x-correlation-id"] == "trace-42"
    await eventually(lambda: _published(c))
    metrics = (await c.get("/metrics", headers=operator_headers())).text
    assert "http_request_duration_seconds_bucket" in metrics
    assert "outbox_published_total 2.0" in metrics  # the merchant's catalogue, then the order
    assert (await c.get("/openapi.json")).status_code == 200
    dl = await c.get("/admin/dead-letters", params={"limit": 0}, headers=operator_headers())
    assert dl.status_code == 422 and dl.json()["error"]["code"] == "validation_error"


async def _published(c):
    return "outbox_published_total 2.0" in (await c.get("/metrics", headers=operator_headers())).text
