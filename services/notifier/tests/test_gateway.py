"""The HTTP SMS gateway provider against a local fake gateway: signing, failures with
backoff on the virtual clock, retry limit, delivery receipts; and the rate limit."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from notifier.adapters.providers import sign
from shared.testing import eventually

pytestmark = pytest.mark.broker
SECRET = "gateway-test-secret"


class FakeGateway:
    """Fails the next ``fail`` requests with 503, then accepts; checks the signature."""

    def __init__(self, port: int) -> None:
        self.fail = 0
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        app = FastAPI()

        @app.post("/sms/send")
        async def send(request: Request):
            raw = await request.body()
            h = request.headers
            if sign(SECRET, h["x-timestamp"], h["x-nonce"], raw) != h["x-signature"] or h["x-api-key"] != "k1":
                return JSONResponse({"error": "bad signature"}, status_code=401)
            body = json.loads(raw)
            self.requests.append(body)
            if self.fail > 0:
                self.fail -= 1
                return JSONResponse({"error": "busy"}, status_code=503)
            mid = f"gw-{uuid.uuid4().hex[:8]}"
            self.accepted.append(body | {"message_id": mid})
            return {"message_id": mid}

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms/send"


@pytest.fixture
async def gateway(port_factory):
    gw = FakeGateway(port_factory())
    task = asyncio.create_task(gw.server.serve())
    while not gw.server.started:
        await asyncio.sleep(0.02)
    yield gw
    gw.server.should_exit = True
    await task


def gateway_settings(url: str, **kw) -> dict:
    return {"sms_provider": "http", "sms_gateway_url": url, "sms_gateway_key": "k1", "sms_gateway_secret": SECRET,
            "retry_base_s": 30, "retry_max_attempts": 4, **kw}


def signed(body: dict, clock) -> tuple[bytes, dict]:
    """A receipt as the gateway sends it, timestamped on the service's (virtual) clock."""
    raw = json.dumps(body).encode()
    ts, nonce = str(int(clock.now().timestamp())), uuid.uuid4().hex
    return raw, {"content-type": "application/json", "x-timestamp": ts, "x-nonce": nonce,
                 "x-signature": sign(SECRET, ts, nonce, raw)}


async def sms(notifier, order_id: str) -> dict:
    [m] = [m for m in await notifier.messages(order_id) if m["channel"] == "sms"]
    return m


