"""The attack suite's platform: the embedded broker and the five services as real
processes (``<service> serve``), signed with a random secret, seeded through the APIs.

Orders runs on PostgreSQL when it is reachable (its fast path for order actions, an
ASGI layer ahead of FastAPI's dependencies, serves only on PostgreSQL, so the suite
attacks it too); the other services on SQLite. Topics have one partition, so events
keep their order end to end (the routing finding counts billable consultations)."""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from shared.auth import Principal, issue_token
from shared.broker import EmbeddedBroker
from shared.kafka import ensure_topics
from shared.testing import PG_ADMIN_DSN, PG_HOST, pg_available
from shared.topics import ALL_TOPICS
from tests.helpers import application
from tests.procs import ServiceProcess

# (service, its env prefix)
SERVICES = {
    "orders": "ORDERS_",
    "consultation-routing": "CONSULTATION_ROUTING_",
    "sla-timer": "SLA_TIMER_",
    "kpi": "KPI_",
    "notifier": "NOTIFIER_",
}

MERCHANT_A, MERCHANT_B = "sec-ma", "sec-mb"
CUSTOMER_1, CUSTOMER_2 = "sec-c1", "sec-c2"
MANUFACTURER = "sec-maker"  # enrolled in routing, a merchant of kind manufacturer in orders
SMS_SECRET = "sec-sms-" + secrets.token_hex(16)
# Figures the suite's tests record (matrix size, schemathesis counts), printed in the terminal summary.
REPORT: dict[str, str] = {}


@dataclass
class Platform:
    urls: dict[str, str]
    secret: str  # the token signing secret every service shares
    sms_secret: str
    tokens: dict[str, str] = field(default_factory=dict)  # principal name -> bearer token (from the token endpoint)
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # principal name -> (client_id, secret)
    ids: dict[str, str] = field(default_factory=dict)  # seeded object ids: order_a, order_b, staff ...
    orders_backend: str = "sqlite"
    bootstrap: str = ""  # the broker

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    def auth(self, name: str, customer: str | None = None) -> dict:
        h = {"Authorization": f"Bearer {self.tokens[name]}"}
        if customer:
            h["X-Customer-Id"] = customer
        return h

    def sign(self, principal: Principal, **kw) -> dict:
        """A token for ``principal`` signed with the platform's secret (for claims no client has)."""
        return {"Authorization": "Bearer " + issue_token(principal, self.secret, **kw)}

    def token_for(self, client_id: str, client_secret: str) -> httpx.Response:
        return httpx.post(self.url("orders", "/v1/oauth/token"), timeout=30,
                          data={"grant_type": "client_credentials", "client_id": client_id,
                                "client_secret": client_secret})


