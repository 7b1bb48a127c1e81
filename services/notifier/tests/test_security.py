"""Delivery receipts are signed, time-bounded (±5 minutes of the service clock) and
accepted once (replay cache shared by replicas through the database); production refuses
the development gateway secret and the test provider; list and path parameters are bounded."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from notifier.models import Message, SeenNonce
from notifier.adapters.providers import sign
from notifier.settings import DEV_SMS_SECRET, NotifierSettings
from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.broker
SECRET = "receipt-test-secret-0123456789-abcdefghij"
PROVIDER_ID = "gw-sec-1"


def receipt(secret: str, at: datetime | int, status: str = "failed", nonce: str | None = None,
            message_id: str = PROVIDER_ID) -> tuple[bytes, dict]:
    raw = json.dumps({"message_id": message_id, "status": status, "detail": "空号"}).encode()
    ts = str(at if isinstance(at, int) else int(at.timestamp()))
    nonce = nonce or uuid.uuid4().hex
    return raw, {"content-type": "application/json", "x-timestamp": ts, "x-nonce": nonce,
                 "x-signature": sign(secret, ts, nonce, raw)}


async def sent_message(api) -> int:
    """A message the gateway accepted (provider id PROVIDER_ID), status ``sent``."""
    now = api.rt.clock.now()
    async with api.rt.uow() as s:
        m = Message(event_id=str(uuid.uuid4()), recipient="sms:13800138000", template_key="audit_rejected",
                    channel="sms", kind="audit_rejected", audience="customer", audience_id="c-1",
                    phone="13800138000", title="", body="x", status="sent", attempts=1, created_at=now,
                    sent_at=now, provider_message_id=PROVIDER_ID)
        s.add(m)
        await s.flush()
        return m.id


async def status_of(api, mid: int) -> str:
    async with api.rt.sessions() as s:
        return (await s.get(Message, mid)).status


async def post(api, raw: bytes, headers: dict):
    return await api.client.post("/v1/sms/receipts", content=raw, headers=headers)


@pytest.fixture
async def api(notifier_factory):
    return await notifier_factory(sms_gateway_secret=SECRET)


async def test_receipt_signed_with_the_development_secret_is_refused(api):
    mid = await sent_message(api)
    r = await post(api, *receipt(DEV_SMS_SECRET, api.rt.clock.now()))
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    assert await status_of(api, mid) == "sent"


@pytest.mark.parametrize("shift,accepted", [
    (timedelta(0), True), (timedelta(minutes=-4, seconds=-50), True), (timedelta(minutes=4, seconds=50), True),
    (timedelta(minutes=-5, seconds=-10), False), (timedelta(minutes=5, seconds=10), False),
])
async def test_receipt_timestamp_within_five_minutes_of_the_service_clock(api, shift, accepted):
    mid = await sent_message(api)
    api.rt.clock.advance(timedelta(days=3))  # the service clock, not the wall clock, decides
    r = await post(api, *receipt(SECRET, api.rt.clock.now() + shift))
    if accepted:
        assert r.status_code == 200 and await status_of(api, mid) == "failed", r.text
    else:
        assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
        assert await status_of(api, mid) == "sent"


async def test_receipt_from_1970_is_refused(api):
    mid = await sent_message(api)
    for ts in (1, 0, 999999999999):  # 1970, the epoch, year 33658
        r = await post(api, *receipt(SECRET, ts))
        assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp", ts
    assert await status_of(api, mid) == "sent"


async def test_replayed_receipt_is_refused_on_every_replica(api, notifier_factory):
    mid = await sent_message(api)
    failed = receipt(SECRET, api.rt.clock.now(), "failed")
    assert (await post(api, *failed)).status_code == 200
    delivered = receipt(SECRET, api.rt.clock.now(), "delivered")
    assert (await post(api, *delivered)).status_code == 200
    assert await status_of(api, mid) == "delivered"
    r = await post(api, *failed)  # the attacker replays the captured "failed" receipt
    assert r.status_code == 401 and r.json()["error"]["code"] == "replayed"
    assert await status_of(api, mid) == "delivered"
    # A second replica on the same database refuses it too (the cache is a table).
    replica = await notifier_factory(sms_gateway_secret=SECRET,
                                     database_url=api.rt.settings.database_url)
    r = await post(replica, *failed)
    assert r.status_code == 401 and r.json()["error"]["code"] == "replayed"
    # Same nonce, different body: the signature no longer matches.
    raw, headers = failed
    r = await post(api, raw.replace(b"failed", b"delivered"), headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    assert await status_of(api, mid) == "delivered"


async def test_concurrent_copies_of_a_receipt_apply_once(api):
    import asyncio

    mid = await sent_message(api)
    copy = receipt(SECRET, api.rt.clock.now(), "failed")
    rs = await asyncio.gather(*(post(api, *copy) for _ in range(6)))
    assert sorted(r.status_code for r in rs) == [200] + [401] * 5
    assert {r.json()["error"]["code"] for r in rs if r.status_code == 401} == {"replayed"}
    assert await status_of(api, mid) == "failed"


async def test_refused_receipt_does_not_use_up_its_nonce(api):
    unknown = receipt(SECRET, api.rt.clock.now(), message_id="gw-not-yet")
    assert (await post(api, *unknown)).status_code == 404
    assert (await post(api, *unknown)).status_code == 404  # not "replayed": nothing was applied
    async with api.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(SeenNonce)) == 0


async def test_expired_nonces_are_pruned(api):
    await sent_message(api)
    assert (await post(api, *receipt(SECRET, api.rt.clock.now(), nonce="first-nonce"))).status_code == 200
    api.rt.clock.advance(timedelta(minutes=6))
    assert (await post(api, *receipt(SECRET, api.rt.clock.now(), nonce="second-nonce"))).status_code == 200
    async with api.rt.sessions() as s:
        assert (await s.scalars(select(SeenNonce.nonce))).all() == ["second-nonce"]
    # Once its window is over a nonce may come again, with a fresh timestamp (and signature).
    api.rt.clock.advance(timedelta(minutes=6))
    assert (await post(api, *receipt(SECRET, api.rt.clock.now(), nonce="second-nonce"))).status_code == 200


async def test_missing_or_malformed_signature_is_401(api):
    mid = await sent_message(api)
    raw, good = receipt(SECRET, api.rt.clock.now())
    operator = api.operator  # a bearer token is no signature
    cases = [
        ({}, "missing_signature"),
        (operator, "missing_signature"),
        ({k: v for k, v in good.items() if k != "x-signature"}, "missing_signature"),
        ({k: v for k, v in good.items() if k != "x-nonce"}, "missing_signature"),
        ({k: v for k, v in good.items() if k != "x-timestamp"}, "missing_signature"),
        (good | {"x-signature": "0" * 64}, "bad_signature"),
        (good | {"x-signature": "zz" * 32}, "bad_signature"),
        (good | {"x-signature": "é".encode("latin-1") * 64}, "bad_signature"),
        (good | {"x-timestamp": "1e9"}, "bad_signature"),
        (good | {"x-timestamp": "9" * 400}, "bad_signature"),
        (good | {"x-nonce": "short"}, "bad_signature"),
        (good | {"x-nonce": "n" * 65}, "bad_signature"),
        (good | {"x-nonce": "has space-12345"}, "bad_signature"),
    ]
    for headers, code in cases:
        r = await post(api, raw, {"content-type": "application/json", **headers})
        assert r.status_code == 401 and r.json()["error"]["code"] == code, (headers, r.text)
    assert await status_of(api, mid) == "sent"
    r = await api.client.post("/v1/sms/receipts", content=b"x" * (17 * 1024), headers=good)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert (await post(api, raw, good)).status_code == 200  # the genuine one still works


# --- production settings ------------------------------------------------------------------------
SAFE = {"environment": "production", "database_url": "postgresql+asyncpg://u@h/db",
        "token_secret": secrets.token_urlsafe(32), "kafka_allow_plaintext": True}
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}


@pytest.fixture
def no_notifier_env(monkeypatch):
    for k in os.environ:
        if k.startswith("NOTIFIER_"):
            monkeypatch.delenv(k)


@pytest.mark.parametrize("overrides,named", [
    ({}, ["NOTIFIER_SMS_GATEWAY_SECRET", "NOTIFIER_SMS_PROVIDER"]),
    ({"sms_provider": "http"}, ["NOTIFIER_SMS_GATEWAY_SECRET"]),
    ({"sms_provider": "http", "sms_gateway_secret": "short-secret"}, ["NOTIFIER_SMS_GATEWAY_SECRET"]),
    ({"sms_provider": "http", "sms_gateway_secret": "ab" * 20}, ["NOTIFIER_SMS_GATEWAY_SECRET"]),
    ({"sms_gateway_secret": secrets.token_urlsafe(32)}, ["NOTIFIER_SMS_PROVIDER"]),
])
def test_production_refuses_development_secret_and_test_provider(no_notifier_env, overrides, named):
    with pytest.raises(SettingsError) as e:
        load_settings(NotifierSettings, **SAFE, **overrides)
    for name in named:
        assert name in str(e.value)
    for name in {"NOTIFIER_SMS_GATEWAY_SECRET", "NOTIFIER_SMS_PROVIDER"} - set(named):
        assert name not in str(e.value)


def test_production_accepts_a_real_secret_and_the_gateway(no_notifier_env):
    s = load_settings(NotifierSettings, **SAFE, sms_provider="http", sms_gateway_secret=secrets.token_urlsafe(32))
    assert s.sms_provider == "http"
    # Development and tests keep their defaults.
    assert load_settings(NotifierSettings, environment="development").sms_gateway_secret == DEV_SMS_SECRET


def test_production_start_fails_naming_the_settings():
    env = CLEAN_ENV | {"NOTIFIER_ENVIRONMENT": "production", "NOTIFIER_DATABASE_URL": SAFE["database_url"],
                       "NOTIFIER_TOKEN_SECRET": SAFE["token_secret"], "NOTIFIER_KAFKA_ALLOW_PLAINTEXT": "true"}
    result = subprocess.run([str(Path(sys.executable).parent / "notifier"), "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr[-1000:]
    assert "NOTIFIER_SMS_GATEWAY_SECRET" in result.stderr and "NOTIFIER_SMS_PROVIDER" in result.stderr


# --- edge values --------------------------------------------------------------------------------
@pytest.mark.parametrize("method,url", [
    ("GET", "/v1/messages?offset=9223372036854775808"),
    ("GET", "/v1/messages?offset=-1"),
    ("GET", "/v1/messages?offset=1000001"),
    ("GET", "/v1/messages?limit=0"),
    ("GET", "/v1/messages?limit=501"),
    ("GET", "/v1/messages?order_id=" + "o" * 65),
    ("GET", "/v1/messages?status=lost"),
    ("GET", "/v1/inbox?offset=9223372036854775808"),
    ("GET", "/v1/inbox?limit=201"),
    ("POST", "/v1/inbox/9223372036854775808/read"),
    ("POST", "/v1/inbox/0/read"),
    ("GET", "/v1/templates/" + "k" * 65 + "/versions"),
    ("PUT", "/v1/templates/" + "k" * 65),
    ("PUT", "/v1/templates/bad%20key"),
    ("POST", "/v1/templates/" + "k" * 65 + "/preview"),
    ("GET", "/v1/order-contacts/" + "o" * 65),
])
async def test_edge_values_are_refused_with_422(notifier, method, url):
    body = {"title": "t", "body": "单号${number}", "variables": ["number"]} if method == "PUT" else \
        {"variables": {}} if url.endswith("preview") else None
    headers = notifier.headers("merchant_main", merchant_id="m-1") if "inbox" in url else notifier.operator
    r = await notifier.client.request(method, url, json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_delivery_log_and_inbox_roles(notifier):
    arbitrator = notifier.headers("arbitrator")
    assert (await notifier.client.get("/v1/messages", headers=arbitrator)).status_code == 403
    for who in (arbitrator, notifier.operator):
        assert (await notifier.client.get("/v1/inbox", headers=who)).status_code == 403
        assert (await notifier.client.post("/v1/inbox/read-all", headers=who)).status_code == 403
    storefront = notifier.headers("storefront")  # no X-Customer-Id: acts for nobody
    r = await notifier.client.get("/v1/inbox", headers=storefront)
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_required"
    assert (await notifier.client.get("/v1/messages", headers=notifier.operator)).status_code == 200
    assert (await notifier.client.get("/v1/inbox", headers=notifier.headers("storefront", customer_id="c-1"))
            ).status_code == 200
