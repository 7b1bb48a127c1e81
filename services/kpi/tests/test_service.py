"""The KPI service driven through the real broker: order and SLA events in,
figures out of the API (operators see all, a merchant only itself)."""
from __future__ import annotations

import uuid

import pytest
from kpi_feed import _auth, _snap
from kpi_gen import H, bj

import shared.contracts  # noqa: F401
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import ORDER_EVENTS

pytestmark = pytest.mark.broker


async def test_events_become_scorecards_rankings_and_penalties(kpi, feed):
    c = bj(2026, 11, 17, 8)
    a1 = await feed.created("m-a", c)
    await feed.act(a1, "m-a", c, "claim", c + H, 2)
    dup = await feed.act(a1, "m-a", c, "audit.approve_return", c + 12 * H, 3)  # exactly 12 h: on time
    await feed.send(ORDER_EVENTS, dup, a1)  # a duplicate delivery changes nothing
    await feed.act(a1, "m-a", c, "register_receipt", c + 20 * H, 4)
    await feed.act(a1, "m-a", c, "process.refund", c + 30 * H, 5, amount="199.00")  # 10 h after receipt
    await feed.act(a1, "m-a", c, "rate", c + 40 * H, 6, stars=5, recommend=9)
    b1 = await feed.created("m-b", c)
    await feed.act(b1, "m-b", c, "audit.approve_return", c + 13 * H, 2)  # late
    await feed.act(b1, "m-b", c, "register_receipt", c + 20 * H, 3)
    await feed.penalty(b1, c + 68 * H)

    op = _auth(kpi, "platform_operator")

    async def ranked():
        r = await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-16"}, headers=op)
        assert r.status_code == 200, r.text
        body = r.json()
        return [(e["merchant_id"], e["score"], e["rank"]) for e in body["ranking"]] == [
            ("m-a", "1.0000", 1), ("m-b", "0.0000", 2)]

    await eventually(ranked)

    async def penalised():
        r = await kpi.client.get("/v1/penalties", headers=op)
        lines = r.json()["lines"]
        return [(x["merchant_id"], x["kind"], x["amount"], x["order_ids"]) for x in lines] == [
            ("m-b", "unprocessed_48h", "2000.00", [b1])]

    await eventually(penalised)

    r = await kpi.client.get("/v1/scorecards/weekly", params={"week": "2026-11-16"}, headers=op)
    cards = {c["merchant_id"]: c for c in r.json()["scorecards"]}
    assert cards["m-a"]["indicators"]["F2"]["numerator"] == 1 and cards["m-a"]["indicators"]["F2"]["denominator"] == 1
    assert cards["m-a"]["indicators"]["F4"]["applicable"] is False
    f3 = cards["m-b"]["indicators"]["F3"]
    assert (f3["numerator"], f3["denominator"], f3["value"]) == (0, 1, "0.0000")  # received, never processed

    r = await kpi.client.get("/v1/scorecards/weekly.csv", params={"week": "2026-11-16"}, headers=op)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.splitlines()
    assert rows[0].startswith("week,merchant_id,rank,score,F1_numerator,F1_denominator,F1_value,F2_numerator")
    assert rows[1] == "2026-11-16,m-a,1,1.0000,1,1,1.0000,1,1,1.0000,1,1,1.0000,0,0,"
    assert rows[2] == "2026-11-16,m-b,2,0.0000,0,0,,0,1,0.0000,0,1,0.0000,0,0,"

    async def stats():
        r = await kpi.client.get("/v1/statistics/2026-11", headers=op)
        return r.json()["nps_answers"] == 1 and r.json()

    st = await eventually(stats)
    assert st["nps"] == "100.00" and st["service_orders"] == 2 and st["complaint_rate"] == "0.0000"
    assert (await kpi.client.get("/v1/statistics/2026-13", headers=op)).json()["error"]["code"] == "validation_error"

    r = await kpi.client.get("/v1/staffing/m-a", params={"from": "2026-11-17", "to": "2026-11-18"}, headers=op)
    assert (r.json()["daily_audits"], r.json()["auditors"], r.json()["monthly_refunds"]) == ("0.50", 1, "15.00")
    r = await kpi.client.get("/v1/staffing/m-a", params={"from": "2026-11-18", "to": "2026-11-17"}, headers=op)
    assert r.json()["error"]["code"] == "invalid_window"

    # A merchant sees only itself and its own rank.
    mb = _auth(kpi, "merchant_main", "m-b")
    r = await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-16"}, headers=mb)
    assert r.json()["ranking"] == [{"merchant_id": "m-b", "score": "0.0000", "rank": 2, "bottom10": True}]
    r = await kpi.client.get("/v1/scorecards/weekly", params={"week": "2026-11-16", "merchant_id": "m-a"},
                             headers=mb)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await kpi.client.get("/v1/penalties", headers=_auth(kpi, "merchant_main", "m-a"))
    assert r.json()["lines"] == []


async def test_bad_input_and_missing_token(kpi):
    r = await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-16"})
    assert r.status_code == 401
    op = _auth(kpi, "platform_operator")
    r = await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-17"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_week"
    r = await kpi.client.get("/v1/rankings/weekly", params={"week": "nope"}, headers=op)
    assert r.status_code == 422
    r = await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-16"}, headers=op)
    assert r.json() == {"week": "2026-11-16", "ranked": 0, "ranking": []}


