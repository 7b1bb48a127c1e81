"""Issue 14 regressions on the KPI API: every query and path parameter is bounded and
a bad value is a 422 in the error shape (never a 500: dates like 0001-01-01 or
9999-12-31 overflowed the figures' date arithmetic, a NUL in an id broke PostgreSQL),
and a merchant principal never sees another merchant's rows on any endpoint."""
from __future__ import annotations

import pytest
from kpi_feed import _auth
from kpi_gen import H, bj

from kpi.api.routes import FIRST_DAY, LAST_DAY
from shared.auth import Principal, issue_token
from shared.clock import ManualClock
from shared.testing import eventually

pytestmark = pytest.mark.broker

FIRST_MONDAY, LAST_MONDAY = "2000-01-03", "2100-12-27"  # the first and last Mondays of the supported range
WEEK_ROUTES = ["/v1/scorecards/weekly", "/v1/scorecards/weekly.csv", "/v1/rankings/weekly", "/v1/flags",
               "/v1/penalties", "/v1/service-express/scores"]
WINDOW_ROUTES = ["/v1/staffing/m-1", "/v1/paid-transactions"]  # ?from=&to=
INDEX_ROUTES = ["/v1/composite-index", "/v1/composite-index.csv"]  # ?date=
# out of the supported range (Mondays where a week is asked for, so the Monday check
# cannot be what refuses them), or not dates at all
BAD_DAYS = ["0001-01-01", "9999-12-31", "9999-12-27", "1999-12-27", "2101-01-03", "10000-01-01",
            "9223372036854775808", "-2026-11-16", "2026-02-30", ""]
BAD_MONTHS = ["0001-01", "9999-12", "0000-01", "1999-12", "2101-01", "2026-13", "2026-00", "2026-1", "202611",
              "2026-11x", ""]
BAD_PERIODS = [*BAD_MONTHS[:-1], "9999-Q4", "0000-Q1", "2101-Q1", "2026-Q5", "2026-Q0", "2026-q4"]
BAD_IDS = ["m" * 201, "m\x00", "m\n", "\x7f", ""]
HUGE = "9223372036854775808"


def _check_422(r, field: str, code: str = "validation_error") -> str | None:
    """None when ``r`` is a 422 in the error shape with ``code`` (naming ``field`` for a
    validation error); else what was wrong."""
    try:
        err = r.json()["error"]
    except Exception:  # noqa: BLE001 - a plain-text body is exactly the bug
        return f"{r.status_code} {r.text[:120]!r}"
    if r.status_code != 422 or err.get("code") != code:
        return f"{r.status_code} {err}"
    if code == "validation_error" and not any(d["field"].split(".")[-1] == field for d in err.get("details", [])):
        return f"422 without the field {field!r}: {err}"
    return None


