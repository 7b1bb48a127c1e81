"""The console's pages in-process, on the real orders service (its token endpoint checks
the credentials; its events feed the read model): who can sign in, which pages each role
opens, CSRF, sessions, the live part, CSV exports. (The browser tests in tests/console
drive all of it in Chromium against the whole platform.)"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from functools import partial

import httpx
import pytest

from console.adapters.platform import ServiceUnavailable, parse_metrics
from console.app import create_app
from console.settings import ConsoleSettings
from orders.app import create_app as orders_app
from orders.settings import OrdersSettings
from shared.auth import Principal, issue_token
from shared.testing import eventually

from .metrics_texts import NOTIFIER, ORDERS, ROUTING, SLA_TIMER

pytestmark = pytest.mark.broker


@pytest.fixture
def db_backend() -> str:
    """SQLite only: these tests are about the pages; the read model runs on both databases
    in test_read_model.py."""
    return "sqlite"


class Hosts(httpx.AsyncBaseTransport):
    """The services by host name, in-process; any other host does not answer."""

    def __init__(self, apps: dict) -> None:
        self.apps = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.host)
        if app is None:
            raise httpx.ConnectError(f"{request.url.host} does not answer", request=request)
        return await app.handle_async_request(request)


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 11, 1, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _ok(r: httpx.Response, *codes: int) -> dict:
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


@pytest.fixture
async def setup(start_service, database_url):
    orders = await start_service(orders_app, OrdersSettings, database_url=await database_url("orders"))
    boot = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "boot"),
                                                      orders.runtime.settings.token_secret)}
    creds = {}
    for name, role in (("operator", "platform_operator"), ("arbitrator", "arbitrator"), ("console", "platform_operator"),
                       ("storefront", "storefront")):
        out = _ok(await orders.client.post("/v1/platform/clients", headers=boot,
                                           json={"client_id": f"t-{name}", "role": role, "name": name}))
        creds[name] = (out["client_id"], out["client_secret"])
    merchant = _ok(await orders.client.post("/v1/platform/merchants", headers=boot, json={
        "id": "m-1", "name": "M1", "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": "400-000-1234",
        "return_address": "Beijing", "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"}]}))
    creds["merchant"] = (merchant["main_account"]["client_id"], merchant["main_account"]["client_secret"])
    wall = WallClock()
    console = await start_service(
        partial(create_app, wall_clock=wall, transport=Hosts({"orders": orders.app})), ConsoleSettings,
        database_url=await database_url("console"), orders_url="http://orders",
        token_url="http://orders/v1/oauth/token", service_client_id=creds["console"][0],
        service_client_secret=creds["console"][1], refresh_s=2)
    return orders, console, creds, wall


async def sign_in(client: httpx.AsyncClient, creds: tuple[str, str], next_path: str = "/") -> httpx.Response:
    form = await client.get("/login", params={"next": next_path})
    assert form.status_code == 200 and "csrf_token" in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return await client.post("/login", data={"csrf_token": csrf, "next": next_path, "client_id": creds[0],
                                             "client_secret": creds[1]})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def test_only_operators_and_arbitrators_sign_in(setup):
    _orders, console, creds, _wall = setup
    c = console.client
    await _pages_need_a_session(c)
    await _assets_are_served_by_the_console(c)
    for who, status, words in (("merchant", 403, "商家与前台账号不能登录"), ("storefront", 403, "商家与前台账号不能登录")):
        r = await sign_in(c, creds[who])
        assert r.status_code == status and words in r.text, r.text
        assert "console_session" not in c.cookies
    r = await sign_in(c, (creds["operator"][0], "wrong-secret"))
    assert r.status_code == 401 and "账号或密钥不正确" in r.text and "console_session" not in c.cookies
    # a form without its sign-in cookie token (posted from elsewhere) is refused before any check
    r = await c.post("/login", data={"csrf_token": "x", "client_id": creds["operator"][0],
                                     "client_secret": creds["operator"][1]})
    assert r.status_code == 403 and "console_session" not in c.cookies
    r = await sign_in(c, creds["operator"], "/overview")
    assert r.status_code == 303 and r.headers["location"] == "/overview"
    assert "console_session" in c.cookies
    page = await c.get("/overview")
    assert page.status_code == 200 and "平台总览" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    # a redirect after sign-in goes to this console only
    assert (await sign_in(c, creds["operator"], "//evil.example/x")).headers["location"] == "/"


async def _pages_need_a_session(c: httpx.AsyncClient) -> None:
    r = await c.get("/deadlines")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/deadlines"
    assert (await c.get("/overview", params={"part": "live"})).status_code == 401
    assert (await c.get("/overview/export/oldest.csv")).headers["location"] == "/login?next=/overview/export/oldest.csv"
    r = await c.post("/logout", data={"csrf_token": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/login?why=ended"


async def test_the_arbitrator_sees_no_operator_page(setup):
    _orders, console, creds, _wall = setup
    c = console.client
    assert (await sign_in(c, creds["arbitrator"])).headers["location"] == "/"
    assert (await c.get("/")).headers["location"] == "/overview"
    overview = await c.get("/overview")
    assert overview.status_code == 200
    assert 'data-nav="arbitration"' in overview.text and 'data-nav="deadlines"' not in overview.text
    for path in ("/deadlines", "/routing", "/notifications", "/merchants", "/merchants/m-1",
                 "/deadlines/export/due.csv"):
        r = await c.get(path)
        assert r.status_code == 403, (path, r.status_code)
    assert "无权访问" in (await c.get("/routing")).text
    assert (await c.get("/arbitration")).status_code == 200


async def test_overview_follows_the_events_and_exports(setup):
    orders, console, creds, _wall = setup
    c = console.client
    await sign_in(c, creds["operator"])
    storefront = {"Authorization": "Bearer " + _ok(await orders.client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": creds["storefront"][0],
                                 "client_secret": creds["storefront"][1]}))["access_token"], "X-Customer-Id": "c-1"}
    for n in range(3):
        _ok(await orders.client.post("/v1/storefront/service-orders", headers={**storefront, "Idempotency-Key": f"k{n}"},
                                     json={"merchant_id": "m-1", "customer_id": "c-1", "customer_phone": "13800138000",
                                           "customer_level": "regular", "sales_order_id": f"so-{n}",
                                           "order_line_id": "1", "sku": "sku-1", "category": "phones",
                                           "purchased_quantity": 1, "quantity": 1, "amount_paid": "199.00",
                                           "service_type": "return", "problem_type": "quality",
                                           "delivered_at": (orders.runtime.clock.now() - timedelta(days=1)).isoformat(),
                                           "description": "broken"}))

    async def three_open():
        live = await c.get("/overview", params={"part": "live"})
        assert live.status_code == 200
        return 'data-fig="open" data-raw="3"' in live.text and live
    live = await eventually(three_open)
    assert "3 单" in live.text and "<html" not in live.text  # the live part only
    csv = await c.get("/overview/export/oldest.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("number,merchant_id,state") and len(lines) == 4
    assert (await c.get("/overview/export/nope.csv")).status_code == 404
    # English on request; the figures stay
    await c.get("/lang/en", params={"next": "/overview"})
    assert "3 orders" in (await c.get("/overview")).text
    # the pages of services that do not answer say so, the rest of the page stays
    deadlines = await c.get("/deadlines")
    assert deadlines.status_code == 200 and "sla-timer unavailable" in deadlines.text


async def test_csrf_sign_out_and_session_lifetime(setup):
    _orders, console, creds, wall = setup
    c = console.client
    await sign_in(c, creds["operator"])
    page = (await c.get("/overview")).text
    token = csrf_of(page)
    assert (await c.post("/logout", data={"csrf_token": "forged"})).status_code == 403
    r = await c.post("/logout", data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = await c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login?why=signed_out"
    assert (await c.get("/overview")).status_code == 303
    # a session lasts session_ttl_s of wall-clock time
    await sign_in(c, creds["operator"])
    assert (await c.get("/overview")).status_code == 200
    wall.now += timedelta(seconds=console.runtime.settings.session_ttl_s + 1)
    assert (await c.get("/overview")).status_code == 303


async def _assets_are_served_by_the_console(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/plotly.min.js")
    assert r.status_code == 200 and b"plotly" in r.content[:2000].lower() and len(r.content) > 1_000_000
    again = await client.get("/static/plotly.min.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert (await client.get("/static/console.js")).status_code == 200
    assert (await client.get("/static/nope.js")).status_code == 404


def _charts(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="charts-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def _fake_metrics(console, monkeypatch) -> list[str]:
    """The services' /metrics at the gateway: four answer (the fixture pages, parsed as the
    gateway parses them), kpi does not."""
    asked: list[str] = []
    texts = {"orders": ORDERS, "sla-timer": SLA_TIMER, "notifier": NOTIFIER, "consultation-routing": ROUTING}

    async def metrics(service: str):
        asked.append(service)
        if service not in texts:
            raise ServiceUnavailable(service, "ConnectError")
        return parse_metrics(service, texts[service])
    monkeypatch.setattr(console.app.state.console.gateway, "metrics", metrics)
    return asked


async def test_the_pages_show_the_services_metrics(setup, monkeypatch):
    _orders, console, creds, _wall = setup
    asked = _fake_metrics(console, monkeypatch)
    c = console.client
    await sign_in(c, creds["operator"])
    await c.get("/lang/en", params={"next": "/platform"})

    page = await c.get("/platform")
    assert page.status_code == 200 and 'data-nav="platform"' in page.text
    assert sorted(asked) == ["consultation-routing", "kpi", "notifier", "orders", "sla-timer"]
    html = page.text
    # orders' broker check fails and kpi does not answer: 3 of 5 ready, kpi's trouble said in red
    assert 'data-fig="ready" data-raw="3"' in html and "3 / 5" in html
    assert "kpi unavailable: ConnectError" in html and "unreachable" in html
    assert 'data-fig="max_lag" data-raw="12.0"' in html and 'data-fig="dead_letters" data-raw="4"' in html
    assert 'data-fig="outbox_pending" data-raw="17"' in html and 'data-fig="outbox_oldest" data-raw="42.5"' in html
    charts = _charts(html)
    lag = charts["lag"]["data"][0]
    assert dict(zip(lag["y"], lag["x"])) == {"orders.deadlines": 12.0, "notifier.orders": 1.5,
                                             "sla-timer.orders": 0.4, "consultation-routing.orders": 0.0}
    assert dict(zip(charts["dead_letters"]["data"][0]["x"], charts["dead_letters"]["data"][0]["y"])) == {
        "orders": 1, "consultation-routing": 0, "sla-timer": 0, "notifier": 3}
    services = (await c.get("/platform/export/services.csv")).content.decode("utf-8-sig").splitlines()
    assert services[0] == "service,ready,failing,outbox_pending,outbox_oldest_s,dead_letters"
    assert "orders,False,broker,5.0,3.0,1" in services and "kpi,False,,—,—,—" in services
    consumers = (await c.get("/platform/export/consumers.csv")).content.decode("utf-8-sig").splitlines()
    assert "notifier,notifier.orders,1.5,4.0,3" in consumers and len(consumers) == 5

    deadlines = (await c.get("/deadlines")).text
    # p50/p99 of the firing lateness histogram (rank 6 of 12 tops the 0.1-0.25 s bucket; p99 is in
    # the open-ended one: its lower bound), pending timers by rule, the overdue gauge
    assert 'data-fig="lateness_p50" data-raw="0.25"' in deadlines and "0.25 s" in deadlines
    assert 'data-fig="lateness_p99" data-raw="3600.0"' in deadlines
    assert 'data-fig="pending" data-raw="10"' in deadlines and 'data-fig="overdue" data-raw="2.0"' in deadlines
    charts = _charts(deadlines)
    assert charts["pending_by_rule"]["data"][0]["y"] == [7, 3]
    assert sum(charts["lateness"]["data"][0]["y"]) == 12 and charts["lateness"]["data"][0]["x"][-1] == "≥ 1 h"

    notifications = await c.get("/notifications")
    charts = _charts(notifications.text)
    by_name = {d["name"]: dict(zip(d["x"], d["y"])) for d in charts["counted"]["data"]}
    assert by_name == {"Sent": {"in-site": 4, "SMS": 7}, "Failed": {"in-site": 0, "SMS": 1},
                       "Retries": {"in-site": 0, "SMS": 3}}
    counted = (await c.get("/notifications/export/counted.csv")).content.decode("utf-8-sig").splitlines()
    assert counted[0] == "channel,template,sent,failed,retries" and "sms,order_rejected,5,1,0" in counted

    charts = _charts((await c.get("/routing")).text)
    assert charts["share"]["data"][0]["values"] == [8, 4]
    reasons = {d["name"]: dict(zip(d["x"], d["y"])) for d in charts["reasons"]["data"]}
    assert reasons["manufacturer"]["enrolled"] == 8 and reasons["platform"]["out of hours"] == 3

    # arbitrators may not read /metrics from the services, so not the page either
    await c.post("/logout", data={"csrf_token": csrf_of((await c.get("/overview")).text)})
    await sign_in(c, creds["arbitrator"])
    assert (await c.get("/platform")).status_code == 403
    assert 'data-nav="platform"' not in (await c.get("/overview")).text


async def test_the_database_holds_no_usable_cookie_or_bearer_token(setup):
    """A stolen console database yields neither a session cookie (only its hash is kept) nor the
    person's bearer token (kept encrypted under a key derived from the cookie)."""
    from sqlalchemy import select

    from console.adapters.sessions import token_hash, unseal
    from console.api.web import SESSION_COOKIE
    from console.models import ConsoleSession

    _orders, console, creds, _wall = setup
    c = console.client
    await sign_in(c, creds["operator"])
    cookie = c.cookies[SESSION_COOKIE]
    async with console.runtime.sessions() as s:
        row = (await s.execute(select(ConsoleSession))).scalars().one()
    assert row.id_hash == token_hash(cookie) and cookie not in (row.id_hash, row.token)
    assert not row.token.startswith("eyJ")  # not a JWT in the clear
    assert unseal(cookie, row.token).startswith("eyJ")
    assert unseal("another cookie", row.token) is None
    assert (await c.get("/overview")).status_code == 200
    # a row whose token cannot be unsealed with the cookie is no session
    async with console.runtime.sessions() as s, s.begin():
        (await s.get(ConsoleSession, row.id_hash)).token = "tampered"
    assert (await c.get("/overview")).status_code == 303