async def test_provider_down_then_up_sends_once_after_backoff(notifier_factory, feed_for, gateway):
    notifier = await notifier_factory(**gateway_settings(gateway.url))
    gateway.fail = 2
    o = feed_for(notifier)
    await o.created()
    await o.act("audit.reject", "rejected", opinion="超期")
    await eventually(lambda: _attempts(notifier, o.order_id, 1))
    m = await sms(notifier, o.order_id)
    assert m["status"] == "queued" and "503" in m["last_error"]
    await asyncio.sleep(0.3)  # the dispatcher keeps polling, but nothing is due before the backoff
    assert len(gateway.requests) == 1
    notifier.rt.clock.advance(timedelta(seconds=31))  # backoff 30 s after the first failure
    await eventually(lambda: _attempts(notifier, o.order_id, 2))
    notifier.rt.clock.advance(timedelta(seconds=31))
    assert (await sms(notifier, o.order_id))["status"] == "queued"  # second backoff is 60 s
    notifier.rt.clock.advance(timedelta(seconds=30))
    await eventually(lambda: _status(notifier, o.order_id, "sent"))
    m = await sms(notifier, o.order_id)
    assert m["attempts"] == 3 and len(gateway.requests) == 3 and len(gateway.accepted) == 1
    assert gateway.accepted[0]["to"] == "13800138000" and "超期" in gateway.accepted[0]["content"]
    assert m["provider_message_id"] == gateway.accepted[0]["message_id"]

    # the gateway posts a delivery receipt to the webhook
    raw, headers = signed({"message_id": m["provider_message_id"], "status": "delivered"}, notifier.rt.clock)
    r = await notifier.client.post("/v1/sms/receipts", content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    m = await sms(notifier, o.order_id)
    assert m["status"] == "delivered" and json.loads(m["receipt"])["status"] == "delivered"
    headers["x-signature"] = "0" * 64
    r = await notifier.client.post("/v1/sms/receipts", content=raw, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    raw, headers = signed({"message_id": "unknown", "status": "delivered"}, notifier.rt.clock)
    assert (await notifier.client.post("/v1/sms/receipts", content=raw, headers=headers)).status_code == 404


async def test_gateway_unreachable_fails_after_the_limit_with_the_reason(notifier_factory, feed_for, port_factory):
    notifier = await notifier_factory(**gateway_settings(f"http://127.0.0.1:{port_factory()}/sms/send", retry_max_attempts=3))
    o = feed_for(notifier)
    await o.created()
    await o.act("audit.reject", "rejected", opinion="x")
    for n in (1, 2):
        await eventually(lambda n=n: _attempts(notifier, o.order_id, n))
        notifier.rt.clock.advance(timedelta(seconds=30 * 2 ** (n - 1) + 1))
    await eventually(lambda: _status(notifier, o.order_id, "failed"))
    m = await sms(notifier, o.order_id)
    assert m["attempts"] == 3 and m["last_error"].startswith("gave up after 3 attempts: gateway unreachable")


async def test_receipt_reporting_failure_marks_the_message_failed(notifier_factory, feed_for, gateway):
    notifier = await notifier_factory(**gateway_settings(gateway.url))
    o = feed_for(notifier)
    await o.created()
    await o.act("audit.reject", "rejected", opinion="x")
    await eventually(lambda: _status(notifier, o.order_id, "sent"))
    m = await sms(notifier, o.order_id)
    raw, headers = signed({"message_id": m["provider_message_id"], "status": "failed", "detail": "空号"},
                          notifier.rt.clock)
    r = await notifier.client.post("/v1/sms/receipts", content=raw, headers=headers)
    assert r.json()["status"] == "failed"
    assert (await sms(notifier, o.order_id))["last_error"] == "provider receipt: 空号"


async def test_rate_limit_holds_the_excess_until_the_window_frees(notifier_factory, feed_for):
    notifier = await notifier_factory(rate_limit_per_window=2, rate_limit_window_s=3600)
    orders = [feed_for(notifier) for _ in range(3)]
    for o in orders:
        await o.created()
        await o.act("audit.reject", "rejected", opinion="x")

    async def split():
        msgs = {o.order_id: await sms_or_none(notifier, o.order_id) for o in orders}
        if any(m is None for m in msgs.values()):
            return None
        sent = [k for k, m in msgs.items() if m["status"] == "sent"]
        held = [k for k, m in msgs.items() if m["status"] == "queued" and (m["last_error"] or "").startswith("rate_limited")]
        return (sent, held) if len(sent) == 2 and len(held) == 1 else None

    sent, [held] = await eventually(split)  # arrival order across partitions is not fixed
    assert (await sms(notifier, held))["attempts"] == 0
    notifier.rt.clock.advance(timedelta(minutes=30))
    await asyncio.sleep(0.3)
    assert (await sms(notifier, held))["status"] == "queued"
    notifier.rt.clock.advance(timedelta(minutes=31))
    await eventually(lambda: _status(notifier, held, "sent"))


async def sms_or_none(notifier, order_id):
    msgs = [m for m in await notifier.messages(order_id) if m["channel"] == "sms"]
    return msgs[0] if msgs else None


async def _attempts(notifier, order_id, n):
    msgs = [m for m in await notifier.messages(order_id) if m["channel"] == "sms"]
    return msgs and msgs[0]["attempts"] >= n


async def _status(notifier, order_id, status):
    msgs = [m for m in await notifier.messages(order_id) if m["channel"] == "sms"]
    return msgs and msgs[0]["status"] == status


async def _error(notifier, order_id, prefix):
    msgs = [m for m in await notifier.messages(order_id) if m["channel"] == "sms"]
    return msgs and (msgs[0]["last_error"] or "").startswith(prefix)


async def test_competing_dispatchers_send_each_message_once(notifier_factory, feed_for, gateway):
    from notifier.entrypoints.dispatcher import Dispatcher
    from notifier.adapters.providers import provider_from_settings
    notifier = await notifier_factory(**gateway_settings(gateway.url))
    extra = [Dispatcher(notifier.rt, provider_from_settings(notifier.rt.settings)) for _ in range(2)]
    orders = [feed_for(notifier) for _ in range(5)]
    for o in orders:
        await o.created()
        await o.act("audit.reject", "rejected", opinion="x")

    async def all_sent():
        await asyncio.gather(*(d.step() for d in extra))  # race the background dispatcher
        return all([await _status(notifier, o.order_id, "sent") for o in orders])

    await eventually(all_sent)
    refs = [a["client_ref"] for a in gateway.accepted]
    assert len(refs) == 5 and len(set(refs)) == 5


async def test_a_step_sends_its_batch_in_a_few_statements_and_a_full_batch_is_followed_at_once(
        notifier_factory, feed_for, gateway):
    """The dispatcher claims a batch in one transaction and records the outcomes in another:
    the statements of a step do not grow with the messages it sends. A full batch means more
    are due: the loop goes on without its pause."""
    from sqlalchemy import event

    from notifier.parts import notifier_parts

    notifier = await notifier_factory(**gateway_settings(gateway.url, dispatch_batch=4), dispatch_interval_s=3600)
    dispatcher = notifier_parts(notifier.rt).dispatcher
    orders = [feed_for(notifier) for _ in range(6)]
    for o in orders:
        await o.created()
        await o.act("audit.reject", "rejected", opinion="x")
    for o in orders:
        await notifier.wait_messages(o.order_id, 1, channel="sms", status="queued")
    statements: list[str] = []

    def listener(conn, cursor, statement, *args) -> None:
        if "messages" in statement and "outbox" not in statement:  # (the relay and the pool's pings share the engine)
            statements.append(statement)

    event.listen(notifier.rt.engine.sync_engine, "before_cursor_execute", listener)
    try:
        assert await dispatcher.step() == 4 and dispatcher.backlog
        full = len(statements)
        statements.clear()
        assert await dispatcher.step() == 2 and not dispatcher.backlog
        rest = len(statements)
    finally:
        event.remove(notifier.rt.engine.sync_engine, "before_cursor_execute", listener)
    # the due rows, the numbers' recent sends, the claim, the outcomes
    assert full == rest == 4, [s[:30] for s in statements]
    for o in orders:
        assert (await sms(notifier, o.order_id))["status"] == "sent"
    refs = [a["client_ref"] for a in gateway.accepted]
    assert len(refs) == 6 and len(set(refs)) == 6
