"""The operators' console in Chromium (Playwright), against the whole platform as `make run`
starts it (deploy/run_platform.py: broker, the five services, the console, demo data),
driven through the services' APIs first: a merchant cannot sign in; an operator sees every
page populated, watches a figure change without a reload, signs out; an arbitrator sees no
operator page and decides an arbitration from the page, and the order changes.

Screenshots of every page go to var/screenshots/ (git-ignored)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from playwright.sync_api import expect

from shared.broker import free_port, port_open
from tests.console.browser import chromium

# One platform start for both tests (about a minute on an idle machine); the bound is for a
# machine busy with other work, where starting seven Python processes takes minutes.
pytestmark = [pytest.mark.broker, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
PAGES = ("overview", "deadlines", "arbitration", "routing", "notifications", "merchants", "platform")


@dataclass
class Platform:
    urls: dict[str, str]
    creds: dict[str, tuple[str, str]]
    output: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    def token(self, client: str) -> dict:
        cid, secret = self.creds[client]
        r = httpx.post(self.url("orders", "/v1/oauth/token"), timeout=30,
                       data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
        assert r.status_code == 200, r.text
        return {"Authorization": "Bearer " + r.json()["access_token"]}


def _ports() -> int:
    """A base port with six free ports above it, below the kernel's ephemeral range (from
    32768), where other processes' outgoing connections take ports a listener can't bind."""
    import socket

    def bindable(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False
    for attempt in range(200):
        base = 20000 + (os.getpid() * 7 + int(time.monotonic() * 1000) + attempt * 13) % 12000
        if all(bindable(base + k) and not port_open(base + k) for k in range(6)):
            return base
    raise RuntimeError("no six free ports in a row")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    data = tmp_path_factory.mktemp("console-platform")
    env = dict(os.environ, PLATFORM_KAFKA_PORT=str(free_port()), PLATFORM_BASE_PORT=str(_ports()),
               PLATFORM_DATA_DIR=str(data), PLATFORM_READY_TIMEOUT="240",
               # the pages refresh every 2 s and reuse the services' answers for half a second
               CONSOLE_REFRESH_S="2", CONSOLE_SERVICE_CACHE_S="0.5")
    log = open(data / "platform.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "run_platform.py")], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    p = Platform({}, {})
    started = time.monotonic()
    try:
        for line in proc.stdout:
            p.output.append(line)
            m = re.match(r"^\s+(\S+)\s+(http://127\.0\.0\.1:\d+)\s", line)
            if m:
                p.urls[m.group(1)] = m.group(2)
            if "press Ctrl-C" in line or "failed:" in line:
                break
            assert time.monotonic() - started < 300, "".join(p.output)  # a loaded machine starts slowly
        assert "console" in p.urls and len(p.urls) == 6, \
            "".join(p.output) + "\n--- log ---\n" + (data / "platform.log").read_text()[-3000:]
        # keep reading what the script prints (a full pipe would stop it)
        threading.Thread(target=lambda: [p.output.append(x) for x in proc.stdout], daemon=True).start()
        demo = json.loads((data / "demo-credentials.json").read_text())
        p.creds = {cid: (c["client_id"], c["client_secret"]) for cid, c in demo["clients"].items()}
        drive(p)
        yield p
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ok(r: httpx.Response, *codes: int) -> dict:
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def apply(p: Platform, n: int, merchant: str = "pop-demo", sku: str = "phone-x1-black", category: str = "phones",
          amount: str = "1999.00") -> str:
    customer = f"console-c{n}"
    body = {"merchant_id": merchant, "customer_id": customer, "customer_phone": "13800138000",
            "customer_level": "diamond", "sales_order_id": f"SO-CONSOLE-{n}-{time.time_ns()}", "order_line_id": "1",
            "sku": sku, "category": category, "purchased_quantity": 1, "quantity": 1, "amount_paid": amount,
            "service_type": "return", "problem_type": "quality",
            "delivered_at": (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(), "description": "屏幕闪烁"}
    headers = {**p.token("demo-storefront"), "X-Customer-Id": customer, "Idempotency-Key": f"console-{n}-{time.time_ns()}"}
    return _ok(httpx.post(p.url("orders", "/v1/storefront/service-orders"), json=body, headers=headers, timeout=30))["id"]


def drive(p: Platform) -> None:
    """Orders in several states, an arbitration, a rejection (its SMS), consultations to
    the manufacturer and to the platform, and deadlines fired by moving the clock."""
    o = lambda path: p.url("orders", path)  # noqa: E731
    r = lambda path: p.url("consultation-routing", path)  # noqa: E731
    op = p.token("demo-operator")
    with httpx.Client(timeout=30) as c:
        # routing: the demo manufacturer serves appliances around the clock with agents online
        _ok(c.put(r("/v1/manufacturers/mfr-demo/enrollment"), headers=op, json={
            "name": "Demo appliances", "categories": ["appliances"], "phone_hours": {"start": "00:00", "end": "23:59"},
            "im_hours": {"start": "00:00", "end": "23:59"}, "serve_non_working_days": True,
            "im_queue_id": "q-mfr-demo", "phone_extension": "8001"}))
        _ok(c.put(r("/v1/queues/mfr-demo/state"), headers=op, json={"agents_online": 3, "queue_length": 0}))
    ids = [apply(p, n) for n in range(6)] + [apply(p, 10 + n, "mfr-demo", "fridge-300l", "appliances", "3299.00")
                                             for n in range(2)]
    arb, waiting, rejected = ids[0], ids[1], ids[2]
    p.ids.update(arbitration=arb, rejected=rejected)
    staff = p.token("pop-demo.audit1")
    with httpx.Client(timeout=30) as c:
        for order in (arb, waiting, rejected):
            _ok(c.post(o(f"/v1/merchant/service-orders/{order}/claim"), headers=staff, json={}))
        for order in (arb, waiting):
            _ok(c.post(o(f"/v1/merchant/service-orders/{order}/audit"), headers=staff,
                       json={"decision": "approve_return", "opinion": "同意退货"}))
        _ok(c.post(o(f"/v1/merchant/service-orders/{rejected}/audit"), headers=staff,
                   json={"decision": "reject", "opinion": "人为损坏，不予受理"}))
        customer = {**p.token("demo-storefront"), "X-Customer-Id": "console-c0"}
        _ok(c.post(o(f"/v1/storefront/service-orders/{arb}/shipment"), headers=customer,
                   json={"carrier": "SF", "tracking_number": "SF100200300"}))
        _ok(c.post(o(f"/v1/storefront/service-orders/{arb}/arbitration"), headers=customer,
                   json={"reason": "商家拒收退货"}))
        sf = p.token("demo-storefront")
        for n, (sku, channel) in enumerate([("fridge-300l", "phone")] * 3 + [("fridge-300l", "im"),
                                           ("no-such-sku", "phone"), ("case-x1", "im")]):
            _ok(c.get(r("/v1/route"), headers={**sf, "X-Customer-Id": f"console-c{n}"},
                      params={"channel": channel, "entry_point": "product_page", "sku": sku,
                              "consultation_id": f"console-{n}-{time.time_ns()}"}))
        # 31 minutes on: the first-response deadlines of the orders nobody claimed fire (escalations)
        _ok(c.post(o("/admin/clock/advance"), headers=op, json={"seconds": 31 * 60}))


def _context(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(90_000)  # generous: a machine busy with other work answers slowly
    return ctx


def _screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _rows(page, table: str) -> int:
    return page.locator(f'table[data-table="{table}"] tbody tr:not(.empty)').count()


def _fig(page, name: str) -> str:
    return page.locator(f'[data-fig="{name}"]').get_attribute("data-raw") or ""


def _sign_in(page, console: str, creds: tuple[str, str]) -> None:
    page.goto(console + "/login")
    page.fill('input[name="client_id"]', creds[0])
    page.fill('input[name="client_secret"]', creds[1])
    page.click('button[type="submit"]')


def _wait(check, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def test_operator_sees_every_page_live_and_signs_out(platform, browser):
    console = platform.urls["console"]
    ctx = _context(browser)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # a merchant's credentials do not open the console
    _sign_in(page, console, platform.creds["pop-demo.main"])
    assert page.url.startswith(console + "/login")
    assert "商家与前台账号不能登录" in page.locator("[data-login-message]").inner_text()
    assert not [c for c in ctx.cookies() if c["name"] == "console_session"]

    _sign_in(page, console, platform.creds["demo-operator"])
    page.wait_for_url(console + "/overview")
    # the events reached the console: every order driven, the arbitration, the escalations
    page.goto(console + "/deadlines")
    _wait(lambda: (page.reload() or True) and int(_fig(page, "open_escalations") or 0) >= 5,
          "the first-response escalations on the deadlines page")
    page.goto(console + "/routing")
    _wait(lambda: (page.reload() or True) and int(_fig(page, "decisions") or 0) >= 6, "the routing decisions")
    page.goto(console + "/notifications")
    _wait(lambda: (page.reload() or True) and int(_fig(page, "sent") or 0) >= 1, "the rejection's messages")

    expect_rows = {"overview": ["by_state", "oldest", "top_merchants"], "deadlines": ["due", "escalations", "fired"],
                   "arbitration": ["queue"], "routing": ["reasons", "manufacturers"],
                   "notifications": ["by_template"], "merchants": ["scorecards"],
                   "platform": ["services", "consumers"]}
    for name in PAGES:
        page.goto(f"{console}/{name}")
        assert page.locator("[data-error]").count() == 0, page.locator("[data-error]").all_inner_texts()
        for table in expect_rows[name]:
            assert _rows(page, table) > 0, (name, table)
        assert page.locator(".plot .main-svg").count() >= 1, f"{name}: no chart drawn"
        _screenshot(page, name)
    page.goto(console + "/overview")
    assert _fig(page, "arbitration") == "1"
    assert int(_fig(page, "total")) >= 11  # the 3 demo orders and the 8 driven here
    page.goto(f"{console}/merchants/pop-demo")
    assert page.locator("[data-error]").count() == 0 and _rows(page, "open_orders") > 0
    _screenshot(page, "merchant")
    page.goto(f"{console}/orders/{platform.ids['rejected']}")
    assert _rows(page, "timeline") >= 3 and _rows(page, "messages") >= 1
    _screenshot(page, "order")

    # live: a new application shows on the open page without a reload
    page.goto(console + "/overview")
    page.evaluate("window.__not_reloaded = true")
    before = int(_fig(page, "total"))
    apply(platform, 99)
    expect(page.locator('[data-fig="total"]')).to_have_attribute("data-raw", str(before + 1), timeout=30_000)
    assert page.evaluate("window.__not_reloaded === true")
    # sort and filter a table in place; its CSV export answers
    page.locator('table[data-table="oldest"] th').nth(5).click()
    page.fill('input[data-filter="oldest"]', "zzz-nothing")
    assert page.locator('table[data-table="oldest"] tbody tr:visible').count() == 0
    csv = ctx.request.get(console + "/overview/export/oldest.csv")
    assert csv.ok and csv.text().lstrip("\ufeff").startswith("number,merchant_id,state")
    # English on request
    page.click("[data-lang]")
    assert "Platform overview" in page.locator("h1").inner_text()
    page.click("[data-lang]")
    assert errors == [], errors

    page.click("[data-logout]")
    page.wait_for_url(re.compile(re.escape(console) + r"/login.*"))
    assert page.goto(console + "/overview").url.startswith(console + "/login")
    ctx.close()


def test_arbitrator_decides_from_the_page_and_sees_no_operator_page(platform, browser):
    console = platform.urls["console"]
    ctx = _context(browser)
    page = ctx.new_page()
    _sign_in(page, console, platform.creds["demo-arbitrator"])
    page.wait_for_url(console + "/overview")
    nav = page.locator("nav a").all_inner_texts()
    assert nav == ["总览", "仲裁"], nav
    for name in ("deadlines", "routing", "notifications", "merchants", "platform"):
        response = page.goto(f"{console}/{name}")
        assert response.status == 403 and page.locator("[data-forbidden]").count() == 1, name

    order = platform.ids["arbitration"]
    page.goto(console + "/arbitration")
    _wait(lambda: (page.reload() or True) and page.locator(f'a[href="/orders/{order}"]').count() == 1,
          "the arbitration in the queue")
    page.click(f'a[href="/orders/{order}"]')
    page.wait_for_url(f"{console}/orders/{order}")
    assert page.locator('[data-fig="state"]').get_attribute("data-raw") == "arbitration"
    page.select_option('select[name="outcome"]', "refund")
    page.fill('input[name="amount"]', "1999.00")
    page.fill('textarea[name="note"]', "商家拒收无依据，全额退款")
    page.click("[data-decision-form] button[type=submit]")
    page.wait_for_url(f"{console}/orders/{order}?done=decided")
    assert page.locator("[data-decided]").count() == 1
    assert page.locator('[data-fig="state"]').get_attribute("data-raw") == "completed"
    assert "仲裁裁决" in page.locator('table[data-table="timeline"]').inner_text()
    _screenshot(page, "arbitration-decided")
    # the orders service recorded the arbitrator's own decision
    view = _ok(httpx.get(platform.url("orders", f"/v1/platform/service-orders/{order}"),
                         headers=platform.token("demo-operator"), timeout=30))
    decide = [e for e in view["timeline"] if e["action"] == "arbitration.decide"]
    assert view["state"] == "completed" and decide and decide[0]["actor_id"] == "demo-arbitrator"
    page.click("[data-logout]")
    page.wait_for_url(re.compile(re.escape(console) + r"/login.*"))
    ctx.close()
