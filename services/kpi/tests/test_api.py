"""The KPI API on a real broker: paid-transactions ingest (validation,
idempotency), composite index and its CSV export (operators see all, a merchant
only itself and its category's aggregates), Prometheus platform figures."""
from __future__ import annotations

import pytest
from kpi_feed import _auth
from kpi_gen import H, bj

from kpi.entrypoints import metrics
from kpi.parts import kpi_parts
from kpi.app import create_app
from kpi.settings import KpiSettings
from shared.clock import ManualClock
from shared.testing import eventually

pytestmark = pytest.mark.broker


def _at(kpi, when):
    """Run the service on a manual clock (an injected clock: 'today' of the API, token times)."""
    kpi.runtime.clock = ManualClock(when)


async def test_paid_transactions_ingest_validates_and_is_idempotent(start_service, database_url):
    kpi = await start_service(create_app, KpiSettings, database_url=await database_url("kpi"),
                              paid_transactions_max_items=4)
    _at(kpi, bj(2026, 11, 30, 12))
    op = _auth(kpi, "platform_operator")
    url = "/v1/paid-transactions"
    items = [{"merchant_id": "m-a", "date": "2026-11-29", "count": 120},
             {"merchant_id": "m-a", "date": "2026-11-30", "count": 80},
             {"merchant_id": "m-b", "date": "2026-11-29", "count": 0}]
    r = await kpi.client.post(url, json={"items": items}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    r = await kpi.client.post(url, json={"items": items}, headers=op)  # the same batch again: nothing changes
    assert r.json() == {"received": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    # a correction replaces the day's count; a repeated identical item in one batch is fine
    fix = [{"merchant_id": "m-a", "date": "2026-11-29", "count": 125}] * 2
    r = await kpi.client.post(url, json={"items": fix}, headers=op)
    assert r.json() == {"received": 2, "inserted": 0, "updated": 1, "unchanged": 0}
    r = await kpi.client.get(url, params={"from": "2026-11-01", "to": "2026-11-30"}, headers=op)
    assert r.json() == {"items": [{"merchant_id": "m-a", "date": "2026-11-29", "count": 125},
                                  {"merchant_id": "m-a", "date": "2026-11-30", "count": 80},
                                  {"merchant_id": "m-b", "date": "2026-11-29", "count": 0}], "total": 205}
    # a merchant reads only its own counts and cannot post
    mb = _auth(kpi, "merchant_main", "m-b")
    r = await kpi.client.get(url, params={"from": "2026-11-01", "to": "2026-11-30"}, headers=mb)
    assert r.json()["items"] == [{"merchant_id": "m-b", "date": "2026-11-29", "count": 0}]
    r = await kpi.client.get(url, params={"from": "2026-11-01", "to": "2026-11-30", "merchant_id": "m-a"},
                             headers=mb)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await kpi.client.post(url, json={"items": items}, headers=mb)).status_code == 403
    assert (await kpi.client.post(url, json={"items": items})).status_code == 401

    async def code(body, status=422):
        r = await kpi.client.post(url, json=body, headers=op)
        assert r.status_code == status, r.text
        return r.json()["error"]["code"]

    one = {"merchant_id": "m-a", "date": "2026-11-29", "count": 1}
    assert await code({"items": [{**one, "count": -1}]}) == "validation_error"
    assert await code({"items": [{**one, "count": "7"}]}) == "validation_error"  # a number, not a string
    assert await code({"items": [{**one, "count": 1.5}]}) == "validation_error"
    assert await code({"items": [{**one, "date": "2026-02-30"}]}) == "validation_error"
    assert await code({"items": [{**one, "merchant_id": ""}]}) == "validation_error"
    assert await code({"items": [{**one, "amount": 3}]}) == "validation_error"  # unknown field
    assert await code({"items": []}) == "validation_error"
    assert await code({}) == "validation_error"
    assert await code({"items": [{**one, "date": "2026-12-01"}]}) == "future_date"  # after today (Beijing)
    assert await code({"items": [one, {**one, "count": 2}]}) == "conflicting_items"
    assert await code({"items": [one] * 5}, 413) == "too_many_items"
    r = await kpi.client.post(url, content=b"{not json", headers={**op, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await kpi.client.get(url, params={"from": "2026-11-30", "to": "2026-11-01"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_window"
    # nothing of the rejected batches was stored
    r = await kpi.client.get(url, params={"from": "2026-11-01", "to": "2026-12-31"}, headers=op)
    assert r.json()["total"] == 205


async def test_composite_index_api_merchant_view_and_csv(start_service, database_url, feed):
    kpi = await start_service(create_app, KpiSettings, database_url=await database_url("kpi"),
                              platinum_min_peers=2)
    _at(kpi, bj(2026, 11, 30, 12))
    # A: a return shipped back, received, refunded by itself 36 h after the application
    c = bj(2026, 11, 10)
    a1 = await feed.created("A", c)
    await feed.act(a1, "A", c, "audit.approve_return", c + 2 * H, 2, to_state="awaiting_return_shipment")
    await feed.act(a1, "A", c, "fill_shipment", c + 10 * H, 3, to_state="awaiting_receipt", actor_role="customer")
    await feed.act(a1, "A", c, "register_receipt", c + 24 * H, 4, to_state="pending_process")
    await feed.act(a1, "A", c, "process.refund", c + 36 * H, 5, to_state="provisionally_completed",
                   amount="199.00", completed_by="merchant")
    # A: the customer asked the platform to intervene; the arbitrator refunded 24 h after the application
    c2 = bj(2026, 11, 12)
    a2 = await feed.created("A", c2)
    await feed.act(a2, "A", c2, "arbitration.request", c2 + 6 * H, 2, to_state="arbitration", actor_role="customer")
    await feed.act(a2, "A", c2, "arbitration.decide", c2 + 24 * H, 3, to_state="completed", actor_role="arbitrator",
                   outcome="refund", amount="100.00")
    # B: rejected at audit 2 h after the application (closed by itself)
    b1 = await feed.created("B", c2)
    await feed.act(b1, "B", c2, "audit.reject", c2 + 2 * H, 2, to_state="rejected")
    op = _auth(kpi, "platform_operator")
    r = await kpi.client.post("/v1/paid-transactions", headers=op, json={"items": [
        {"merchant_id": "A", "date": "2026-11-10", "count": 150}, {"merchant_id": "A", "date": "2026-11-20", "count": 50},
        {"merchant_id": "B", "date": "2026-11-12", "count": 100},
        {"merchant_id": "A", "date": "2026-10-01", "count": 999}]})  # outside the 28 days
    assert r.status_code == 200

    async def indexed():
        r = await kpi.client.get("/v1/composite-index", headers=op)
        assert r.status_code == 200, r.text
        body = r.json()
        return sum(m["completed"] for m in body["merchants"]) == 3 and body

    body = await eventually(indexed)
    assert body["date"] == "2026-11-30" and body["window"] == {"from": "2026-11-03", "to": "2026-11-30", "days": 28}
    m = {x["merchant_id"]: x for x in body["merchants"]}
    # A: 1 dispute / 200 paid; (36 + 24) / 2 = 30 h; 1 of 2 by itself.  B: 0 / 100; 2 h; 1 of 1.
    assert (m["A"]["dispute_rate"], m["A"]["completion_hours"], m["A"]["self_completion_rate"]) == (
        "0.005000", "30.00", "0.5000")
    assert (m["B"]["dispute_rate"], m["B"]["completion_hours"], m["B"]["self_completion_rate"]) == (
        "0.000000", "2.00", "1.0000")
    assert m["A"]["warnings"] == ["dispute_rate", "completion_hours", "self_completion_rate", "index"]
    assert (m["A"]["platinum"], m["B"]["platinum"], m["B"]["warnings"]) == (False, True, [])
    assert {p: v["completed"] for p, v in m["A"]["by_path"].items()} == {
        "refund_before_shipment": 1, "refund_without_return": 0, "return_and_refund": 1, "exchange": 0}
    (phones,) = body["categories"]
    # pooled: 1 / 300; (36 + 24 + 2) / 3 = 20.67 h; 2 / 3
    assert phones["industry_average"] == {"dispute_rate": "0.003333", "completion_hours": "20.67",
                                          "self_completion_rate": "0.6667"}
    assert phones["platinum_benchmark"] == {"dispute_rate": "0.000000", "completion_hours": "2.00",
                                            "self_completion_rate": "1.0000"}
    assert "best-decile" in body["method"]["platinum_benchmark"]

    # a merchant sees itself and its category's aggregates, never a peer
    ma = _auth(kpi, "merchant_main", "A")
    r = await kpi.client.get(f"/v1/facts/service-orders/{a1}", headers=ma)
    assert r.status_code == 200 and r.json()["refund"] == "199.00" and r.json()["refund_by"] == "merchant"
    r = await kpi.client.get(f"/v1/facts/service-orders/{b1}", headers=ma)
    assert r.status_code == 404 and r.json()["error"]["code"] == "fact_not_found"
    assert (await kpi.client.get(f"/v1/facts/service-orders/{b1}")).status_code == 401
    mine = (await kpi.client.get("/v1/composite-index", headers=ma)).json()
    assert [x["merchant_id"] for x in mine["merchants"]] == ["A"] and mine["categories"] == body["categories"]
    r = await kpi.client.get("/v1/composite-index", params={"merchant_id": "B"}, headers=ma)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await kpi.client.get("/v1/composite-index", params={"date": "2026-11-02"}, headers=ma)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_index"  # nothing in that window
    r = await kpi.client.get("/v1/composite-index", params={"date": "2026-11-31"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"

    r = await kpi.client.get("/v1/composite-index.csv", headers=ma)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.splitlines()
    assert rows[0] == ("merchant_id,category,paid_transactions,disputes,completed,dispute_rate,completion_hours,"
                       "self_completion_rate,lead_dispute_rate_pct,lead_completion_hours_pct,"
                       "lead_self_completion_rate_pct,index_score,lead_index_pct,platinum,warnings")
    assert rows[1:] == ["A,phones,200,1,2,0.005000,30.00,0.5000,0.00,0.00,0.00,0.00,0.00,no,"
                        "dispute_rate completion_hours self_completion_rate index"]

    # the return rate of the month uses the ingested paid transactions: 3 returns / 300 paid (October's 999 do not count)
    st = (await kpi.client.get("/v1/statistics/2026-11", headers=op)).json()
    assert (st["paid_transactions"], st["returns"], st["return_rate"]) == (300, 3, "0.0100")


async def test_prometheus_platform_figures(kpi, feed):
    _at(kpi, bj(2026, 11, 20, 12))  # current week: 2026-11-16; current month: 2026-11
    c = bj(2026, 11, 17, 8)
    on_time = await feed.created("m-a", c)
    await feed.act(on_time, "m-a", c, "audit.approve_return", c + 12 * H, 2)
    late = await feed.created("m-a", c, on_behalf=True, mode="platform")
    await feed.act(late, "m-a", c, "audit.approve_return", c + 13 * H, 2)
    await feed.act(late, "m-a", c, "register_receipt", c + 20 * H, 3)
    await feed.penalty(late, c + 68 * H)
    await feed.act(on_time, "m-a", c, "rate", c + 30 * H, 3, stars=5, recommend=10)
    prev = bj(2026, 11, 12, 8)  # previous week
    old = await feed.created("m-b", prev)
    await feed.act(old, "m-b", prev, "audit.reject", prev + 20 * H, 2, to_state="rejected")
    op = _auth(kpi, "platform_operator")

    async def applied():
        r = await kpi.client.get("/v1/penalties", headers=op)
        s = await kpi.client.get("/v1/scorecards/weekly", params={"week": "2026-11-09"}, headers=op)
        return r.json()["lines"] and s.json()["scorecards"]

    await eventually(applied)
    await metrics.refresh(kpi.runtime, kpi_parts(kpi.runtime).figures)
    assert (await kpi.client.get("/metrics")).status_code == 401  # operators only
    r = await kpi.client.get("/metrics", headers=_auth(kpi, "merchant_main", "m-a"))
    assert r.status_code == 403
    text = (await kpi.client.get("/metrics", headers=op)).text
    expected = [
        'kpi_indicator_ratio{indicator="F2",week="current"} 0.5',  # one of two audits within 12 h
        'kpi_indicator_ratio{indicator="F2",week="previous"} 0.0',
        'kpi_indicator_ratio{indicator="F1",week="current"} 1.0',
        'kpi_indicator_ratio{indicator="F3",week="current"} 0.0',  # received, not processed within 12 h
        'kpi_merchants_ranked{week="current"} 1.0',
        'kpi_merchants_ranked{week="previous"} 1.0',
        'kpi_penalties_cny{kind="unprocessed_48h",week="current"} 2000.0',
        'kpi_penalties_cny{kind="late_audit",week="current"} 0.0',  # 1 late audit: under 10, not charged
        'kpi_billing_cny{item="service_order",month="current"} 8.26',
        'kpi_service_orders{month="current"} 3.0',
        'kpi_nps{month="current"} 100.0',
        'kpi_flags_published 0.0',
    ]
    lines = set(text.splitlines())
    assert [e for e in expected if e not in lines] == []
    # an empty denominator is left out, never reported as 0 (no F4 exchange, no paid transactions)
    samples = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert not [x for x in samples if x.startswith(('kpi_indicator_ratio{indicator="F4"', "kpi_return_rate",
                                                    "kpi_refund_dispute_rate"))]
    assert "kpi_event_lag_seconds_count" in text and "kpi_projection_batch_seconds_count" in text
