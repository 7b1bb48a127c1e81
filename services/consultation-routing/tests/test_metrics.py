"""The routing service's domain metrics (docs/operations.md, "Metrics"): consultations by
target, reason and channel; decision latency, what-ifs included but not counted as
consultations; bad input neither."""
from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

CSV = "sku,manufacturer_id,category\nsku-1,m-1,phones\nsku-2,m-1,appliances\n"


@pytest.fixture
def db_backend():
    """The counts do not depend on the database (the transactions' commit does, on both: the
    orders and sla-timer metrics tests run on both)."""
    return "sqlite"


def value(rt, name: str, **labels) -> float:
    for fam in text_string_to_metric_families(generate_latest(rt.metrics).decode()):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def test_decisions_by_target_reason_and_channel_and_their_latency(api):
    rt = api.rt
    await api.enroll()
    await api.skus(CSV)
    await api.queue()
    await api.route(sku="sku-1")
    await api.route(sku="sku-1", channel="phone")
    await api.route(sku="sku-2")
    await api.route(sku="nope")
    await api.route(sku="nope")
    await api.what_if("2026-03-03T21:00:00+08:00", sku="sku-1")  # answered, not a consultation
    await api.route(status=422, channel="fax")  # bad input: no decision
    assert value(rt, "routing_decisions_total", target="manufacturer", reason="enrolled", channel="im") == 1
    assert value(rt, "routing_decisions_total", target="manufacturer", reason="enrolled", channel="phone") == 1
    assert value(rt, "routing_decisions_total", target="platform", reason="not_enrolled", channel="im") == 1
    assert value(rt, "routing_decisions_total", target="platform", reason="unknown_sku", channel="im") == 2
    assert value(rt, "routing_decisions_total", target="platform", reason="out_of_hours", channel="im") == 0
    assert value(rt, "routing_decision_duration_seconds_count") == 6
    assert 0 < value(rt, "routing_decision_duration_seconds_sum") < 6
