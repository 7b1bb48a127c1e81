"""GET /v1/messages/summary: the delivery log summed up for operators (the console's
notifications page): per channel, template and status, retrying apart, and the latest
failures with their reason, phones masked."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.testing import eventually

pytestmark = pytest.mark.broker

SECRET = "gw-secret-for-the-summary-test-0123456789"


def _groups(body: dict) -> dict[tuple, int]:
    return {(g["channel"], g["template_key"], g["status"], g["retrying"]): g["count"] for g in body["groups"]}


async def test_summary_counts_retrying_then_failed_with_the_reason(notifier_factory, feed_for, port_factory):
    # a gateway nobody listens on: every SMS attempt fails
    notifier = await notifier_factory(sms_provider="http", sms_gateway_url=f"http://127.0.0.1:{port_factory()}/sms",
                                      sms_gateway_key="k1", sms_gateway_secret=SECRET, retry_base_s=30,
                                      retry_max_attempts=2)
    o = feed_for(notifier)
    await o.created()
    await o.act("audit.reject", "rejected", opinion="not covered")

    async def summary():
        r = await notifier.client.get("/v1/messages/summary", headers=notifier.operator)
        assert r.status_code == 200, r.text
        return r.json()

    async def retrying():
        body = await summary()
        sms = [k for k in _groups(body) if k[0] == "sms" and k[2] == "queued" and k[3]]
        return body if sms else None
    body = await eventually(retrying)
    inbox = [(k, n) for k, n in _groups(body).items() if k[0] == "inbox"]
    assert inbox and all(k[2] in ("sent", "delivered") and not k[3] for k, _n in inbox)
    assert body["failed_total"] == 0 and body["failures"] == []

    notifier.rt.clock.advance(timedelta(seconds=31))

    async def failed():
        b = await summary()
        return b if b["failed_total"] == 1 else None
    body = await eventually(failed)
    [f] = body["failures"]
    assert f["channel"] == "sms" and f["order_id"] == o.order_id and f["attempts"] == 2
    assert f["last_error"].startswith("gave up after 2 attempts")
    assert f["recipient"] == "sms:138****8000"  # masked, as everywhere
    assert not any(k[0] == "sms" and k[3] for k in _groups(body))  # nothing retrying any more
    assert (await notifier.client.get("/v1/messages/summary", params={"failures": 0},
                                      headers=notifier.operator)).json()["failures"] == []


async def test_only_operators_read_the_summary(notifier):
    for role, kw in (("arbitrator", {}), ("merchant_main", {"merchant_id": "m-1"})):
        r = await notifier.client.get("/v1/messages/summary", headers=notifier.headers(role, **kw))
        assert r.status_code == 403, (role, r.text)
    r = await notifier.client.get("/v1/messages/summary", params={"failures": 501}, headers=notifier.operator)
    assert r.status_code == 422