async def test_every_parameter_is_bounded_and_edge_values_are_422(kpi):
    """Each edge value on each endpoint: 422 + code, checked before any date arithmetic."""
    op = _auth(kpi, "platform_operator")
    c = kpi.client
    failures: list[str] = []

    async def expect(method, url, field, code="validation_error", **kw):
        r = await c.request(method, url, **{"headers": op, **kw})
        if (why := _check_422(r, field, code)) is not None:
            failures.append(f"{method} {url} {kw}: {why}")

    for day in BAD_DAYS:
        for url in WEEK_ROUTES:
            await expect("GET", url, "week", params={"week": day})
        for url in INDEX_ROUTES:
            await expect("GET", url, "date", params={"date": day})
        for url in WINDOW_ROUTES:
            await expect("GET", url, "from", params={"from": day, "to": "2026-11-30"})
            await expect("GET", url, "to", params={"from": "2026-11-01", "to": day})
        if day:
            await expect("POST", f"/v1/periods/{day}/close", "week")
        await expect("POST", "/v1/paid-transactions", "date",
                     json={"items": [{"merchant_id": "m-1", "date": day, "count": 1}]})
    for month in BAD_MONTHS:
        await expect("GET", "/v1/billing", "month", params={"month": month})
    for period in BAD_PERIODS:
        await expect("GET", f"/v1/statistics/{period}", "period")

    # ids: at most 200 characters (64 for an order id), no control characters, not empty
    for bad in BAD_IDS:
        for url, name, extra in [("/v1/scorecards/weekly", "merchant_id", {"week": "2026-11-16"}),
                                 ("/v1/scorecards/weekly.csv", "merchant_id", {"week": "2026-11-16"}),
                                 ("/v1/penalties", "merchant_id", {}),
                                 ("/v1/service-express/scores", "manufacturer_id", {"week": "2026-11-16"}),
                                 ("/v1/billing", "manufacturer_id", {}),
                                 ("/v1/composite-index", "merchant_id", {}),
                                 ("/v1/composite-index", "category", {}),
                                 ("/v1/composite-index.csv", "merchant_id", {}),
                                 ("/v1/composite-index.csv", "category", {}),
                                 ("/v1/paid-transactions", "merchant_id", {"from": "2026-11-01", "to": "2026-11-30"})]:
            await expect("GET", url, name, params={**extra, name: bad})
        await expect("POST", "/v1/paid-transactions", "merchant_id",
                     json={"items": [{"merchant_id": bad, "date": "2026-11-01", "count": 1}]})
    for bad in ["m" * 201, "m%00", "m%0A", "%7F"]:
        await expect("GET", f"/v1/staffing/{bad}", "merchant_id", params={"from": "2026-11-01", "to": "2026-11-02"})
        await expect("POST", f"/v1/service-express/{bad}/requalify", "manufacturer_id", json={"note": "n"})
    for bad in ["o" * 65, "o%00", "o%0D%0A"]:
        await expect("GET", f"/v1/facts/service-orders/{bad}", "order_id")
    await expect("GET", "/v1/statistics/2026-11", "top", params={"top": HUGE})
    await expect("GET", "/v1/statistics/2026-11", "top", params={"top": "0"})

    # the paid-transactions ingest: counts and dates bounded, ids trimmed
    for item in [{"count": 10 ** 12 + 1}, {"count": 2 ** 63}, {"count": -1},
                 {"merchant_id": " m-1"}, {"merchant_id": "m-1 "}]:
        field = next(iter(item))
        await expect("POST", "/v1/paid-transactions", field,
                     json={"items": [{"merchant_id": "m-1", "date": "2026-11-01", "count": 1, **item}]})
    for count in (b"1e400", b"Infinity", b"NaN", b"9" * 400):
        await expect("POST", "/v1/paid-transactions", "count", headers={**op, "content-type": "application/json"},
                     content=b'{"items": [{"merchant_id": "m-1", "date": "2026-11-01", "count": ' + count + b"}]}")

    # semantic checks keep their own codes (after the range checks)
    for url in WEEK_ROUTES:
        await expect("GET", url, "week", "invalid_week", params={"week": "2000-01-01"})  # a Saturday
    await expect("POST", "/v1/periods/2100-12-31/close", "week", "invalid_week")
    for url in WINDOW_ROUTES:
        await expect("GET", url, "to", "invalid_window", params={"from": "2026-11-30", "to": "2026-11-01"})
        await expect("GET", url, "to", "window_too_long", params={"from": "2026-01-01", "to": "2027-01-02"})  # 367 days
    assert failures == []


async def test_the_ends_of_the_supported_range_answer(kpi):
    """The first and last supported days work everywhere (no overflow at the edges), and
    list parameters the API does not have (offset, limit) are ignored, never a 500."""
    op = _auth(kpi, "platform_operator")
    c = kpi.client
    failures: list[str] = []

    async def ok(method, url, **kw):
        r = await c.request(method, url, headers=op, **kw)
        if r.status_code != 200:
            failures.append(f"{method} {url} {kw}: {r.status_code} {r.text[:200]}")

    for monday in (FIRST_MONDAY, LAST_MONDAY):
        for url in WEEK_ROUTES:
            await ok("GET", url, params={"week": monday})
        await ok("POST", f"/v1/periods/{monday}/close")
    for day in (FIRST_DAY.isoformat(), LAST_DAY.isoformat()):
        for url in INDEX_ROUTES:
            await ok("GET", url, params={"date": day})
        for url in WINDOW_ROUTES:
            await ok("GET", url, params={"from": day, "to": day})
    for url in WINDOW_ROUTES:  # the longest window: 366 days (a leap year)
        await ok("GET", url, params={"from": "2096-01-01", "to": "2096-12-31"})
    for period in ("2000-01", "2100-12", "2000-Q1", "2100-Q4"):
        await ok("GET", f"/v1/statistics/{period}", params={"top": 50})
    for month in ("2000-01", "2100-12"):
        await ok("GET", "/v1/billing", params={"month": month})
    await ok("POST", "/v1/paid-transactions", json={"items": [
        {"merchant_id": "m" * 200, "date": FIRST_DAY.isoformat(), "count": 10 ** 12},
        {"merchant_id": "商家 1", "date": "2026-11-01", "count": 0}]})
    for url, params in [("/v1/penalties", {}), ("/v1/billing", {}), ("/v1/service-express/disqualifications", {}),
                        ("/v1/rankings/weekly", {"week": "2026-11-16"}),
                        ("/v1/paid-transactions", {"from": "2026-11-01", "to": "2026-11-30"})]:
        await ok("GET", url, params={**params, "offset": HUGE, "limit": HUGE})
    assert failures == []


