"""One regression test per finding of the security review (issue 14), each through the
real HTTP APIs of the running platform (tests/security/platform.py)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import httpx
import pytest

from shared.auth import ROLES, Principal, issue_token
from shared.broker import free_port
from shared.settings import DEV_TOKEN_SECRET
from tests.procs import BIN, ServiceProcess
from tests.security import matrix
from tests.security.platform import CUSTOMER_1, MANUFACTURER, MERCHANT_A, Platform, _ok, apply

PHONE = "13912345678"


def eventually(check, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s (last: {last!r})")
        time.sleep(interval)


def error_shaped(r: httpx.Response) -> bool:
    try:
        err = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(err, dict) and {"code", "message"} <= set(err)


# 1 ------------------------------------------------------------------------------------------------
def test_finding_1_sla_timer_needs_a_token_and_overrides_are_operator_only_and_audited(platform: Platform):
    sla = lambda path: platform.url("sla-timer", path)  # noqa: E731
    order = platform.ids["order_a"]
    timers = sla(f"/v1/service-orders/{order}/timers")
    override = sla("/v1/rules/auto_refund/overrides/merchant/sec-f1")
    calendar = sla("/v1/calendar/overrides/2027-03-01")
    forged = [{"Authorization": f"Bearer {t}"} for t in matrix.forged_tokens(platform).values()]
    for headers in [{}, *forged]:
        assert httpx.get(timers, headers=headers).status_code == 401
        assert httpx.put(override, json={"enabled": False}, headers=headers).status_code == 401
        assert httpx.put(calendar, json={"working": False}, headers=headers).status_code == 401
    assert httpx.get(timers, headers=platform.auth("merchant_b")).status_code in (403, 404)
    assert httpx.get(timers, headers=platform.auth("storefront", CUSTOMER_1)).status_code == 403
    for who in ("merchant_a", "staff_all", "operator"):
        r = httpx.get(timers, headers=platform.auth(who))
        assert r.status_code == 200 and r.json()["items"], (who, r.text)
    for who in ("merchant_a", "staff_all", "arbitrator"):
        assert httpx.put(override, json={"enabled": False}, headers=platform.auth(who)).status_code == 403
        assert httpx.put(calendar, json={"working": False}, headers=platform.auth(who)).status_code == 403
    assert httpx.put(override, json={"enabled": False}, headers=platform.auth("operator")).status_code == 200
    log = httpx.get(sla("/v1/audit-log"), params={"kind": "rule_override"}, headers=platform.auth("operator"))
    entry = next(e for e in log.json()["items"] if e["scope_id"] == "sec-f1")
    assert entry["actor"] == "sec-operator" and entry["new"]["enabled"] is False and "old" in entry
    assert httpx.get(sla("/v1/audit-log"), headers=platform.auth("merchant_a")).status_code == 403


# 2 ------------------------------------------------------------------------------------------------
def test_finding_2_admin_is_operator_only_and_dead_letters_are_masked(platform: Platform):
    for service, base in platform.urls.items():
        for method, path, body in (("GET", "/admin/dead-letters", None), ("GET", "/admin/outbox", None),
                                   ("GET", "/admin/clock", None), ("POST", "/admin/clock/advance",
                                                                   {"seconds": 315360000})):
            assert httpx.request(method, base + path, json=body).status_code == 401, (service, path)
            assert httpx.request(method, base + path, json=body,
                                 headers=platform.auth("merchant_a")).status_code == 403, (service, path)
        # the suite runs on the system clock: even an operator cannot move it here
        assert httpx.post(base + "/admin/clock/advance", json={"seconds": 60},
                          headers=platform.auth("operator")).status_code == 409
    # a message no consumer can apply, carrying a customer's phone, is parked masked
    marker = f"sec-dl-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(platform, "orders.events", ('{"id": "%s", "customer_phone": "%s", ' % (marker, PHONE)).encode()))

    def parked() -> list[str]:
        found = []
        for service, base in platform.urls.items():
            r = httpx.get(base + "/admin/dead-letters", params={"limit": 500}, headers=platform.auth("operator"))
            found += [f"{service}: {json.dumps(item)}" for item in r.json()["items"] if marker in json.dumps(item)]
        return found

    rows = eventually(parked, timeout=30)
    assert not [row for row in rows if PHONE in row], rows


async def _produce(platform: Platform, topic: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=platform.bootstrap, enable_idempotence=False)
    await p.start()
    try:
        await p.send_and_wait(topic, value, key=b"sec-dead-letter")
    finally:
        await p.stop()


# 3 ------------------------------------------------------------------------------------------------
def test_finding_3_routing_needs_a_token_takes_the_server_time_and_bills_once(platform: Platform):
    route = platform.url("consultation-routing", "/v1/route")
    q = {"channel": "im", "entry_point": "product_page", "sku": f"{MANUFACTURER}-sku"}
    at = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=15).isoformat()  # 23:00 Beijing
    assert httpx.get(route, params=q).status_code == 401
    assert httpx.get(route, params={**q, "at": at}).status_code == 401
    storefront = platform.auth("storefront", CUSTOMER_1)
    assert httpx.get(route, params={**q, "at": at}, headers=storefront).status_code == 403

    def billed() -> int:
        r = httpx.get(platform.url("kpi", "/v1/billing"), params={"manufacturer_id": MANUFACTURER},
                      headers=platform.auth("operator"))
        body = _ok(r)
        lines = body["lines"] if isinstance(body, dict) else body
        return sum(line["quantity"] for line in lines if line["item"].startswith("consultation"))

    before = billed()
    for _ in range(5):  # an operator's what-if: answered, never billed nor scored
        r = httpx.get(route, params={**q, "at": at}, headers=platform.auth("operator"))
        assert r.status_code == 200 and r.json()["what_if"] is True
    cid = uuid.uuid4().hex[:12]
    decisions = {_ok(httpx.get(route, params={**q, "consultation_id": f"{cid}-1"}, headers=storefront))["decision_id"]
                 for _ in range(3)}
    assert len(decisions) == 1  # one consultation, asked three times
    _ok(httpx.get(route, params={**q, "consultation_id": f"{cid}-2"}, headers=storefront))
    # one partition: once the last consultation is billed, everything before it was applied
    eventually(lambda: billed() >= before + 2, timeout=30)
    assert billed() == before + 2


# 4 ------------------------------------------------------------------------------------------------
def test_finding_4_sms_receipts_are_signed_fresh_and_not_replayable(platform: Platform):
    from notifier.adapters.providers import sign

    url = platform.url("notifier", "/v1/sms/receipts")
    body = json.dumps({"message_id": platform.ids["sms_provider_id"], "status": "delivered"}).encode()

    def signed(ts: int, secret: str = platform.sms_secret, nonce: str | None = None) -> dict:
        nonce = nonce or uuid.uuid4().hex
        return {"content-type": "application/json", "x-timestamp": str(ts), "x-nonce": nonce,
                "x-signature": sign(secret, str(ts), nonce, body)}

    def now() -> int:  # read at each request: on a busy machine seconds pass between them
        return int(time.time())
    assert httpx.post(url, content=body, headers={"content-type": "application/json"}).status_code == 401
    assert httpx.post(url, content=body, headers=signed(now(), secret="dev-sms-secret")).status_code == 401
    assert httpx.post(url, content=body, headers=signed(1)).status_code == 401  # 1970
    # just outside the ±5 minutes (a second of slack for the truncation and the trip)
    assert httpx.post(url, content=body, headers=signed(now() - 302)).status_code == 401
    assert httpx.post(url, content=body, headers=signed(now() + 302)).status_code == 401
    fresh = signed(now())
    assert httpx.post(url, content=body, headers=fresh).status_code == 200
    assert httpx.post(url, content=body, headers=fresh).status_code == 401  # replayed


def test_finding_4_production_refuses_the_development_sms_secret_and_the_log_provider(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(NOTIFIER_ENVIRONMENT="production", NOTIFIER_DATABASE_URL="postgresql+asyncpg://db/notifier",
               NOTIFIER_TOKEN_SECRET=secrets.token_urlsafe(48), NOTIFIER_DATA_DIR=str(tmp_path),
               NOTIFIER_KAFKA_ALLOW_PLAINTEXT="true")
    out = subprocess.run([str(BIN / "notifier"), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "NOTIFIER_SMS_GATEWAY_SECRET" in out.stderr and "NOTIFIER_SMS_PROVIDER" in out.stderr, out.stderr[-2000:]


# 5 ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_service(tmp_path_factory):
    """An orders process of its own for the token endpoint (no broker needed): its failure
    counts start at zero, and locking out 127.0.0.1 there locks out no other test."""
    workdir = tmp_path_factory.mktemp("token-endpoint")
    secret = secrets.token_urlsafe(48)
    proc = ServiceProcess("orders", "ORDERS_", database_url=f"sqlite+aiosqlite:///{workdir}/orders.db",
                          kafka_bootstrap=f"127.0.0.1:{free_port()}", token_secret=secret, data_dir=str(workdir),
                          log_level="WARNING")
    proc.start()
    op = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "sec-boot"), secret)}
    clients = {}
    for n in range(6):
        r = httpx.post(proc.url + "/v1/platform/clients", headers=op, timeout=30,
                       json={"client_id": f"known-{n}", "role": "storefront", "name": f"known {n}"})
        clients[f"known-{n}"] = _ok(r)["client_secret"]
    try:
        yield proc, clients
    finally:
        proc.stop()


def _attempt(base: str, client_id: str, client_secret: str) -> httpx.Response:
    return httpx.post(base + "/v1/oauth/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret})


def test_finding_5_token_endpoint_limits_failed_attempts_per_client(token_service):
    proc, clients = token_service
    answers = [_attempt(proc.url, "known-0", f"wrong-{n}") for n in range(8)]
    codes = [r.status_code for r in answers]
    assert codes[0] == 401 and 429 in codes, codes
    locked = answers[codes.index(429)]
    assert int(locked.headers["Retry-After"]) > 0 and error_shaped(locked)
    assert _attempt(proc.url, "known-0", clients["known-0"]).status_code == 429  # locked, even with the secret
    assert _attempt(proc.url, "known-1", clients["known-1"]).status_code == 200  # another client is not


def test_finding_5_hashing_leaves_the_loop_free_and_unknown_ids_take_as_long(token_service):
    proc, _clients = token_service

    def timed(client_id: str) -> float:
        t = time.perf_counter()
        assert _attempt(proc.url, client_id, "wrong").status_code == 401
        return time.perf_counter() - t

    known = statistics.median(timed(f"known-{n}") for n in range(2, 6))
    unknown = statistics.median(timed(f"nobody-{uuid.uuid4().hex[:6]}") for _ in range(4))
    assert unknown >= 0.5 * known, (unknown, known)  # was 4 ms against 78 ms
    with ThreadPoolExecutor(6) as pool:  # wrong secrets hashed while /health is asked
        futures = [pool.submit(_attempt, proc.url, f"nobody-{n}", "wrong") for n in range(6)]
        health = []
        for _ in range(10):
            t = time.perf_counter()
            httpx.get(proc.url + "/health", timeout=10)
            health.append(time.perf_counter() - t)
        [f.result() for f in futures]
    assert statistics.median(health) < 0.2, health  # was 585 ms with the hash on the event loop


def test_finding_5_token_endpoint_limits_failed_attempts_per_source_address(token_service):
    proc, clients = token_service
    codes = [_attempt(proc.url, f"spray-{n}", "wrong").status_code for n in range(40)]  # one try per id
    assert 429 in codes, codes
    assert _attempt(proc.url, "known-5", clients["known-5"]).status_code == 429  # this address is locked out


# 6 ------------------------------------------------------------------------------------------------
def test_finding_6_deactivation_and_permission_changes_revoke_tokens_on_the_next_request(platform: Platform):
    orders = platform.url("orders", "/v1/merchant/service-orders")
    fact = platform.url("kpi", f"/v1/facts/service-orders/{platform.ids['order_a']}")
    old, demoted = platform.auth("staff_revoked"), platform.auth("staff_demoted")
    assert httpx.get(orders, headers=old).status_code == 200 and httpx.get(fact, headers=old).status_code == 200
    staff = lambda name: platform.url("orders", f"/v1/merchant/staff/{platform.ids[name]}")  # noqa: E731
    _ok(httpx.patch(staff("staff_revoked"), json={"active": False}, headers=platform.auth("merchant_a")))
    _ok(httpx.patch(staff("staff_demoted"), json={"permissions": ["audit"]}, headers=platform.auth("merchant_a")))
    assert httpx.get(orders, headers=old).status_code == 401  # the very next request
    claim = platform.url("orders", f"/v1/merchant/service-orders/{platform.ids['order_a']}/claim")
    assert httpx.post(claim, json={}, headers=old).status_code == 401
    assert httpx.get(orders, headers=demoted).status_code == 401
    eventually(lambda: httpx.get(fact, headers=old).status_code == 401, timeout=15)  # other services: the event
    cid, secret = platform.credentials["staff_revoked"]
    assert platform.token_for(cid, secret).status_code == 401
    cid, secret = platform.credentials["staff_demoted"]
    fresh = _ok(platform.token_for(cid, secret))["access_token"]
    assert httpx.get(orders, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


# 7 ------------------------------------------------------------------------------------------------
def _caller(platform: Platform, op: matrix.Operation) -> dict:
    roles = op.policy.get("roles", ())
    for role, headers in (("platform_operator", platform.auth("operator")),
                          ("storefront", platform.auth("storefront", CUSTOMER_1)),
                          ("merchant_main", platform.auth("merchant_a")), ("arbitrator", platform.auth("arbitrator"))):
        if role in roles:
            return headers
    return {}


def _is_date(schema: dict) -> bool:
    return schema.get("format") == "date" or any(_is_date(s) for s in schema.get("anyOf", ()))


def test_finding_7_edge_values_answer_422_in_the_error_shape(platform: Platform):
    """Every offset / limit in the live OpenAPI with 2**63, every date with year 1 and 9999."""
    ops = [op for op in matrix.live_operations(platform) if not op.policy.get("webhook")]
    pvalues, qvalues = matrix.path_values(platform), matrix.query_values()
    probes = []
    for op in ops:
        params = op.params("query") + op.params("path")
        for p in params:
            value = None
            if p["in"] == "query" and p["name"] in ("offset", "limit"):
                value = ["9223372036854775808"]
            elif _is_date(p.get("schema", {})):
                value = ["0001-01-01", "9999-12-31"]
            for v in value or ():
                probes.append((op, p, v))
    assert len(probes) >= 40, probes  # every offset, limit and date parameter: about 50 when written
    wrong = []
    with httpx.Client(timeout=30) as c:
        for op, p, v in probes:
            path = {**pvalues, p["name"]: v} if p["in"] == "path" else pvalues
            req = matrix.request_for(op, "operator", _caller(platform, op), platform, path, qvalues, valid_body=True)
            if p["in"] == "query":
                req["params"] = {**req["params"], p["name"]: v}
            r = c.request(**req)
            if r.status_code != 422 or not error_shaped(r) or p["name"] not in r.text:
                wrong.append(f"{op.label} {p['name']}={v}: {r.status_code} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)


# 8 ------------------------------------------------------------------------------------------------
def test_finding_8_attachment_names_refuse_controls_and_download_with_rfc6266(platform: Platform):
    order = apply(platform, MERCHANT_A, CUSTOMER_1, 8)["id"]
    base = platform.url("orders", f"/v1/merchant/service-orders/{order}")
    staff = platform.auth("staff_all")
    _ok(httpx.post(base + "/claim", json={}, headers=staff))

    def audit(filename: str) -> httpx.Response:
        return httpx.post(base + "/audit", headers=staff, json={
            "decision": "reject", "opinion": "see attachment",
            "attachments": [{"filename": filename, "content_type": "text/plain", "content_base64": "aGk="}]})

    for bad in ("a\r\nSet-Cookie: x=1.txt", "a\nb.txt", "nul\x00.txt", "del\x7f.txt"):
        r = audit(bad)
        assert r.status_code == 422 and error_shaped(r), (bad, r.text)
    name = '报告 "final"; v2.txt'
    _ok(audit(name))
    att = next(a for a in _ok(httpx.get(base, headers=staff))["attachments"] if a["filename"] == name)
    r = httpx.get(f"{base}/attachments/{att['id']}", headers=staff)
    assert r.status_code == 200 and r.content == b"hi"
    disposition = r.headers["content-disposition"]
    m = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
    assert m and unquote(m.group(1)) == name, disposition
    assert disposition.count('"') in (0, 2) and "\r" not in disposition and "\n" not in disposition


# 9 ------------------------------------------------------------------------------------------------
def test_finding_9_trust_model_documented_and_merchant_tokens_fail_closed(platform: Platform):
    for service, base in platform.urls.items():
        doc = httpx.get(base + "/openapi.json").json()
        flows = [s.get("flows", {}) for s in doc["components"]["securitySchemes"].values() if s["type"] == "oauth2"]
        assert any(f.get("clientCredentials", {}).get("tokenUrl", "").endswith("/v1/oauth/token") for f in flows)
    for op in matrix.live_operations(platform):
        roles = set(op.policy.get("roles", ()))
        if "storefront" in roles and roles != set(ROLES):  # routes for the storefront (not "any caller")
            headers = [p for p in op.params("header") if p["name"].lower() == "x-customer-id"]
            assert headers and "trust" in headers[0].get("description", "").lower(), op.label
    # a merchant token naming no merchant sees nothing (it saw every merchant's paid transactions)
    no_merchant = platform.sign(Principal("merchant_main", "sec-nobody"))
    today = datetime.now(timezone.utc).date()
    r = httpx.get(platform.url("kpi", "/v1/paid-transactions"), headers=no_merchant,
                  params={"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()})
    assert r.status_code == 401
    assert httpx.get(platform.url("orders", "/v1/merchant/service-orders"), headers=no_merchant).status_code == 401
    # a token signed with the public development secret is a forged one
    dev = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "demo"), DEV_TOKEN_SECRET,
                                                    ttl=timedelta(days=3650))}
    for service, base in platform.urls.items():
        assert httpx.get(base + "/admin/outbox", headers=dev).status_code == 401, service
