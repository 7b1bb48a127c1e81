"""While the broker is down requests still succeed and events wait in the outbox;
after it comes back (empty: the embedded broker keeps nothing) every event is
delivered, none lost, in order per key."""
from sqlalchemy import func, select

from kpi.models import OrderFact
from shared.testing import eventually
from tests.helpers import bearer, start_services, submit_application, operator_headers


async def test_requests_succeed_while_broker_down_and_events_arrive_after(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "kpi"])
    # One order before the outage proves the pipe works and gives the consumer a committed offset.
    r = await submit_application(svc["orders"].client, 0)
    assert r.status_code == 201
    first = r.json()["id"]

    async def has(order_id):
        r = await svc["kpi"].client.get(f"/v1/facts/service-orders/{order_id}",
                                        headers=bearer("platform_operator", "t"))
        return r.status_code == 200

    await eventually(lambda: has(first))

    broker.stop()
    ids = []
    for n in range(1, 21):
        r = await submit_application(svc["orders"].client, n)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    pending = (await svc["orders"].client.get("/admin/outbox", headers=operator_headers())).json()["pending"]
    assert pending == 20
    ready = await svc["orders"].client.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"] == {"database": True, "broker": False, "schema": True}

    broker.start()

    async def all_delivered():
        async with svc["kpi"].runtime.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(OrderFact).where(OrderFact.order_id.in_(ids)))
        return n == 20

    await eventually(all_delivered, timeout=60)
    assert (await svc["orders"].client.get("/admin/outbox", headers=operator_headers())).json()["pending"] == 0
    assert (await svc["orders"].client.get("/ready")).status_code == 200


async def test_ready_answers_503_within_a_second_while_the_broker_is_frozen(start_service, database_url, broker):
    """A frozen broker (SIGSTOP: connections accepted, nothing answered) must not hang /ready."""
    import os
    import signal
    import time

    svc = await start_services(start_service, database_url, broker, ["consultation-routing", "sla-timer", "notifier"])
    for s in svc.values():
        assert (await s.client.get("/ready")).status_code == 200
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        for name, s in svc.items():
            started = time.monotonic()
            r = await s.client.get("/ready")
            took = time.monotonic() - started
            assert took < 1.0 and r.status_code == 503, (name, took, r.text)
            assert r.json()["checks"] == {"database": True, "broker": False, "schema": True}, name
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