def test_openapi_declares_a_bound_for_every_parameter():
    """A parameter added later without a bound fails here: strings have a length or a
    pattern, integers a minimum and a maximum, dates the supported range."""
    from kpi.app import create_app
    from kpi.settings import KpiSettings

    doc = create_app(KpiSettings(environment="test")).openapi()
    unbounded = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for prm in op.get("parameters", []):
                if prm["in"] not in ("query", "path"):
                    continue
                schema = prm["schema"]
                schema = next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)
                kind = (schema.get("type"), schema.get("format"))
                if kind == ("string", "date"):
                    ok = f"{FIRST_DAY}..{LAST_DAY}" in prm.get("description", "")
                elif kind[0] == "string":
                    ok = "maxLength" in schema or "pattern" in schema
                elif kind[0] == "integer":
                    ok = "minimum" in schema and "maximum" in schema
                else:
                    ok = False
                if not ok:
                    unbounded.append(f"{method.upper()} {path} {prm['name']}: {schema}")
    assert unbounded == []


# ---------------------------------------------------------------- merchant isolation

A, B = "merchant-alpha", "merchant-bravo"
W = "2026-11-16"


async def _routing(feed, **data):
    from shared.events import make_envelope
    from shared.topics import ROUTING_EVENTS

    type_ = data.pop("type_")
    at = data.get("decided_at") or data.get("occurred_at")
    await feed.send(ROUTING_EVENTS, make_envelope(type_=type_, key=data["manufacturer_id"],
                                                  producer="consultation-routing", occurred_at=at, data=data),
                    data["manufacturer_id"])


async def _seed(kpi, feed) -> dict[str, str]:
    """The same history for A and B: late audits (scorecards, rankings, flags), a 48 h
    penalty, on-behalf orders and billable consultations (billing, service express,
    staffing), refund cases (composite index), paid transactions; weeks closed
    (flags and disqualifications published). Answers one order id of each."""
    orders = {}
    for m in (A, B):
        for day in (3, 10, 17):
            c = bj(2026, 11, day, 9)
            oid = await feed.created(m, c, on_behalf=True, mode="platform")
            await feed.act(oid, m, c, "audit.reject", c + 20 * H, 2, to_state="rejected")
            orders[m] = oid
        await feed.penalty(orders[m], bj(2026, 11, 19, 12))
        for day in (10, 17):
            t = bj(2026, 11, day, 10)
            await _routing(feed, type_="routing.decided", decision_id=f"ok-{m}-{day}", decided_at=t, channel="im",
                           entry_point="product_page", phase="pre_sale", target="manufacturer", reason="enrolled",
                           manufacturer_id=m)
            await _routing(feed, type_="routing.decided", decision_id=f"no-{m}-{day}", decided_at=t, channel="im",
                           entry_point="product_page", phase="pre_sale", target="platform", reason="no_agents",
                           manufacturer_id=m)
            await _routing(feed, type_="routing.billable_consultation", consultation_id=f"no-{m}-{day}",
                           manufacturer_id=m, package=1, cause="no_agents", channel="im", occurred_at=t)
    op = _auth(kpi, "platform_operator")
    r = await kpi.client.post("/v1/paid-transactions", headers=op, json={"items": [
        {"merchant_id": m, "date": "2026-11-10", "count": 100} for m in (A, B)]})
    assert r.status_code == 200, r.text

    async def applied():
        got = []
        for url, params in [("/v1/rankings/weekly", {"week": W}), ("/v1/penalties", {}),
                            ("/v1/service-express/scores", {"week": W}), ("/v1/billing", {"month": "2026-11"}),
                            ("/v1/composite-index", {"date": "2026-11-30"})]:
            text = (await kpi.client.get(url, params=params, headers=op)).text
            got.append(A in text and B in text)
        bills = (await kpi.client.get("/v1/billing", headers=op)).json()["lines"]
        return all(got) and sum(x["quantity"] for x in bills if x["item"] == "consultation_package_1") == 4

    await eventually(applied)
    flagged, disqualified = [], []
    for week in ("2026-11-09", W):
        r = await kpi.client.post(f"/v1/periods/{week}/close", headers=op)
        assert r.status_code == 200, r.text
        flagged += r.json()["flagged"]
        disqualified += r.json()["disqualified"]
    assert sorted(flagged) == [A, B] and sorted(disqualified) == [A, B]
    return orders


