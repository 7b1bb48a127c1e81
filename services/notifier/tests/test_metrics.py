"""The notifier's domain metrics (docs/operations.md, "Metrics"): messages sent, failed and
retried by channel and template, counted when their outcome is committed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.testing import eventually

pytestmark = pytest.mark.broker

SECRET = "gw-secret-for-the-metrics-test-0123456789"


@pytest.fixture
def db_backend():
    """The counts do not depend on the database (the transactions' commit does, on both: the
    orders and sla-timer metrics tests run on both)."""
    return "sqlite"


def counts(rt, name: str) -> dict[tuple[str, str], float]:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(rt.metrics).decode()):
        for s in fam.samples:
            if s.name == name:
                out[(s.labels["channel"], s.labels["template"])] = s.value
    return out


async def test_sms_and_in_site_messages_sent(notifier, new_order):
    o = new_order()
    await o.created()
    await o.act("audit.reject", "rejected", opinion="not covered")  # the customer is told, SMS and in-site
    async def sms_sent():
        found = await notifier.messages(o.order_id)
        return found if any(m["channel"] == "sms" and m["status"] == "sent" for m in found) else None
    messages = await eventually(sms_sent, timeout=60)
    rt = notifier.rt
    sent = counts(rt, "notifier_messages_sent_total")
    for channel in ("sms", "inbox"):
        done = [m for m in messages if m["channel"] == channel and m["status"] in ("sent", "delivered")]
        assert done, channel
        for template in {m["template_key"] for m in done}:
            assert sent[(channel, template)] == sum(1 for m in done if m["template_key"] == template)
    assert not any(counts(rt, "notifier_messages_failed_total").values())
    assert not any(counts(rt, "notifier_message_retries_total").values())


async def test_sms_retried_then_failed(notifier_factory, feed_for, port_factory):
    # a gateway nobody listens on: every SMS attempt fails
    notifier = await notifier_factory(sms_provider="http", sms_gateway_url=f"http://127.0.0.1:{port_factory()}/sms",
                                      sms_gateway_key="k1", sms_gateway_secret=SECRET, retry_base_s=30,
                                      retry_max_attempts=2)
    rt = notifier.rt
    o = feed_for(notifier)
    await o.created()
    await o.act("audit.reject", "rejected", opinion="not covered")

    async def retried():
        r = counts(rt, "notifier_message_retries_total")
        return r if any(r.values()) else None
    retries = await eventually(retried, timeout=60)
    [(channel, template)] = [k for k, n in retries.items() if n]
    assert channel == "sms" and retries[(channel, template)] == 1
    assert not counts(rt, "notifier_messages_sent_total").get(("sms", template))
    rt.clock.advance(timedelta(seconds=31))

    async def failed():
        return counts(rt, "notifier_messages_failed_total").get(("sms", template))
    assert await eventually(failed, timeout=60) == 1
    assert counts(rt, "notifier_message_retries_total")[("sms", template)] == 1  # the last attempt gave up
    assert counts(rt, "notifier_messages_sent_total").get(("inbox", template), 0) >= 1  # in-site went
