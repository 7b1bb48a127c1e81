"""GET /v1/route is not open (issue 14, finding 3): anyone could bill and disqualify a
manufacturer by calling it without a token at chosen times. Now: the storefront (or an
operator) authenticates, the consultation's time is the server's clock, an operator's
what-if is answered and never recorded, and a named consultation is billed once."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import jwt
import pytest

from consultation_routing.api.route import RouteAnswer
from shared.auth import ALGORITHM, ISSUER, Principal, issue_token

from .test_api import ready

PARAMS = {"channel": "im", "entry_point": "product_page", "sku": "sku-1"}


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def forged_tokens(api) -> dict[str, str]:
    secret, now = api.rt.settings.token_secret, api.clock.now()
    claims = {"iss": ISSUER, "sub": "shop", "role": "storefront", "exp": int((now + timedelta(minutes=5)).timestamp())}
    good = issue_token(Principal("storefront", "shop"), secret, now=now)
    head, body, sig = good.split(".")
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong_key": jwt.encode(claims, "not-the-service-secret-" + "x" * 32, algorithm=ALGORITHM),
        "tampered": f"{head}.{_b64({**claims, 'role': 'platform_operator'})}.{sig}",
        "expired": issue_token(Principal("storefront", "shop"), secret, now=now - timedelta(hours=1)),
        "garbage": "not-a-jwt",
    }


async def test_anonymous_and_forged_callers_get_401_and_nothing_is_recorded(api):
    await ready(api)
    r = await api.client.get("/v1/route", params=PARAMS)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await api.client.get("/v1/route", params=PARAMS, headers={"Authorization": "Basic c2hvcDpzZWNyZXQ="})
    assert r.status_code == 401
    for name, token in forged_tokens(api).items():
        r = await api.client.get("/v1/route", params=PARAMS, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", name
    # authentication comes before the query: bad parameters without a token are still 401
    r = await api.client.get("/v1/route", params={"channel": "fax"})
    assert r.status_code == 401
    assert await api.events() == []


@pytest.mark.parametrize("role,merchant", [("merchant_main", "m-1"), ("merchant_staff", "m-1"), ("arbitrator", None)])
async def test_other_roles_are_403(api, role, merchant):
    r = await api.client.get("/v1/route", params=PARAMS, headers=api.token(role, merchant))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert await api.events() == []


async def test_the_consultation_time_is_the_servers_clock_and_a_storefront_cannot_choose_it(api):
    await ready(api)  # Tuesday 10:00 Beijing: the manufacturer's hours
    a = await api.route(sku="sku-1")
    assert (a["target"], a["reason"], a["what_if"]) == ("manufacturer", "enrolled", False)
    # the answer is what the OpenAPI document declares, no more
    assert set(a) == set(RouteAnswer.model_fields) and RouteAnswer.model_validate(a)
    for at in ("2026-03-03T22:00:00+08:00", "2026-03-03T10:00:00+08:00", "garbage"):
        r = await api.client.get("/v1/route", params={**PARAMS, "at": at}, headers=api.storefront)
        assert r.status_code == 403 and r.json()["error"]["code"] == "what_if_operators_only", at
        assert "platform operators" in r.json()["error"]["message"]
    assert len(await api.events("routing.decided")) == 1
    assert await api.events("routing.billable_consultation") == []


async def test_an_operators_what_if_is_answered_and_never_recorded(api):
    await ready(api)
    night = await api.what_if("2026-03-03T22:00:00+08:00", sku="sku-1")  # would be billable: out of hours
    assert (night["target"], night["reason"], night["manufacturer_id"]) == ("platform", "out_of_hours", "m-1")
    day = await api.what_if("2026-03-03T10:00:00+08:00", sku="sku-1", consultation_id="c-1")
    assert day["reason"] == "enrolled"
    # without a time, an operator's call is a check too (now): answered, not a consultation
    r = await api.client.get("/v1/route", params=PARAMS, headers=api.op)
    assert r.status_code == 200 and r.json()["what_if"] is True and r.json()["reason"] == "enrolled"
    assert api.routing.publisher.buffered() == 0
    assert await api.events() == []  # no decision, so no billable consultation and no score input


@pytest.mark.parametrize("at,code", [
    ("9999-12-31T23:59:59-12:00", "at_out_of_range"),  # overflowed when converted downstream
    ("0001-01-01T00:00:00+14:00", "at_out_of_range"),
    ("2027-03-05T10:00:00+08:00", "at_out_of_range"),  # more than a year from the server's clock
    ("2025-03-01T10:00:00+08:00", "at_out_of_range"),
    ("2026-03-03T10:00:00", "validation_error"),  # no offset
    ("yesterday", "validation_error"),
    ("2026-03-03T10:00:00+08:00" + " " * 60, "validation_error"),  # too long
])
async def test_what_if_times_are_bounded(api, at, code):
    r = await api.client.get("/v1/route", params={**PARAMS, "at": at}, headers=api.op)
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text


async def test_a_year_either_way_is_accepted(api):
    await ready(api)
    assert (await api.what_if("2027-03-01T22:00:00+08:00", sku="sku-1"))["reason"] == "out_of_hours"  # a Monday
    assert (await api.what_if("2025-03-04T10:00:00+08:00", sku="sku-1"))["reason"] == "enrolled"  # a Tuesday


@pytest.mark.parametrize("name", ["sku", "customer_id", "sales_order_id", "service_order_id", "consultation_id"])
async def test_every_id_is_bounded(api, name):
    r = await api.client.get("/v1/route", params={**PARAMS, name: "x" * 101}, headers=api.storefront)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"] == {"field": name}
    assert (await api.route(**{name: "x" * 100}))["what_if"] is False


async def test_the_customer_is_the_one_the_storefront_asserts(api):
    await ready(api)
    sf = {**api.storefront, "X-Customer-Id": "c-7"}
    await api.route(headers=sf, sku="sku-1")
    await api.route(headers=sf, sku="sku-1", customer_id="c-7")
    r = await api.client.get("/v1/route", params={**PARAMS, "customer_id": "c-8"}, headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_mismatch"
    assert [e["data"]["customer_id"] for e in await api.events("routing.decided")] == ["c-7", "c-7"]


async def test_a_named_consultation_is_billed_once(api):
    await ready(api)
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))  # out of hours: the platform serves, billable
    first = await api.route(sku="sku-1", consultation_id="cons-1")
    again = await api.route(sku="sku-1", consultation_id="cons-1", channel="phone")  # the page rendered again
    assert first["decision_id"] == again["decision_id"]
    other = await api.route(sku="sku-1", consultation_id="cons-2")
    # another storefront client naming the same id: its own consultation
    shop2 = {"Authorization": "Bearer " + issue_token(Principal("storefront", "shop-2"), api.rt.settings.token_secret,
                                                      now=api.clock.now())}
    theirs = await api.route(headers=shop2, sku="sku-1", consultation_id="cons-1")
    assert len({first["decision_id"], other["decision_id"], theirs["decision_id"]}) == 3
    # unnamed: each call is a consultation of its own
    u1, u2 = await api.route(sku="sku-1"), await api.route(sku="sku-1")
    assert u1["decision_id"] != u2["decision_id"]
    bills = [e["data"]["consultation_id"] for e in await api.events("routing.billable_consultation")]
    assert bills == [first["decision_id"], other["decision_id"], theirs["decision_id"],
                     u1["decision_id"], u2["decision_id"]]
    # every decision is still published (its decision id is the consultation's: KPI keeps one fact per id)
    decided = [e["data"]["decision_id"] for e in await api.events("routing.decided")]
    assert decided.count(first["decision_id"]) == 2


async def test_after_a_restart_a_repeat_carries_the_same_consultation_id(api):
    """This process remembers what it billed only while it runs (and each replica its own):
    a repeat after a restart, or on another replica, publishes again — with the same
    consultation id, which KPI keeps one billable fact for (tests/test_routing_billing_e2e.py)."""
    await ready(api)
    api.clock.set(datetime.fromisoformat("2026-03-03T22:00:00+08:00"))
    a = await api.route(sku="sku-1", consultation_id="cons-1")
    api.routing.publisher._billed.clear()  # what a restart forgets
    b = await api.route(sku="sku-1", consultation_id="cons-1")
    bills = [e["data"]["consultation_id"] for e in await api.events("routing.billable_consultation")]
    assert a["decision_id"] == b["decision_id"] and bills == [a["decision_id"]] * 2


def test_the_memory_of_billed_consultations_is_bounded():
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from consultation_routing.domain.model import Consultation
    from consultation_routing.adapters.publisher import DecisionPublisher

    pub = DecisionPublisher(SimpleNamespace(metrics=CollectorRegistry()), None, capacity=1000, batch=10,
                            remember_billed=3)
    at = datetime.fromisoformat("2026-03-03T22:00:00+08:00")
    for i in (1, 2, 3, 4, 1, 4):
        c = Consultation("im", "product_page", "pre_sale", at, "sku-1", consultation_id=f"shop/c-{i}")
        pub.offer(c, {"decision_id": f"d-{i}", "target": "platform", "reason": "out_of_hours",
                      "manufacturer_id": "m-1", "category": "phones", "queue_id": "platform"})
    assert list(pub._billed) == ["d-3", "d-4", "d-1"]  # the oldest forgotten first
    # d-1 was forgotten when d-4 came: billed again (KPI still counts it once); d-4 was not
    assert [r[-1] for r in pub.buffer] == [True, True, True, True, True, False]
