"""Who may call what on the SLA timer service: every route refuses missing and forged
tokens; an order's timers are visible to its merchant (staff with rights) and to the
platform only; overrides are operator-only and audited (who, when, old → new); every
query and path parameter is bounded (422, never a 5xx)."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from shared.access import route_policies
from shared.auth import ISSUER, Principal, issue_token
from shared.testing import eventually
from sla_timer.domain.access import can_read_timers
from sla_timer.models import Timer

pytestmark = pytest.mark.broker

D = timedelta(days=1)
PATH_VALUES = {"order_id": "9b2f7c1e-0000-4000-8000-000000000001", "rule": "auto_refund", "scope": "merchant",
               "scope_id": "m-1", "day": "2027-02-08", "year": "2027"}
QUERY = {"start": "2026-09-30T15:00:00+08:00", "n": "1", "hours": "1"}
BODIES = {("PUT", "/v1/rules/{rule}/overrides/{scope}/{scope_id}"): {"enabled": False},
          ("PUT", "/v1/calendar/overrides/{day}"): {"working": False},
          ("PUT", "/v1/calendar/years/{year}"): {"holidays": ["2027-02-08"]},
          ("POST", "/admin/clock/advance"): {"seconds": 1}}


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def forged(tokens) -> dict[str, dict]:
    """Authorization headers an attacker can make, each claiming the operator role."""
    now = tokens.rt.clock.now()
    claims = {"iss": ISSUER, "sub": "attacker", "jti": "x", "iat": int(now.timestamp()),
              "exp": int((now + timedelta(minutes=10)).timestamp()), "role": "platform_operator",
              "mid": None, "perm": [], "cat": []}
    head, payload, sig = tokens.token(Principal("merchant_main", "u-1", merchant_id="m-1")).split(".")
    promoted = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) | {"role": "platform_operator"}
    tokens = {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong_key": issue_token(Principal("platform_operator", "attacker"), "an-attackers-own-secret-0123456789",
                                 now=now),
        "tampered": f"{head}.{_b64(promoted)}.{sig}",
        "expired": tokens.token(Principal("platform_operator", "op-1"), now=now - timedelta(hours=1)),
        "garbage": "not-a-jwt",
    }
    return {"none": {}, "basic": {"Authorization": "Basic b3A6b3A="},
            **{k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}}


def routes(app) -> list[tuple[str, str]]:
    out = [(m, p) for (m, p), pol in route_policies(app).items()
           if m not in ("HEAD", "OPTIONS") and not (pol and pol.is_public)]
    assert ("GET", "/v1/service-orders/{order_id}/timers") in out and ("GET", "/v1/audit-log") in out
    return out


async def call(sla, method: str, path: str, hdrs: dict | None):
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    return await sla.client.request(method, url, params=QUERY, json=BODIES.get((method, path)),
                                    headers=hdrs or {}, auth=None)


async def test_every_route_refuses_missing_and_forged_tokens(sla, tokens):
    checked = 0
    for method, path in routes(sla.app):
        for kind, hdrs in forged(tokens).items():
            r = await call(sla, method, path, hdrs)
            assert r.status_code == 401, (kind, method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            checked += 1
        # ...and the operator's genuine token gets through (the samples above are valid).
        if (method, path) != ("POST", "/admin/clock/advance"):
            r = await call(sla, method, path, tokens.headers("platform_operator", "op-1"))
            assert r.status_code == 200, (method, path, r.status_code, r.text)
    assert checked >= 7 * 10
    async with sla.runtime.sessions() as s:  # nothing a refused call asked for happened
        assert not (await s.scalars(select(Timer))).all()


async def test_merchant_and_staff_cannot_change_policy_or_the_calendar(sla, tokens, new_order):
    day_before = (await sla.client.get("/v1/calendar/days/2026-03-02")).json()
    assert day_before["working_day"] is True  # a Monday
    for role, kw in [("merchant_main", {"merchant_id": "m-1"}),
                     ("merchant_staff", {"merchant_id": "m-1", "permissions": frozenset({"audit", "process"})}),
                     ("arbitrator", {}), ("storefront", {})]:
        h = tokens.headers(role, **kw)
        r = await sla.client.put("/v1/rules/auto_refund/overrides/merchant/m-1", json={"enabled": False}, headers=h)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (role, r.text)
        r = await sla.client.put("/v1/calendar/overrides/2026-03-02", json={"working": False}, headers=h)
        assert r.status_code == 403, role
        for path in ("/v1/audit-log", "/v1/rule-overrides", "/admin/dead-letters"):
            assert (await sla.client.get(path, headers=h)).status_code == 403, (role, path)
        # Reading the rule table and the calendar is fine for any authenticated caller.
        assert (await sla.client.get("/v1/rules", headers=h)).status_code == 200
        assert (await sla.client.get("/v1/calendar/days/2027-02-08", headers=h)).status_code == 200
    assert (await sla.client.get("/v1/rule-overrides")).json()["items"] == []
    assert (await sla.client.get("/v1/audit-log")).json()["total"] == 0
    assert (await sla.client.get("/v1/calendar/days/2026-03-02")).json() == day_before
    # The merchant's shipped orders still get their auto-refund timer.
    o = await new_order(merchant_id="m-1").created()
    await o.act("audit.approve_return", "awaiting_return_shipment")
    await o.act("fill_shipment", "awaiting_receipt")

    async def armed():
        items = (await sla.client.get(f"/v1/service-orders/{o.order_id}/timers")).json()["items"]
        return [t for t in items if t["rule"] == "auto_refund" and t["state"] == "pending"]
    assert await eventually(armed)


async def test_timers_visible_to_the_orders_merchant_and_the_platform_only(sla, tokens, new_order):
    rt = sla.runtime
    o = await new_order(merchant_id="m-1", category="phones").created()

    async def settled():
        r = await sla.client.get(f"/v1/service-orders/{o.order_id}/timers")
        return r.json()["items"] if len(r.json()["items"]) >= 5 else None
    items = await eventually(settled)
    async with rt.sessions() as s:  # kept from the order event
        rows = (await s.scalars(select(Timer).where(Timer.order_id == o.order_id))).all()
    assert {(t.merchant_id, t.category) for t in rows} == {("m-1", "phones")}

    url = f"/v1/service-orders/{o.order_id}/timers"
    allowed = [
        tokens.headers("merchant_main", merchant_id="m-1"),
        tokens.headers("merchant_staff", merchant_id="m-1", permissions=frozenset({"audit"}),
                categories=frozenset({"phones", "books"})),
        tokens.headers("merchant_staff", merchant_id="m-1", permissions=frozenset({"process"})),  # no categories
        tokens.headers("arbitrator", "arb-1"),
        tokens.headers("platform_operator", "op-1"),
    ]
    for h in allowed:
        r = await sla.client.get(url, headers=h)
        assert r.status_code == 200 and r.json()["items"] == items, r.text

    unknown = await sla.client.get("/v1/service-orders/no-such-order/timers",
                                   headers=tokens.headers("merchant_main", merchant_id="m-2"))
    assert unknown.status_code == 404
    hidden = [
        tokens.headers("merchant_main", merchant_id="m-2"),
        tokens.headers("merchant_staff", merchant_id="m-2", permissions=frozenset({"audit"}),
                categories=frozenset({"phones"})),
        tokens.headers("merchant_staff", merchant_id="m-1", permissions=frozenset({"audit"}),
                categories=frozenset({"books"})),  # not this order's category
    ]
    for h in hidden:
        r = await sla.client.get(url, headers=h)
        # Exactly what an unknown order answers: existence is not revealed.
        assert r.status_code == 404 and r.json()["error"]["code"] == unknown.json()["error"]["code"], r.text
    r = await sla.client.get(url, headers=tokens.headers("merchant_staff", merchant_id="m-1",
                                                   categories=frozenset({"phones"})))  # no permission
    assert r.status_code == 403 and r.json()["error"]["code"] == "missing_permission"
    r = await sla.client.get(url, headers=tokens.headers("storefront", "sf-1"))
    assert r.status_code == 403
    r = await sla.client.get(url, headers=tokens.headers("merchant_main"))  # a merchant token naming no merchant
    assert r.status_code == 401
    # The platform sees an order with no timers (yet) as an empty list.
    r = await sla.client.get("/v1/service-orders/no-such-order/timers")
    assert r.status_code == 200 and r.json()["items"] == []


def test_timer_read_rule():
    staff = Principal("merchant_staff", "s", merchant_id="m-1", permissions=frozenset({"audit"}),
                      categories=frozenset({"phones"}))
    assert can_read_timers(staff, "m-1", "phones")
    assert can_read_timers(staff, "m-1", None)  # category not known
    assert not can_read_timers(staff, "m-1", "books")
    assert not can_read_timers(staff, "m-2", "phones")
    assert not can_read_timers(Principal("merchant_staff", "s", merchant_id="m-1", categories=frozenset({"phones"})),
                               "m-1", "phones")
    assert not can_read_timers(Principal("merchant_main", "m", merchant_id="m-1"), None, None)  # legacy timers
    assert can_read_timers(Principal("arbitrator", "a"), None, None)
    assert not can_read_timers(Principal("storefront", "sf", customer_id="c-1"), "m-1", "phones")


async def test_overrides_are_audited_with_who_when_old_and_new(sla, tokens):
    rt = sla.runtime
    rt.clock.advance(10 * D)  # the entry's time is the service's clock, not the wall clock
    op1, op2 = tokens.headers("platform_operator", "op-alice"), tokens.headers("platform_operator", "op-bob")
    url = "/v1/rules/auto_refund/overrides/merchant/m-1"
    before = rt.clock.now()
    assert (await sla.client.put(url, json={"after_seconds": 86400}, headers=op1)).status_code == 200
    assert (await sla.client.put(url, json={"enabled": False}, headers=op2)).status_code == 200
    assert (await sla.client.put("/v1/calendar/overrides/2027-02-08", json={"working": False, "note": "announced"},
                                 headers=op1)).status_code == 200
    assert (await sla.client.put("/v1/calendar/overrides/2027-02-08", json={"working": True},
                                 headers=op2)).status_code == 200
    after = rt.clock.now()

    log = (await sla.client.get("/v1/audit-log")).json()
    assert log["total"] == 4 and [e["kind"] for e in log["items"]] == ["calendar_override"] * 2 + ["rule_override"] * 2
    cal2, cal1, rule2, rule1 = log["items"]
    assert (rule1["actor"], rule1["actor_role"], rule1["rule"], rule1["scope"], rule1["scope_id"]) == \
        ("op-alice", "platform_operator", "auto_refund", "merchant", "m-1")
    assert rule1["old"] is None
    assert rule1["new"] == {"enabled": True, "after_seconds": 86400, "working_days": None}
    assert rule2["actor"] == "op-bob" and rule2["old"] == rule1["new"]
    assert rule2["new"] == {"enabled": False, "after_seconds": None, "working_days": None}
    assert cal1["day"] == "2027-02-08" and cal1["old"] is None
    assert cal1["new"] == {"working": False, "note": "announced"}
    assert cal2["old"] == cal1["new"] and cal2["new"] == {"working": True, "note": ""} and cal2["actor"] == "op-bob"
    for e in log["items"]:
        at = datetime.fromisoformat(e["at"])
        assert at.utcoffset() == timedelta(0) and before - timedelta(seconds=1) <= at <= after + timedelta(seconds=1)
    assert before > datetime.now(timezone.utc) + 9 * D

    r = await sla.client.get("/v1/audit-log", params={"kind": "rule_override", "limit": 1, "offset": 1})
    assert r.json()["total"] == 2 and [e["id"] for e in r.json()["items"]] == [rule1["id"]]
    for bad in ({"kind": "other"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"offset": "9223372036854775808"}):
        r = await sla.client.get("/v1/audit-log", params=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", bad


@pytest.mark.parametrize("method,url", [
    ("GET", "/v1/calendar/days/0001-01-01"),
    ("GET", "/v1/calendar/days/9999-12-31"),
    ("GET", "/v1/calendar/days/1949-12-31"),
    ("GET", "/v1/calendar/days/2101-01-01"),
    ("GET", "/v1/calendar/days/2026-02-30"),
    ("PUT", "/v1/calendar/overrides/0001-01-01"),
    ("PUT", "/v1/calendar/overrides/9999-12-31"),
    ("GET", "/v1/calendar/add-working-days?start=0001-01-01T00:00:00%2B08:00&n=1"),
    ("GET", "/v1/calendar/add-working-days?start=9999-12-31T23:59:59-12:00&n=1"),
    ("GET", "/v1/calendar/add-working-days?start=9999-12-31T23:59:59&n=1"),
    ("GET", "/v1/calendar/add-working-days?start=2026-09-30T15:00:00Z&n=-1"),
    ("GET", "/v1/calendar/add-working-days?start=2026-09-30T15:00:00Z&n=3661"),
    ("GET", "/v1/calendar/add-working-days?start=2026-09-30T15:00:00Z&n=9223372036854775808"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=-1"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=10001"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=nan"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=inf"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=1e400"),
    ("GET", "/v1/calendar/add-business-hours?start=0001-01-01T00:00:00Z&hours=1"),
    ("GET", "/v1/calendar/add-business-hours?start=2026-09-30T15:00:00Z&hours=1&channel=" + "x" * 33),
    ("GET", "/v1/service-orders/" + "x" * 65 + "/timers"),
    ("PUT", "/v1/rules/auto_refund/overrides/merchant/" + "m" * 61),
    ("PUT", "/v1/rules/auto_refund/overrides/merchant/m%0A1"),
    ("PUT", "/v1/rules/auto_refund/overrides/shop/m-1"),
    ("PUT", "/v1/rules/" + "r" * 61 + "/overrides/merchant/m-1"),
])
async def test_edge_values_are_refused_with_422(sla, method, url):
    body = {"working": False} if "calendar/overrides" in url else {"enabled": False} if method == "PUT" else None
    r = await sla.client.request(method, url, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_bounds_are_inclusive(sla):
    for day in ("1950-01-01", "2100-12-31"):
        assert (await sla.client.get(f"/v1/calendar/days/{day}")).status_code == 200
    r = await sla.client.get("/v1/calendar/add-working-days", params={"start": "2100-12-30T10:00:00Z", "n": 3660})
    assert r.status_code == 200
    r = await sla.client.get("/v1/calendar/add-business-hours", params={"start": "2100-12-30T10:00:00Z",
                                                                          "hours": 10000})
    assert r.status_code == 200


async def test_concurrent_changes_of_one_override_are_audited_as_a_chain(sla, tokens):
    """Every entry's ``old`` is exactly the value it replaced, however the changes race."""
    import asyncio

    url = "/v1/rules/ship_back_timeout/overrides/category/race"
    bodies = [{"after_seconds": 3600 * (k + 1)} for k in range(8)]
    rs = await asyncio.gather(*(sla.client.put(url, json=b, headers=tokens.headers("platform_operator", f"op-{k}"))
                                for k, b in enumerate(bodies)))
    assert [r.status_code for r in rs] == [200] * len(bodies), [r.text for r in rs]
    items = (await sla.client.get("/v1/audit-log", params={"kind": "rule_override"})).json()["items"][::-1]
    assert len(items) == len(bodies)
    assert items[0]["old"] is None
    for before, after in zip(items, items[1:]):
        assert after["old"] == before["new"]
    final = (await sla.client.get("/v1/rule-overrides")).json()["items"]
    assert [o["after_seconds"] for o in final] == [items[-1]["new"]["after_seconds"]]
