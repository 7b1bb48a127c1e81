"""The virtual clock moved forward on one service is seen by every service."""
from shared.testing import eventually
from tests.helpers import SERVICES, operator_headers, start_services

OP = operator_headers()


async def test_clock_advance_reaches_all_five_services(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, list(SERVICES), clock="virtual")
    before = {n: (await s.client.get("/admin/clock", headers=OP)).json() for n, s in svc.items()}
    assert all(b["virtual"] for b in before.values())

    r = await svc["sla-timer"].client.post("/admin/clock/advance", json={"seconds": 15 * 86400}, headers=OP)
    assert r.status_code == 200, r.text
    target = r.json()["offset_seconds"]
    assert target >= 15 * 86400

    async def everyone_moved():
        offsets = {n: (await s.client.get("/admin/clock", headers=OP)).json()["offset_seconds"] for n, s in svc.items()}
        return all(abs(o - target) < 1e-6 for o in offsets.values()) and offsets

    await eventually(everyone_moved)
    # A second move accumulates; time never goes back.
    r = await svc["orders"].client.post("/admin/clock/advance", json={"seconds": 3600}, headers=OP)
    target2 = r.json()["offset_seconds"]
    assert target2 == target + 3600
    target = target2
    await eventually(everyone_moved)


async def test_advance_is_refused_on_the_system_clock_and_validated(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders"])
    r = await svc["orders"].client.post("/admin/clock/advance", json={"seconds": 60}, headers=OP)
    assert r.status_code == 409 and r.json()["error"]["code"] == "clock_not_virtual"
    r = await svc["orders"].client.post("/admin/clock/advance", json={"seconds": -5}, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_advances_made_at_once_on_two_services_both_count(start_service, database_url, broker):
    """+1 s on orders and +1 s on sla-timer a few ms apart: every service ends at +2 s
    (announced advances add up in the topic's order; none is lost to a race)."""
    import asyncio

    svc = await start_services(start_service, database_url, broker, ["orders", "sla-timer", "kpi"], clock="virtual")
    a, b = await asyncio.gather(
        svc["orders"].client.post("/admin/clock/advance", json={"seconds": 1}, headers=OP),
        svc["sla-timer"].client.post("/admin/clock/advance", json={"seconds": 1}, headers=OP))
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)

    async def all_at_two():
        offsets = {n: (await s.client.get("/admin/clock", headers=OP)).json()["offset_seconds"] for n, s in svc.items()}
        return all(abs(o - 2.0) < 1e-6 for o in offsets.values()) and offsets

    await eventually(all_at_two)


async def test_the_offset_survives_a_restart_of_the_service_and_of_the_broker(tmp_path, database_url):
    """A service keeps its offset in CLOCK_STATE_FILE; after the in-memory broker restarts
    empty, services re-announce it, so a service started afterwards finds it too."""
    from asgi_lifespan import LifespanManager
    import httpx

    from shared.broker import EmbeddedBroker
    from tests.helpers import SERVICES

    create, settings_cls = SERVICES["orders"]
    url = await database_url("orders")

    async def run(bootstrap, body):
        app = create(settings_cls(environment="test", log_json=False, clock="virtual", kafka_bootstrap=bootstrap,
                                  database_url=url, clock_state_file=str(tmp_path / "clock-orders.json"),
                                  kafka_session_timeout_ms=2000))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                return await body(c)

    first = EmbeddedBroker()
    first.start()
    try:
        async def advance(c):
            r = await c.post("/admin/clock/advance", json={"seconds": 3 * 86400}, headers=OP)
            assert r.status_code == 200, r.text
        await run(first.bootstrap, advance)
    finally:
        first.stop()

    second = EmbeddedBroker()  # a restarted, empty broker
    second.start()
    try:
        async def offset(c):
            return (await c.get("/admin/clock", headers=OP)).json()["offset_seconds"]

        async def restarted_orders(c):
            assert await offset(c) == 3 * 86400
            # a service with no state of its own, started meanwhile, learns it from the topic
            kpi_create, kpi_settings = SERVICES["kpi"]
            app = kpi_create(kpi_settings(environment="test", log_json=False, clock="virtual",
                                          kafka_bootstrap=second.bootstrap, database_url=await database_url("kpi"),
                                          kafka_session_timeout_ms=2000))
            async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as k:
                    async def learned():
                        return await offset(k) == 3 * 86400
                    await eventually(learned)

        await run(second.bootstrap, restarted_orders)
    finally:
        second.stop()
