"""Who is scored and who is compared, through the service on a real broker:

- service express: every manufacturer serving its after-sales in a manufacturer mode is
  scored, disqualified and billed, whether or not a consultation ever reached it;
- self-completion: only outcomes the merchant itself carried out count (not orders the
  platform serves, not timeout closes), in the index, the category average and /metrics;
- peer groups: a merchant with paid transactions but no service orders is in its
  catalogue's category (catalogue events), and merchants tied at the best value are not
  warned for a 0 % lead.
"""
from __future__ import annotations

import pytest
from kpi_feed import _auth
from kpi_gen import H, bj

from kpi.entrypoints import metrics
from kpi.parts import kpi_parts
from shared.clock import ManualClock
from shared.testing import eventually

pytestmark = pytest.mark.broker

D = 24 * H


async def _audited(feed, merchant, created, audit_hours, mode):
    oid = await feed.created(merchant, created, mode=mode)
    await feed.act(oid, merchant, created, "audit.approve_return", created + audit_hours * H, 2, snap={"mode": mode})
    return oid


async def test_manufacturer_mode_vendor_is_scored_disqualified_and_billed_without_consultations(kpi, feed):
    # mf-x (full_manufacturer): week of 11-09 one audit of three on time (33.33), week of 11-16 one of two (50.00).
    # No consultation was ever routed to it.
    w1, w2 = bj(2026, 11, 9, 9), bj(2026, 11, 16, 9)
    for hours in (2, 13, 20):
        await _audited(feed, "mf-x", w1, hours, "full_manufacturer")
    for hours in (2, 13):
        await _audited(feed, "mf-x", w2, hours, "full_manufacturer")
    # mf-cc (customer_contact): an order in the first week nobody audited yet, one on-time audit in the second
    await feed.created("mf-cc", w1, mode="customer_contact")
    await _audited(feed, "mf-cc", w2, 1, "customer_contact")
    # a POP seller is no service-express member, however low its scorecard
    for created in (w1, w2):
        await _audited(feed, "pop-1", created, 30, "pop_self_service")
    op = _auth(kpi, "platform_operator")

    async def scores(week):
        r = await kpi.client.get("/v1/service-express/scores", params={"week": week}, headers=op)
        assert r.status_code == 200, r.text
        return {x["manufacturer_id"]: (x["after_sales"], x["consultation"]) for x in r.json()["scores"]}

    async def both_weeks():
        a, b = await scores("2026-11-09"), await scores("2026-11-16")
        return a.get("mf-x") == ("33.33", None) and b.get("mf-x") == ("50.00", None) and (a, b)

    first, second = await eventually(both_weeks)
    # every period with service orders is scored: mf-cc's first week has an order but no scorecard data yet
    assert first == {"mf-x": ("33.33", None), "mf-cc": (None, None)}
    assert second == {"mf-x": ("50.00", None), "mf-cc": ("100.00", None)}
    assert await scores("2026-11-02") == {}  # before its first manufacturer-mode order: not a member yet

    assert (await kpi.client.post("/v1/periods/2026-11-09/close", headers=op)).json()["disqualified"] == []
    r = await kpi.client.post("/v1/periods/2026-11-16/close", headers=op)
    assert r.json()["disqualified"] == ["mf-x"]
    r = await kpi.client.get("/v1/service-express/disqualifications", headers=op)
    assert [(x["manufacturer_id"], x["disqualified"], x["since_period"]) for x in r.json()["items"]] == [
        ("mf-x", True, "2026-11-16")]

    # disqualified, its new orders are served by the platform on its behalf (orders decides), and billed
    served = await feed.created("mf-x", bj(2026, 11, 24, 10), mode="platform", on_behalf=True)

    async def billed():
        r = await kpi.client.get("/v1/billing", params={"manufacturer_id": "mf-x", "month": "2026-11"}, headers=op)
        return r.json()["lines"]

    lines = await eventually(billed)
    assert [(x["item"], x["quantity"], x["amount"], x["refs"]) for x in lines] == [
        ("service_order", 1, "8.26", [served])]
    # a manufacturer sees its own scores only
    mine = await kpi.client.get("/v1/service-express/scores", params={"week": "2026-11-16"},
                                headers=_auth(kpi, "merchant_main", "mf-cc"))
    assert [x["manufacturer_id"] for x in mine.json()["scores"]] == ["mf-cc"]


