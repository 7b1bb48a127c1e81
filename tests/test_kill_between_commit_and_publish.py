"""A service killed (SIGKILL) after committing a state change but before its event
was published delivers the event after it restarts: the event waited in the outbox."""
import asyncio

import httpx

from shared.broker import free_port
from shared.testing import eventually
from tests.helpers import bearer, start_services, submit_application, operator_headers
from tests.procs import ServiceProcess


async def test_event_survives_sigkill_before_publish(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["kpi"])
    orders_db = await database_url("orders")
    # No broker at this address: the order commits, its event cannot leave the outbox.
    dead = ServiceProcess("orders", "ORDERS_", database_url=orders_db, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    await asyncio.to_thread(dead.start)
    try:
        async with httpx.AsyncClient(base_url=dead.url, timeout=10) as c:
            r = await submit_application(c, 5, key="kill-1")
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
            # the merchant's catalogue (published at onboarding) and the order's creation
            assert (await c.get("/admin/outbox", headers=operator_headers())).json()["pending"] == 2
    finally:
        dead.kill()

    alive = ServiceProcess("orders", "ORDERS_", database_url=orders_db, kafka_bootstrap=broker.bootstrap, port=dead.port)
    await asyncio.to_thread(alive.start)
    try:
        async def fact():
            r = await svc["kpi"].client.get(f"/v1/facts/service-orders/{order_id}",
                                            headers=bearer("platform_operator", "t"))
            return r.status_code == 200

        await eventually(fact, timeout=60)
        async with httpx.AsyncClient(base_url=alive.url, timeout=10) as c:
            assert (await c.get("/admin/outbox", headers=operator_headers())).json()["pending"] == 0
    finally:
        await asyncio.to_thread(alive.stop)