def _wait_ready(procs: dict[str, ServiceProcess], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(procs)
    while pending:
        for name, p in list(pending.items()):
            if p.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {p.proc.stderr.read().decode()[-3000:]}")
            try:
                if httpx.get(p.url + "/ready", timeout=2).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {timeout}s: {sorted(pending)}")
        time.sleep(0.2)


async def _create_pg_database(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_HOST}/{name}"


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class PlatformRunner:
    """Starts and stops the broker and the five service processes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = EmbeddedBroker()
        self.procs: dict[str, ServiceProcess] = {}
        self.pg_db: str | None = None
        # The secret is random: tokens minted with the public development default are forged ones here.
        self.secret = secrets.token_urlsafe(48)

    def start(self) -> Platform:
        self.broker.start()
        asyncio.run(ensure_topics(self.broker.bootstrap, ALL_TOPICS, default_partitions=1))
        orders_db = f"sqlite+aiosqlite:///{self.workdir}/orders.db"
        backend = "sqlite"
        if pg_available():
            self.pg_db = f"t_{uuid.uuid4().hex[:12]}_security_orders"
            orders_db = asyncio.run(_create_pg_database(self.pg_db))
            backend = "postgres"
        elif os.environ.get("CI") == "true":
            raise RuntimeError("PostgreSQL at 127.0.0.1:5432 is not reachable in CI")
        common = dict(kafka_bootstrap=self.broker.bootstrap, token_secret=self.secret, clock="system",
                      kafka_topic_partitions="1", data_dir=str(self.workdir), log_json="true",
                      log_level="WARNING", outbox_poll_interval_s="0.1")
        orders_port = None
        for name, prefix in SERVICES.items():
            db = orders_db if name == "orders" else f"sqlite+aiosqlite:///{self.workdir}/{name.replace('-', '_')}.db"
            extra: dict[str, str] = {}
            if name == "notifier":
                extra = dict(sms_provider="log", sms_log_file=str(self.workdir / "sms.log"),
                             sms_gateway_secret=SMS_SECRET)
            if name == "orders":
                extra = dict(blob_dir=str(self.workdir / "blobs"))
            p = ServiceProcess(name, prefix, database_url=db, **common, **extra)
            if name == "orders":
                orders_port = p.port
            self.procs[name] = p
        for p in self.procs.values():
            p.env[f"{_prefix(p)}TOKEN_URL"] = f"http://127.0.0.1:{orders_port}/v1/oauth/token"
            p.proc = subprocess.Popen([str(_bin(p.command)), "serve"], env=p.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_ready(self.procs)
        platform = Platform(urls={n: p.url for n, p in self.procs.items()}, secret=self.secret,
                            sms_secret=SMS_SECRET, orders_backend=backend,
                            bootstrap=self.broker.bootstrap)
        seed(platform)
        return platform

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.procs) or 1) as pool:
            list(pool.map(lambda p: p.stop(), self.procs.values()))
        self.broker.stop()
        if self.pg_db:
            asyncio.run(_drop_pg_database(self.pg_db))


def _prefix(p: ServiceProcess) -> str:
    return SERVICES[p.command]


def _bin(command: str) -> Path:
    from tests.procs import BIN

    return BIN / command


# ------------------------------------------------------------------------------------------ seed
def _ok(r: httpx.Response, *codes: int) -> dict:
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _merchant_body(mid: str, kind: str = "pop_seller", mode: str = "pop_self_service") -> dict:
    return {"id": mid, "name": f"Merchant {mid}", "kind": kind, "mode": mode, "contact_phone": "400-000-1234",
            "return_address": "Beijing, 1 Return Rd",
            "skus": [{"sku": f"{mid}-sku", "category": "phones", "price": "199.00"}]}


def apply(platform: Platform, merchant: str, customer: str, n: int, **changes) -> dict:
    body = application(n, merchant_id=merchant, customer_id=customer, sku=f"{merchant}-sku",
                       sales_order_id=f"so-{merchant}-{n}", **changes)
    r = httpx.post(platform.url("orders", "/v1/storefront/service-orders"), json=body, timeout=30,
                   headers={**platform.auth("storefront", customer), "Idempotency-Key": f"sec-{merchant}-{n}"})
    return _ok(r, 200, 201)


def seed(platform: Platform) -> None:
    """Clients, merchants, staff, customers' orders, a manufacturer; every token from the token endpoint."""
    boot = platform.sign(Principal("platform_operator", "sec-bootstrap"))  # the first operator has no client yet
    o = lambda path: platform.url("orders", path)  # noqa: E731
    with httpx.Client(timeout=30) as c:
        for name, role in (("operator", "platform_operator"), ("storefront", "storefront"),
                           ("arbitrator", "arbitrator")):
            creds = _ok(c.post(o("/v1/platform/clients"), headers=boot,
                               json={"client_id": f"sec-{name}", "role": role, "name": f"security {name}"}))
            platform.credentials[name] = (creds["client_id"], creds["client_secret"])
        for key, mid, kind, mode in (("merchant_a", MERCHANT_A, "pop_seller", "pop_self_service"),
                                     ("merchant_b", MERCHANT_B, "pop_seller", "pop_self_service"),
                                     ("maker", MANUFACTURER, "manufacturer", "full_manufacturer")):
            out = _ok(c.post(o("/v1/platform/merchants"), headers=boot, json=_merchant_body(mid, kind, mode)))
            main = out["main_account"]
            platform.credentials[key] = (main["client_id"], main["client_secret"])
    _issue(platform, ("operator", "storefront", "arbitrator", "merchant_a", "merchant_b", "maker"))
    with httpx.Client(timeout=30) as c:
        for login, perms in (("auditor", ["audit"]), ("processor", ["process"]), ("all", ["audit", "process"]),
                             ("revoked", ["audit", "process"]), ("demoted", ["audit", "process"])):
            out = _ok(c.post(o("/v1/merchant/staff"), headers=platform.auth("merchant_a"),
                             json={"login": login, "name": f"staff {login}", "permissions": perms,
                                   "categories": ["phones"]}))
            creds = out["credentials"]
            platform.credentials[f"staff_{login}"] = (creds["client_id"], creds["client_secret"])
            platform.ids[f"staff_{login}"] = out["staff"]["id"]
    _issue(platform, ("staff_auditor", "staff_processor", "staff_all", "staff_revoked", "staff_demoted"))
    platform.ids["order_a"] = apply(platform, MERCHANT_A, CUSTOMER_1, 1)["id"]
    platform.ids["order_b"] = apply(platform, MERCHANT_B, CUSTOMER_2, 2)["id"]
    # a rejected order of customer 1 with an audit attachment: the rejection sends customer 1 an
    # SMS (a provider message id for the receipt webhook) and an in-site message
    rejected = platform.ids["order_rejected"] = apply(platform, MERCHANT_A, CUSTOMER_1, 3)["id"]
    base = platform.url("orders", f"/v1/merchant/service-orders/{rejected}")
    with httpx.Client(timeout=30) as c:
        _ok(c.post(base + "/claim", headers=platform.auth("staff_all"), json={}))
        _ok(c.post(base + "/audit", headers=platform.auth("staff_all"), json={
            "decision": "reject", "opinion": "not covered",
            "attachments": [{"filename": "evidence.txt", "content_type": "text/plain", "content_base64": "aGVsbG8="}]}))
        view = _ok(c.get(base, headers=platform.auth("staff_all")))
        platform.ids["att_a"] = view["attachments"][0]["id"]
    # routing: the manufacturer enrolled for phones with its SKU, and no agent online, so every
    # consultation for it goes to the platform on its behalf (billable), at any hour
    r = lambda path: platform.url("consultation-routing", path)  # noqa: E731
    with httpx.Client(timeout=30) as c:
        op = platform.auth("operator")
        _ok(c.put(r(f"/v1/manufacturers/{MANUFACTURER}/enrollment"), headers=op,
                  json={"name": "Maker", "categories": ["phones"], "im_queue_id": "q-maker",
                        "phone_extension": "8001"}))
        _ok(c.post(r("/v1/catalogue/skus"), headers={**op, "content-type": "text/csv"},
                   content=f"sku,manufacturer_id,category\n{MANUFACTURER}-sku,{MANUFACTURER},phones\n".encode()))
        _ok(c.put(r(f"/v1/queues/{MANUFACTURER}/state"), headers=op,
                  json={"agents_online": 0, "queue_length": 0}))
    _wait_for_events(platform)


def _issue(platform: Platform, names) -> None:
    for name in names:
        cid, sec = platform.credentials[name]
        platform.tokens[name] = _ok(platform.token_for(cid, sec))["access_token"]


def _wait_for_events(platform: Platform, timeout: float = 60) -> None:
    """The order events reached sla-timer (timers), kpi (facts) and notifier (contacts), so
    the matrix's ownership probes meet real objects (the owner gets 200, the other 404)."""
    order = platform.ids["order_a"]
    checks = {
        "sla-timer": (f"/v1/service-orders/{order}/timers", lambda j: bool(j.get("items"))),
        "kpi": (f"/v1/facts/service-orders/{order}", lambda j: True),
        "notifier": (f"/v1/order-contacts/{order}", lambda j: True),
    }
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as c:
        while checks:
            for svc, (path, good) in list(checks.items()):
                resp = c.get(platform.url(svc, path), headers=platform.auth("operator"))
                if resp.status_code == 200 and good(resp.json()):
                    del checks[svc]
            if time.monotonic() > deadline:
                raise AssertionError(f"order events not applied within {timeout}s: {sorted(checks)}")
            time.sleep(0.3)
        templates = c.get(platform.url("notifier", "/v1/templates"), headers=platform.auth("operator"))
        keys = [t["key"] for t in templates.json().get("items", [])] if templates.status_code == 200 else []
        platform.ids["template_key"] = keys[0] if keys else "sec-none"
        # the rejection's SMS (sent by the log provider) and in-site message for customer 1
        while True:
            msgs = c.get(platform.url("notifier", "/v1/messages"), headers=platform.auth("operator"),
                         params={"order_id": platform.ids["order_rejected"]}).json()["items"]
            sms = [m for m in msgs if m["channel"] == "sms" and m["provider_message_id"]]
            inbox = [m for m in msgs if m["channel"] == "inbox"]
            if sms and inbox:
                platform.ids["sms_provider_id"] = sms[0]["provider_message_id"]
                platform.ids["message_c1"] = str(inbox[0]["id"])
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the rejection's messages did not appear within {timeout}s: {msgs}")
            time.sleep(0.3)


def monday(now: datetime | None = None) -> str:
    d = ((now or datetime.now(timezone.utc)) + timedelta(hours=8)).date()
    return (d - timedelta(days=d.weekday())).isoformat()