async def test_only_outcomes_the_merchant_carried_out_count_as_self_completed(kpi, feed):
    kpi.runtime.clock = ManualClock(bj(2026, 11, 30, 12))  # window 2026-11-03 … 2026-11-30
    c = bj(2026, 11, 10, 9)
    # "plat" is served in platform mode: the platform refunds one case and exchanges another
    pm = {"mode": "platform"}
    r1 = await feed.created("plat", c, **pm)
    await feed.act(r1, "plat", c, "register_receipt", c + 10 * H, 2, snap=pm, actor_role="platform_operator")
    await feed.act(r1, "plat", c, "process.refund", c + 20 * H, 3, snap=pm, actor_role="platform_operator",
                   to_state="provisionally_completed", amount="199.00", completed_by="platform")
    x1 = await feed.created("plat", c, service_type="exchange", **pm)
    ex = {"snap": {**pm, "service_type": "exchange"}, "actor_role": "platform_operator"}
    await feed.act(x1, "plat", c, "register_receipt", c + 10 * H, 2, **ex)
    await feed.act(x1, "plat", c, "process.exchange", c + 20 * H, 3, to_state="provisionally_completed", **ex)
    await feed.act(x1, "plat", c, "exchange.shipped", c + 30 * H, 4, to_state="provisionally_completed", **ex)
    # "mfr-d" is a disqualified manufacturer the platform serves on its behalf: an exchange
    ob = {"mode": "platform", "on_behalf": True, "service_type": "exchange"}
    x2 = await feed.created("mfr-d", c, **ob)
    await feed.act(x2, "mfr-d", c, "process.exchange", c + 20 * H, 2, snap=ob, actor_role="platform_operator")
    await feed.act(x2, "mfr-d", c, "exchange.shipped", c + 40 * H, 3, snap=ob, actor_role="platform_operator")
    # "pop-t" serves itself: closed by the ship-back timeout (not its own), a refund of its own, and an
    # outcome it decided (return the original) that the auto-confirm timer completed (its own)
    old = bj(2026, 10, 25, 9)
    t1 = await feed.created("pop-t", old)
    await feed.act(t1, "pop-t", old, "audit.approve_return", old + 2 * H, 2)
    await feed.act(t1, "pop-t", old, "system.auto_close", old + 2 * H + 30 * D, 3, to_state="closed",
                   actor_role="system")
    t2 = await feed.created("pop-t", c)
    await feed.act(t2, "pop-t", c, "process.refund", c + 5 * H, 2, to_state="provisionally_completed",
                   amount="199.00", completed_by="merchant")
    t3 = await feed.created("pop-t", c)
    await feed.act(t3, "pop-t", c, "register_receipt", c + 2 * H, 2)
    await feed.act(t3, "pop-t", c, "process.return_original", c + 4 * H, 3, to_state="provisionally_completed")
    await feed.act(t3, "pop-t", c, "system.auto_confirm", c + 4 * H + 7 * D, 4, to_state="completed",
                   actor_role="system")
    op = _auth(kpi, "platform_operator")

    async def indexed():
        r = await kpi.client.get("/v1/composite-index", headers=op)
        assert r.status_code == 200, r.text
        body = r.json()
        return sum(m["completed"] for m in body["merchants"]) == 6 and body

    body = await eventually(indexed)
    m = {x["merchant_id"]: x for x in body["merchants"]}
    assert {k: (v["completed"], v["self_completion_rate"]) for k, v in m.items()} == {
        "plat": (2, "0.0000"), "mfr-d": (1, "0.0000"), "pop-t": (3, "0.6667")}
    (phones,) = body["categories"]
    assert phones["industry_average"]["self_completion_rate"] == "0.3333"  # 2 of 6
    assert phones["by_path"]["exchange"]["self_completion_rate"] == "0.0000"

    await metrics.refresh(kpi.runtime, kpi_parts(kpi.runtime).figures)
    text = (await kpi.client.get("/metrics", headers=op)).text
    (line,) = [x for x in text.splitlines() if x.startswith("kpi_refund_self_completion_rate ")]
    assert float(line.split()[1]) == pytest.approx(2 / 6)