async def test_a_merchant_never_sees_another_merchants_rows(kpi, feed):
    kpi.runtime.clock = ManualClock(bj(2026, 11, 30, 12))
    orders = await _seed(kpi, feed)
    c = kpi.client
    op = _auth(kpi, "platform_operator")
    window = {"from": "2026-11-01", "to": "2026-11-30"}
    reads = [("/v1/scorecards/weekly", {"week": W}), ("/v1/scorecards/weekly.csv", {"week": W}),
             ("/v1/rankings/weekly", {"week": W}), ("/v1/flags", {"week": W}), ("/v1/penalties", {}),
             ("/v1/penalties", {"week": W}), ("/v1/service-express/scores", {"week": W}),
             ("/v1/service-express/disqualifications", {}), ("/v1/billing", {}),
             ("/v1/billing", {"month": "2026-11"}), ("/v1/composite-index", {"date": "2026-11-30"}),
             ("/v1/composite-index.csv", {"date": "2026-11-30"}), ("/v1/paid-transactions", window)]
    own = [(f"/v1/staffing/{A}", window), (f"/v1/facts/service-orders/{orders[A]}", {})]
    for url, params in reads:  # the data is there: an operator sees both merchants
        text = (await c.get(url, params=params, headers=op)).text
        assert A in text and B in text, (url, text)
    staff = {"authorization": "Bearer " + issue_token(
        Principal("merchant_staff", "staff-a", merchant_id=A, permissions=frozenset({"audit", "process"})),
        kpi.runtime.settings.token_secret, now=kpi.runtime.clock.now())}
    for who in (_auth(kpi, "merchant_main", A), staff):
        for url, params in reads + own:
            r = await c.get(url, params=params, headers=who)
            assert r.status_code == 200, (url, r.text)
            assert A in r.text and B not in r.text, (url, r.text)
        # asking for the other merchant by name: 403 (its order: 404, as if it did not exist)
        for url, params in [("/v1/scorecards/weekly", {"week": W, "merchant_id": B}),
                            ("/v1/scorecards/weekly.csv", {"week": W, "merchant_id": B}),
                            ("/v1/penalties", {"merchant_id": B}),
                            ("/v1/service-express/scores", {"week": W, "manufacturer_id": B}),
                            ("/v1/billing", {"manufacturer_id": B}),
                            ("/v1/composite-index", {"merchant_id": B}),
                            ("/v1/composite-index.csv", {"merchant_id": B}),
                            ("/v1/paid-transactions", {**window, "merchant_id": B}),
                            (f"/v1/staffing/{B}", window)]:
            r = await c.get(url, params=params, headers=who)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (url, r.text)
        r = await c.get(f"/v1/facts/service-orders/{orders[B]}", headers=who)
        assert r.status_code == 404 and B not in r.text
        # operators' endpoints
        for method, url, kw in [("POST", f"/v1/periods/{W}/close", {}),
                                ("POST", f"/v1/service-express/{B}/requalify", {"json": {"note": "n"}}),
                                ("GET", "/v1/statistics/2026-11", {}),
                                ("POST", "/v1/paid-transactions",
                                 {"json": {"items": [{"merchant_id": B, "date": "2026-11-10", "count": 0}]}})]:
            r = await c.request(method, url, headers=who, **kw)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (url, r.text)

    # a merchant token that names no merchant (it saw every merchant's paid transactions): refused
    nobody = _auth(kpi, "merchant_main")
    for url, params in reads + own:
        r = await c.get(url, params=params, headers=nobody)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (url, r.text)
