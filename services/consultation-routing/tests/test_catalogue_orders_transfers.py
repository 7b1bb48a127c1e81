"""Issue 16, items 14–16, through the HTTP API (consumers fed their events directly):
routing follows the merchants' catalogue and their service orders, transfers name real
decisions, the hover text names categories in Chinese, and every event is UTC."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from consultation_routing.entrypoints.consumers import catalogue_handlers, order_handlers
from consultation_routing.domain.categories import CATEGORY_NAMES, category_names
from consultation_routing.domain.packages import PACKAGE_1, PACKAGE_2
from consultation_routing.models import DecisionRow, OrderSkuRow, SkuRow
from consultation_routing.adapters.publisher import forget_decisions
from consultation_routing.adapters.state import RoutingState
from shared.contracts.orders import ServiceOrderCreated
from shared.contracts.routing import SkuUpserted
from shared.events import make_envelope

from .test_api import CSV, ready


async def sku_event(api, sku: str, merchant: str, category: str, kind: str | None = "manufacturer") -> None:
    data = SkuUpserted(sku=sku, manufacturer_id=merchant, category=category, merchant_kind=kind)
    env = make_envelope(type_="catalogue.sku_upserted", key=sku, producer="orders", occurred_at=api.clock.now(),
                        data=data)
    async with api.rt.uow() as s:
        await catalogue_handlers(api.rt)["catalogue.sku_upserted"](s, env, data)


def created(order_id: str, sales_order_id: str, sku: str, at: datetime) -> tuple:
    data = ServiceOrderCreated(
        order_id=order_id, number=f"N{order_id}", version=1, state="pending_claim", merchant_id="m-1",
        customer_id="c-1", customer_phone="13800138000", customer_level="gold", sales_order_id=sales_order_id,
        sku=sku, category="phones", quantity=1, amount_paid="10.00", service_type="return", problem_type="quality",
        delivered_at=at - timedelta(days=1), created_at=at)
    return make_envelope(type_="service_order.created", key=order_id, producer="orders", occurred_at=at, data=data), data


async def orders_created(api, *events, batch: bool = False) -> None:
    handler = order_handlers(api.rt)["service_order.created"]
    async with api.rt.uow() as s:
        if batch:
            await handler.many(s, list(events))
        else:
            for env, data in events:
                await handler(s, env, data)


# ---------------------------------------------------------------- 14: the merchants' catalogue

async def test_catalogue_events_route_the_sku_to_its_manufacturer(api):
    await api.enroll("mfr-1", categories=["appliances"])
    await api.queue("mfr-1")
    assert (await api.route(sku="fridge-1"))["reason"] == "unknown_sku"
    await sku_event(api, "fridge-1", "mfr-1", "Appliances")
    a = await api.route(sku="fridge-1")
    assert (a["target"], a["reason"], a["manufacturer_id"], a["category"]) == (
        "manufacturer", "enrolled", "mfr-1", "appliances")
    # a POP seller listing the same SKU id does not take it from the manufacturer
    await sku_event(api, "fridge-1", "pop-1", "appliances", kind="pop_seller")
    assert (await api.route(sku="fridge-1"))["manufacturer_id"] == "mfr-1"
    async with api.rt.sessions() as s:
        assert (await s.get(SkuRow, "fridge-1")).manufacturer_id == "mfr-1"
    # a POP seller's own SKU is known (its merchant is not enrolled), and a manufacturer takes it over
    await sku_event(api, "case-1", "pop-1", "accessories", kind="pop_seller")
    assert (await api.route(sku="case-1"))["reason"] == "not_enrolled"
    await sku_event(api, "case-1", "mfr-1", "appliances")
    assert (await api.route(sku="case-1"))["reason"] == "enrolled"


async def test_a_consultation_naming_only_its_service_or_sales_order_is_routed_by_the_orders_sku(api):
    await ready(api)
    now = api.clock.now()
    await orders_created(api, created("so-1", "SO-1", "sku-1", now - timedelta(days=2)))
    a = await api.route(service_order_id="so-1")
    assert (a["target"], a["reason"], a["manufacturer_id"]) == ("manufacturer", "enrolled", "m-1")
    b = await api.route(sales_order_id="SO-1")
    assert (b["reason"], b["category"]) == ("enrolled", "phones")
    # the decision event carries the SKU the order named, and the order ids as asked
    decided = {e["data"]["decision_id"]: e["data"] for e in await api.events("routing.decided")}
    assert (decided[a["decision_id"]]["sku"], decided[a["decision_id"]]["service_order_id"]) == ("sku-1", "so-1")
    assert (decided[b["decision_id"]]["sku"], decided[b["decision_id"]]["sales_order_id"]) == ("sku-1", "SO-1")
    # a sales order resolves to its latest service order's SKU, whatever order the events arrive in
    await orders_created(api, created("so-3", "SO-1", "sku-2", now - timedelta(hours=1)),
                         created("so-2", "SO-1", "sku-3", now - timedelta(days=1)), batch=True)
    assert (await api.route(sales_order_id="SO-1"))["category"] == "appliances"  # sku-2
    assert (await api.route(service_order_id="so-2"))["reason"] == "not_enrolled"  # sku-3, m-9's
    # a SKU the caller names wins; an unknown one gives way to the order's
    assert (await api.route(sku="sku-3", service_order_id="so-1"))["reason"] == "not_enrolled"
    assert (await api.route(sku="nope", service_order_id="so-1"))["reason"] == "enrolled"
    assert (await api.route(service_order_id="so-404", sales_order_id="SO-404"))["reason"] == "unknown_sku"
    # another replica learns the orders from the table
    other = RoutingState(api.rt.sessions, now=api.clock.now)
    await other.refresh()
    assert other.order_sku("so-1", None) == "sku-1" and other.order_sku(None, "SO-1") == "sku-2"


async def test_old_service_orders_are_forgotten(api):
    await ready(api)
    days = api.rt.settings.order_lookup_days
    now = api.clock.now()
    await orders_created(api, created("so-old", "SO-OLD", "sku-1", now - timedelta(days=days - 1)),
                         created("so-new", "SO-NEW", "sku-1", now - timedelta(days=1)),
                         created("so-ancient", "SO-ANC", "sku-1", now - timedelta(days=days + 1)))
    assert (await api.route(service_order_id="so-ancient"))["reason"] == "unknown_sku"  # never stored
    assert (await api.route(service_order_id="so-old"))["reason"] == "enrolled"
    api.clock.advance(timedelta(days=2))
    await api.queue()
    assert await api.routing.state.forget_old_orders() == 1
    assert (await api.route(service_order_id="so-old"))["reason"] == "unknown_sku"
    assert (await api.route(sales_order_id="SO-OLD"))["reason"] == "unknown_sku"
    assert (await api.route(sales_order_id="SO-NEW"))["reason"] == "enrolled"
    async with api.rt.sessions() as s:
        assert list(await s.scalars(select(OrderSkuRow.service_order_id))) == ["so-new"]


# ---------------------------------------------------------------- 15: transfers name real decisions

def transfer(decision_id: str, manufacturer_id: str = "m-1", **extra) -> dict:
    return {"decision_id": decision_id, "manufacturer_id": manufacturer_id, "agent_id": "agent-1",
            "reason": "asks about a coupon", **extra}


async def bills(api) -> list[dict]:
    return [e["data"] for e in await api.events("routing.billable_consultation")]


async def test_a_transfer_names_a_real_decision_to_that_manufacturer_once(api):
    await ready(api)
    await api.enroll("m-2", categories=["phones"])
    await api.queue("m-2")
    await api.skus("sku,manufacturer_id,category\nsku-m2,m-2,phones\n")
    to_m1 = await api.route(sku="sku-1", channel="phone")
    # answered a moment ago and not written yet: the transfer waits for it (no flush here)
    r = await api.client.post("/v1/transfers", json=transfer(to_m1["decision_id"]), headers=api.token("merchant_staff", "m-1"))
    assert r.status_code == 201, r.text
    assert (r.json()["hotline"], r.json()["queue_id"]) == ("400-606-5500", None)  # the decision's channel: phone
    assert [(b["consultation_id"], b["cause"], b["channel"], b["category"]) for b in await bills(api)] == [
        (to_m1["decision_id"], "transfer", "phone", "phones")]
    r = await api.client.post("/v1/transfers", json=transfer(to_m1["decision_id"]), headers=api.op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_transferred"

    # made up
    r = await api.client.post("/v1/transfers", json=transfer(str(uuid.uuid4())), headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"
    # sent to the platform (m-1 is not enrolled for appliances; a platform answer on its behalf)
    to_platform = await api.route(sku="sku-2")
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))
    out_of_hours = await api.route(sku="sku-1")
    for d in (to_platform, out_of_hours):
        r = await api.client.post("/v1/transfers", json=transfer(d["decision_id"]), headers=api.op)
        assert r.status_code == 409 and r.json()["error"]["code"] == "decision_not_to_manufacturer", r.text
    api.clock.set(datetime.fromisoformat("2026-03-04T10:00:00+08:00"))
    await api.queue("m-2")
    # another manufacturer's decision: 409 for an operator, not even confirmed to a manufacturer
    to_m2 = await api.route(sku="sku-m2")
    r = await api.client.post("/v1/transfers", json=transfer(to_m2["decision_id"]), headers=api.op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "decision_of_another_manufacturer"
    r = await api.client.post("/v1/transfers", json=transfer(to_m2["decision_id"]), headers=api.token("merchant_main", "m-1"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"
    # channel or SKU other than the decision's
    r = await api.client.post("/v1/transfers", json=transfer(to_m2["decision_id"], "m-2", channel="phone"),
                              headers=api.op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "decision_mismatch"
    r = await api.client.post("/v1/transfers", json=transfer(to_m2["decision_id"], "m-2", sku="sku-1"), headers=api.op)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "sku"
    r = await api.client.post("/v1/transfers", json=transfer(to_m2["decision_id"], "m-2", channel="im", sku="sku-m2"),
                              headers=api.token("merchant_staff", "m-2"))
    assert r.status_code == 201 and r.json()["queue_id"] == "platform"
    # only the two real transfers were billed as transfers
    assert [b["consultation_id"] for b in await bills(api) if b["cause"] == "transfer"] == [
        to_m1["decision_id"], to_m2["decision_id"]]


async def test_a_named_consultation_sent_to_the_manufacturer_once_may_be_transferred(api):
    await ready(api)
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))
    first = await api.route(sku="sku-1", consultation_id="cons-9")  # out of hours: the platform
    await api.events()  # written
    api.clock.set(datetime.fromisoformat("2026-03-04T10:00:00+08:00"))
    await api.queue()
    again = await api.route(sku="sku-1", consultation_id="cons-9")
    assert first["decision_id"] == again["decision_id"] and again["target"] == "manufacturer"
    r = await api.client.post("/v1/transfers", json=transfer(again["decision_id"]), headers=api.op)
    assert r.status_code == 201, r.text
    # and a later platform answer for it does not undo the record
    async with api.rt.sessions() as s:
        assert (await s.get(DecisionRow, again["decision_id"])).target == "manufacturer"


async def test_decisions_past_the_retention_cannot_be_transferred(api):
    await ready(api)
    a = await api.route(sku="sku-1")
    await api.events()
    await forget_decisions(api.rt.sessions, api.clock.now() + timedelta(seconds=1))
    r = await api.client.post("/v1/transfers", json=transfer(a["decision_id"]), headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"


async def test_only_decisions_involving_an_enrolled_manufacturer_are_recorded(api):
    await ready(api)
    for sku in ("sku-1", "sku-3", "nope", None):  # enrolled, unknown maker, unknown SKU, none
        await api.route(sku=sku)
    await api.events()
    async with api.rt.sessions() as s:
        rows = (await s.scalars(select(DecisionRow))).all()
    assert [(r.manufacturer_id, r.target, r.sku, r.channel) for r in rows] == [("m-1", "manufacturer", "sku-1", "im")]


# ---------------------------------------------------------------- 16: hover text, UTC events

async def test_hover_text_names_the_categories_in_chinese(api):
    await api.enroll(categories=["appliances", "tv"])
    await api.skus("sku,manufacturer_id,category\nfridge,m-1,appliances\n")
    await api.queue()
    a = await api.route(sku="fridge", channel="phone")
    assert a["target"] == "manufacturer"
    assert "解答家用电器、电视商品的售前咨询与售后服务" in a["hover_text"]
    assert "appliances" not in a["hover_text"] and "tv" not in a["hover_text"]


def test_every_category_code_in_use_has_a_chinese_name():
    codes = PACKAGE_1 | PACKAGE_2 | {"tv", "accessories"}  # the packages, and the demo catalogue's
    assert codes <= CATEGORY_NAMES.keys()
    assert all(not any(c.isascii() and c.isalpha() for c in name) for name in CATEGORY_NAMES.values())
    assert category_names({"tv", "tvs", "phones"}) == "手机、电视"
    assert category_names({"gadgets"}) == "gadgets"  # no name yet: the code, not nothing


async def test_every_routing_event_is_utc_whatever_offset_the_clock_answers_in(api):
    await ready(api)
    api.clock.set(datetime.fromisoformat("2026-03-03T10:00:00+08:00"))
    a = await api.route(sku="sku-1")
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))
    await api.route(sku="sku-1")  # billable: out of hours
    r = await api.client.post("/v1/transfers", json=transfer(a["decision_id"]), headers=api.op)
    assert r.status_code == 201
    assert r.json()["transferred_at"].endswith("+00:00")
    events = await api.events()
    assert {e["type"] for e in events} == {"routing.decided", "routing.billable_consultation", "routing.transferred"}
    times = [e["occurred_at"] for e in events] + [
        e["data"][k] for e in events for k in ("decided_at", "occurred_at", "transferred_at") if k in e["data"]]
    assert len(times) == 2 * len(events)
    for t in times:
        assert datetime.fromisoformat(t).utcoffset() == timedelta(0), t
        assert t.endswith(("Z", "+00:00")), t
    assert datetime.fromisoformat(events[0]["data"]["decided_at"]) == datetime(2026, 3, 3, 2, tzinfo=timezone.utc)
