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