async def test_peers_by_catalogue_category_and_no_warning_at_a_tied_best_value(kpi, feed):
    kpi.runtime.clock = ManualClock(bj(2026, 11, 30, 12))
    t0 = bj(2026, 11, 1, 9)
    # G sells phones (2 of its 3 SKUs) and has paid transactions but no service order. g-3 was re-filed
    # from apparel to phones: the newer event arrives first, the older one late (it must not win).
    await feed.catalogue("G", "g-1", "phones", t0)
    await feed.catalogue("G", "g-2", "apparel", t0)
    await feed.catalogue("G", "g-3", "phones", t0 + 2 * H)
    await feed.catalogue("G", "g-3", "apparel", t0 + H)
    # P1 and P2 (phones) are alike: a refund of their own in 10 h, and a dispute the arbitrator refunded in 10 h
    c = bj(2026, 11, 10, 9)
    for m in ("P1", "P2"):
        a = await feed.created(m, c)
        await feed.act(a, m, c, "process.refund", c + 10 * H, 2, to_state="provisionally_completed",
                       amount="199.00", completed_by="merchant")
        b = await feed.created(m, c)
        await feed.act(b, m, c, "arbitration.request", c + 2 * H, 2, to_state="arbitration", actor_role="customer")
        await feed.act(b, m, c, "arbitration.decide", c + 10 * H, 3, to_state="completed", actor_role="arbitrator",
                       outcome="refund", amount="199.00")
    # A1 and A2 (apparel) tie on everything
    for m in ("A1", "A2"):
        a = await feed.created(m, c, category="apparel")
        await feed.act(a, m, c, "audit.reject", c + 5 * H, 2, to_state="rejected", snap={"category": "apparel"})
    op = _auth(kpi, "platform_operator")
    r = await kpi.client.post("/v1/paid-transactions", headers=op, json={"items": [
        {"merchant_id": m, "date": "2026-11-20", "count": 100} for m in ("G", "P1", "P2", "A1", "A2")]})
    assert r.status_code == 200, r.text

    async def indexed():
        body = (await kpi.client.get("/v1/composite-index", headers=op)).json()
        m = {x["merchant_id"]: x for x in body["merchants"]}
        return sum(x["completed"] for x in m.values()) == 6 and m.get("G", {}).get("category") == "phones" and body

    body = await eventually(indexed)
    m = {x["merchant_id"]: x for x in body["merchants"]}
    cats = {x["category"]: x for x in body["categories"]}
    assert set(cats) == {"phones", "apparel"}  # nobody in "unknown"
    # G counts among its peers: the category's paid transactions and dispute average include it
    assert (cats["phones"]["merchants"], cats["phones"]["paid_transactions"]) == (3, 300)
    assert cats["phones"]["industry_average"]["dispute_rate"] == "0.006667"  # 2 / 300
    g = m["G"]
    assert (g["dispute_rate"], g["completion_hours"], g["lead_pct"]["dispute_rate"], g["index_score"]) == (
        "0.000000", None, "100.00", "100.00")
    assert g["warnings"] == []
    # P1: G is strictly better on disputes (warned); P2 ties with it on hours and self-completion — the best
    # values of the category, so a 0 % lead there is no warning
    p1 = m["P1"]
    assert (p1["lead_pct"]["completion_hours"], p1["lead_pct"]["self_completion_rate"]) == ("0.00", "0.00")
    assert p1["warnings"] == ["dispute_rate", "index"] and m["P2"]["warnings"] == ["dispute_rate", "index"]
    assert m["A1"]["warnings"] == [] and m["A2"]["warnings"] == []
    assert m["A1"]["lead_pct"]["index"] == "0.00"  # nobody worse, nobody better
    # G sees its category's aggregates through its own token
    mine = (await kpi.client.get("/v1/composite-index", headers=_auth(kpi, "merchant_main", "G"))).json()
    assert [x["category"] for x in mine["categories"]] == ["phones"]