async def _routing(feed, **data):
    from shared.topics import ROUTING_EVENTS
    type_ = data.pop("type_")
    key = data.get("manufacturer_id") or "platform"
    await feed.send(ROUTING_EVENTS, make_envelope(type_=type_, key=key, producer="consultation-routing",
                                                  occurred_at=data.get("decided_at") or data.get("occurred_at"),
                                                  data=data), key)


async def test_two_low_periods_disqualify_then_operator_requalifies(kpi, feed, broker):
    import json

    from aiokafka import AIOKafkaConsumer

    from shared.topics import KPI_EVENTS

    for day in (10, 17):  # weeks of 2026-11-09 and 2026-11-16
        t = bj(2026, 11, day, 10)
        await _routing(feed, type_="routing.decided", decision_id=f"d-ok-{day}", decided_at=t, channel="im",
                       entry_point="product_page", phase="pre_sale", target="manufacturer", reason="enrolled",
                       manufacturer_id="mf")
        await _routing(feed, type_="routing.decided", decision_id=f"d-no-{day}", decided_at=t, channel="im",
                       entry_point="product_page", phase="pre_sale", target="platform", reason="no_agents",
                       manufacturer_id="mf")
        await _routing(feed, type_="routing.billable_consultation", consultation_id=f"d-no-{day}",
                       manufacturer_id="mf", package=1, cause="no_agents", channel="im", occurred_at=t)
    oid = str(uuid.uuid4())
    c = bj(2026, 11, 17, 9)
    data = {**_snap("mf", c), "order_id": oid, "number": "SO1", "version": 1, "state": "pending_claim",
            "delivered_at": c, "on_behalf": True, "mode": "platform"}
    await feed.send(ORDER_EVENTS, make_envelope(type_="service_order.created", key=oid, producer="orders",
                                                occurred_at=c, data=data), oid)
    op = _auth(kpi, "platform_operator")

    async def scored():
        r = await kpi.client.get("/v1/service-express/scores", params={"week": "2026-11-16"}, headers=op)
        b = await kpi.client.get("/v1/billing", params={"month": "2026-11"}, headers=op)
        # answer 1/2, availability 1/2, transfer-back 1 → 100*(0.2+0.15+0.3) = 65.00
        return (r.json()["scores"] and r.json()["scores"][0]["consultation"] == "65.00"
                and len(b.json()["lines"]) == 2 and b.json())

    bill = await eventually(scored)
    assert [(x["item"], x["quantity"], x["amount"]) for x in bill["lines"]] == [
        ("consultation_package_1", 2, "6.00"), ("service_order", 1, "8.26")]

    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=_auth(kpi, "merchant_main", "mf"))
    assert r.status_code == 403
    r = await kpi.client.post("/v1/periods/2026-11-09/close", headers=op)
    assert r.json()["disqualified"] == []  # one low period only
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["disqualified"] == ["mf"]
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["disqualified"] == []  # idempotent
    r = await kpi.client.post("/v1/service-express/mf/requalify", json={"note": "new agents hired"}, headers=op)
    assert r.status_code == 200 and r.json()["disqualified"] is False
    r = await kpi.client.post("/v1/service-express/mf/requalify", json={"note": "again"}, headers=op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_disqualified"
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["disqualified"] == []  # the run that caused it does not count twice

    consumer = AIOKafkaConsumer(KPI_EVENTS, bootstrap_servers=broker.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict] = []
    try:
        async def published():
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend(json.loads(m.value) for m in msgs)
            return [e["type"] for e in seen] == ["kpi.manufacturer_disqualified", "kpi.manufacturer_requalified"]

        await eventually(published)
    finally:
        await consumer.stop()
    d = seen[0]["data"]
    assert d["manufacturer_id"] == "mf" and d["periods"] == ["2026-11-09", "2026-11-16"]
    assert d["scores"]["2026-11-16"] == {"after_sales": None, "consultation": "65.00"}


async def test_closing_a_week_flags_three_weeks_in_the_bottom_10(kpi, feed, broker):
    import json

    from aiokafka import AIOKafkaConsumer

    from shared.topics import KPI_EVENTS

    for day in (3, 10, 17):  # weeks of 11-02, 11-09, 11-16: a lone merchant is always in the bottom 10
        c = bj(2026, 11, day, 9)
        oid = await feed.created("m-low", c)
        await feed.act(oid, "m-low", c, "audit.reject", c + 20 * H, 2)
    op = _auth(kpi, "platform_operator")

    async def three_weeks():
        r = await kpi.client.get("/v1/flags", params={"week": "2026-11-16"}, headers=op)
        return r.json()["flags"]

    flags = await eventually(three_weeks)
    assert flags == [{"merchant_id": "m-low", "week": "2026-11-16",
                      "weeks": ["2026-11-02", "2026-11-09", "2026-11-16"]}]
    assert (await kpi.client.get("/v1/flags", params={"week": "2026-11-09"}, headers=op)).json()["flags"] == []
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["flagged"] == ["m-low"]
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["flagged"] == []  # published once

    consumer = AIOKafkaConsumer(KPI_EVENTS, bootstrap_servers=broker.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict] = []
    try:
        async def published():
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend(json.loads(m.value) for m in msgs)
            return seen

        await eventually(published)
    finally:
        await consumer.stop()
    assert [(e["type"], e["key"], e["data"]["ranks"]) for e in seen] == [("kpi.merchant_flagged", "m-low", [1, 1, 1])]
