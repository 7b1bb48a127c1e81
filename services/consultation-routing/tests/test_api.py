"""The routing service through its HTTP API, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from consultation_routing.models import ManufacturerRow, SkuRow, TransferRow
from consultation_routing.adapters.state import RoutingState

CSV = "sku,manufacturer_id,category\nsku-1,m-1,phones\nsku-2,m-1,appliances\nsku-3,m-9,phones\n"


async def ready(api, **enroll):
    await api.enroll(**enroll)
    await api.skus(CSV)
    await api.queue()


async def test_operator_endpoints_need_a_platform_operator_token(api):
    body = {"name": "M", "categories": ["phones"], "im_queue_id": "q", "phone_extension": "1"}
    r = await api.client.put("/v1/manufacturers/m-1/enrollment", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await api.client.put("/v1/manufacturers/m-1/enrollment", json=body, headers=api.token("storefront"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for method, path in [("post", "/v1/catalogue/skus"), ("put", "/v1/queues/m-1/state"),
                         ("post", "/v1/manufacturers/m-1/disqualification"), ("get", "/v1/manufacturers/m-1/enrollment")]:
        r = await api.client.request(method, path, json={}, headers=api.token("merchant_main", "m-1"))
        assert r.status_code == 403, (path, r.text)


async def test_enrollment_defaults_and_read_back(api):
    e = await api.enroll(categories=["Phones", "phones", "appliances"])
    assert e["categories"] == ["appliances", "phones"]
    assert e["phone_hours"] == {"start": "09:00", "end": "18:00"} and e["im_hours"] == {"start": "09:00", "end": "21:00"}
    assert e["serve_non_working_days"] is False and e["disqualified"] is False
    r = await api.client.get("/v1/manufacturers/m-1/enrollment", headers=api.op)
    assert r.json()["im_queue_id"] == "q-m-1"
    r = await api.client.get("/v1/manufacturers/m-404/enrollment", headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "manufacturer_not_found"


async def test_bad_enrollment_is_422(api):
    r = await api.client.put("/v1/manufacturers/m-1/enrollment", headers=api.op, json={
        "name": "M", "categories": ["phones"], "im_queue_id": "q", "phone_extension": "1",
        "phone_hours": {"start": "18:00", "end": "09:00"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_route_enrolled_then_fallbacks_through_the_api(api):
    await ready(api)
    a = await api.route(sku="sku-1")
    assert (a["target"], a["reason"], a["queue_id"]) == ("manufacturer", "enrolled", "q-m-1")
    p = await api.route(sku="sku-1", channel="phone")
    assert (p["hotline"], p["extension"]) == ("400-606-5500", "8001") and "8001" in p["hover_text"]
    assert (await api.route(sku="sku-2"))["reason"] == "not_enrolled"
    assert (await api.route(sku="sku-3"))["reason"] == "not_enrolled"
    assert (await api.route(sku="nope"))["reason"] == "unknown_sku"
    # the server's clock decides; an operator may ask what-ifs at other times
    assert (await api.what_if("2026-03-03T21:00:00+08:00", sku="sku-1"))["reason"] == "out_of_hours"
    assert (await api.what_if("2026-10-01T10:00:00+08:00", sku="sku-1"))["reason"] == "out_of_hours"
    assert (await api.what_if("2026-02-28T10:00:00+08:00", sku="sku-1"))["reason"] == "enrolled"
    api.clock.set(datetime.fromisoformat("2026-03-03T21:00:00+08:00"))
    assert (await api.route(sku="sku-1"))["reason"] == "out_of_hours"


async def test_unknown_channel_entry_point_or_phase_is_422(api):
    sf = api.storefront
    r = await api.client.get("/v1/route", params={"channel": "fax", "entry_point": "product_page"}, headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "billboard"}, headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_entry_point"
    r = await api.client.get("/v1/route", params={"entry_point": "product_page"}, headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "shop_page", "phase": "later"},
                             headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_phase"
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "shop_page", "at": "2026-03-03T10:00"},
                             headers=api.op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert await api.events() == []


async def test_every_entry_point_is_accepted(api):
    await ready(api)
    for ep in ("product_page", "shop_page", "search_list", "home_page", "order_list", "order_recycle_bin",
               "after_sales_page"):
        for phase in ("pre_sale", "after_sale"):
            assert (await api.route(sku="sku-1", entry_point=ep, phase=phase))["reason"] == "enrolled"


async def test_queue_state_drives_capacity_and_expires(api):
    await api.enroll(capacity={"min_agents": 1, "max_queue_length": 5})
    await api.skus(CSV)
    assert (await api.route(sku="sku-1"))["reason"] == "no_agents"  # never reported
    await api.queue(agents=0)
    assert (await api.route(sku="sku-1"))["reason"] == "no_agents"
    await api.queue(agents=2, length=5)
    assert (await api.route(sku="sku-1"))["reason"] == "overflow"
    await api.queue(agents=2, length=4)
    assert (await api.route(sku="sku-1"))["reason"] == "enrolled"
    api.clock.advance(timedelta(seconds=api.rt.settings.queue_state_ttl_s + 1))
    assert (await api.route(sku="sku-1"))["reason"] == "no_agents"  # the queue went silent
    r = await api.client.put("/v1/queues/m-404/state", headers=api.op, json={"agents_online": 1, "queue_length": 0})
    assert r.status_code == 404
    r = await api.client.put("/v1/queues/m-1/state", headers=api.op, json={"agents_online": -1, "queue_length": 0})
    assert r.status_code == 422


async def test_bulk_load_keeps_good_rows_and_reports_bad_lines(api):
    await api.enroll()
    await api.queue()
    res = await api.skus("sku,manufacturer_id,category\nsku-1,m-1,phones\n,m-1,phones\nsku-2,m-1\nsku-3,m-1,phones\n")
    assert res["accepted"] == 2 and res["rejected"] == 2
    assert res["errors"] == [{"line": 3, "error": "sku is missing or empty"},
                             {"line": 4, "error": "category is missing or empty"}]
    async with api.rt.sessions() as s:
        assert sorted(await s.scalars(select(SkuRow.sku))) == ["sku-1", "sku-3"]
    assert (await api.route(sku="sku-3"))["reason"] == "enrolled"
    res = await api.skus('{"sku": "sku-4", "manufacturer_id": "m-1", "category": "phones"}\n{oops}\n',
                         "application/x-ndjson")
    assert res["accepted"] == 1 and res["errors"] == [{"line": 2, "error": "not valid JSON"}]
    # an upsert moves a SKU
    await api.skus("sku,manufacturer_id,category\nsku-3,m-1,apparel\n")
    assert (await api.route(sku="sku-3"))["reason"] == "not_enrolled"
    r = await api.client.post("/v1/catalogue/skus", content=b"x", headers={**api.op, "content-type": "text/plain"})
    assert r.status_code == 415


async def test_decisions_are_published_off_the_request_path(api):
    await ready(api)
    a = await api.route(sku="sku-1", customer_id="c-1", sales_order_id="so-1")
    ob = api.rt.tables.outbox
    async with api.rt.sessions() as s:
        assert (await s.execute(select(ob))).all() == []  # nothing written by the request itself
    assert api.routing.publisher.buffered() == 1
    ev = await api.events("routing.decided")
    assert len(ev) == 1 and ev[0]["key"] == "m-1"
    d = ev[0]["data"]
    assert (d["decision_id"], d["target"], d["reason"], d["customer_id"], d["sales_order_id"]) == (
        a["decision_id"], "manufacturer", "enrolled", "c-1", "so-1")
    assert await api.events("routing.billable_consultation") == []  # the manufacturer serves it


async def test_platform_serving_an_enrolled_manufacturer_is_billable_with_its_package(api):
    await ready(api, categories=["phones", "gadgets"], package=2)
    await api.skus("sku,manufacturer_id,category\nsku-g,m-1,gadgets\n")
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))
    a = await api.route(sku="sku-1")
    g = await api.route(sku="sku-g")
    await api.route(sku="sku-2")  # not enrolled for appliances: not billable
    await api.route(sku="nope")
    bills = [e["data"] for e in await api.events("routing.billable_consultation")]
    assert [(b["consultation_id"], b["package"], b["cause"]) for b in bills] == [
        (a["decision_id"], 1, "out_of_hours"),  # phones: package 1 (docs/kpis.md)
        (g["decision_id"], 2, "out_of_hours"),  # unlisted category: the manufacturer's package
    ]


async def test_disqualification_routes_to_platform_and_bills_until_reinstated(api):
    await ready(api)
    r = await api.client.post("/v1/manufacturers/m-1/disqualification", headers=api.op, json={"reason": "KPI"})
    assert r.status_code == 200 and r.json()["disqualified"] is True and r.json()["disqualified_reason"] == "KPI"
    a = await api.route(sku="sku-1")
    assert (a["target"], a["reason"]) == ("platform", "disqualified")
    bills = await api.events("routing.billable_consultation")
    assert bills[-1]["data"]["cause"] == "disqualified" and bills[-1]["data"]["manufacturer_id"] == "m-1"
    r = await api.client.delete("/v1/manufacturers/m-1/disqualification", headers=api.op)
    assert r.json()["disqualified"] is False
    assert (await api.route(sku="sku-1"))["reason"] == "enrolled"
    r = await api.client.post("/v1/manufacturers/m-404/disqualification", headers=api.op, json={"reason": "x"})
    assert r.status_code == 404


async def test_transfer_back_is_recorded_published_and_billable(api):
    await ready(api)
    a = await api.route(sku="sku-1", channel="im")
    body = {"decision_id": a["decision_id"], "manufacturer_id": "m-1", "agent_id": "agent-7",
            "reason": "question about the platform's coupon", "channel": "im", "sku": "sku-1"}
    r = await api.client.post("/v1/transfers", json=body, headers=api.token("merchant_staff", "m-1"))
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["target"], t["queue_id"], t["agent_id"]) == ("platform", "platform", "agent-7")
    async with api.rt.sessions() as s:
        row = (await s.scalars(select(TransferRow))).one()
    assert (row.decision_id, row.reason) == (a["decision_id"], "question about the platform's coupon")
    tr = (await api.events("routing.transferred"))[0]["data"]
    assert (tr["decision_id"], tr["agent_id"], tr["manufacturer_id"]) == (a["decision_id"], "agent-7", "m-1")
    bill = (await api.events("routing.billable_consultation"))[0]["data"]
    assert (bill["cause"], bill["package"], bill["consultation_id"]) == ("transfer", 1, a["decision_id"])
    r = await api.client.post("/v1/transfers", json=body, headers=api.op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_transferred"


async def test_transfer_rules(api):
    await ready(api)
    body = {"decision_id": "d-1", "manufacturer_id": "m-1", "agent_id": "a", "reason": "r", "channel": "phone"}
    r = await api.client.post("/v1/transfers", json=body, headers=api.token("merchant_staff", "m-2"))
    assert r.status_code == 403
    r = await api.client.post("/v1/transfers", json={**body, "manufacturer_id": "m-404"}, headers=api.op)
    assert r.status_code == 404
    r = await api.client.post("/v1/transfers", json={**body, "reason": ""}, headers=api.op)
    assert r.status_code == 422
    r = await api.client.post("/v1/transfers", json=body)
    assert r.status_code == 401


async def test_state_refresh_picks_up_other_replicas_writes_and_failures_degrade(api):
    await ready(api)
    # another replica's state, fed only from the database
    other = RoutingState(api.rt.sessions, now=api.clock.now)
    await other.refresh()
    assert other.skus["sku-1"].manufacturer_id == "m-1" and "m-1" in other.manufacturers and "m-1" in other.queues
    async with api.rt.uow() as s:
        s.add(SkuRow(sku="sku-new", manufacturer_id="m-1", category="phones", updated_at=api.clock.now()))
        m = await s.get(ManufacturerRow, "m-1")
        m.disqualified = True
        m.updated_at = api.clock.now()
    assert await other.refresh() >= 2
    assert "sku-new" in other.skus and other.manufacturers["m-1"].disqualified
    # the database goes away: refresh fails and the state ages towards `degraded`
    await api.rt.engine.dispose()
    api.routing.state.sessions = None
    try:
        await api.routing.state.refresh()
    except Exception:  # noqa: BLE001
        pass
    api.routing.state.loaded_mono -= api.rt.settings.max_state_age_s + 1
    a = await api.route(sku="sku-1")
    assert (a["target"], a["reason"]) == ("platform", "degraded")


async def test_every_published_event_matches_its_contract(api):
    import json

    from shared.events import decode, to_builtins

    await ready(api, categories=["phones"])
    for at in ("2026-03-03T10:00:00+08:00", "2026-03-03T23:00:00+08:00"):
        api.clock.set(datetime.fromisoformat(at))
        for sku in ("sku-1", "sku-2", "nope", None):
            await api.route(channel="phone", sku=sku, customer_id="c", service_order_id="so",
                            consultation_id=f"{at}/{sku}")
    events = await api.events()
    assert {e["type"] for e in events} == {"routing.decided", "routing.billable_consultation"}
    for e in events:
        env = decode(json.dumps(e))
        assert env.producer == "consultation-routing" and to_builtins(env.data) == {
            k: v for k, v in e["data"].items()}
