"""Reading the services' /metrics: the text format parsed by the gateway, the figures the
pages take from it (Prometheus's histogram_quantile, sums and maxima by label), and the
gateway's call (the console's operator token, the cache)."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import httpx
import pytest

from console.adapters.platform import PlatformGateway, ServiceRefused, ServiceUnavailable, parse_metrics
from console.domain import metric_names as m
from console.domain.figures import range_label
from console.domain.metrics import bucket_counts, buckets, by_label, histogram_quantile, total
from .metrics_texts import NOTIFIER, ROUTING, SLA_TIMER

INF = math.inf


def test_the_text_format_is_read_by_sample_name():
    scrape = parse_metrics("sla-timer", SLA_TIMER)
    assert {m.FIRING_LATENESS_BUCKET, m.PENDING_TIMERS, m.OVERDUE_TIMERS, m.SERVICE_READY} <= set(scrape)
    assert "sla_timer_firing_lateness_seconds_count" in scrape and "sla_timer_firing_lateness_seconds_created" in scrape
    assert by_label(scrape, m.PENDING_TIMERS, "rule") == {("first_response",): 7.0, ("auto_refund",): 3.0,
                                                          ("repair",): 0.0}
    assert total(scrape, m.OVERDUE_TIMERS) == 2.0
    assert total(scrape, "sla_timer_firing_lateness_seconds_count", rule="auto_refund") == 2.0
    assert total(scrape, "no_such_metric") is None  # absent is not zero
    counters = parse_metrics("notifier", NOTIFIER)
    # a counter's samples keep their _total name: the one the dashboards query
    assert by_label(counters, m.MESSAGES_SENT, "channel") == {("sms",): 7.0, ("inbox",): 4.0}
    assert by_label(parse_metrics("r", ROUTING), m.ROUTING_DECISIONS, "target") == {("manufacturer",): 8.0,
                                                                                    ("platform",): 4.0}


def test_by_label_sums_or_takes_the_largest():
    scrape = parse_metrics("x", 'a{g="1",i="r1"} 3\na{g="1",i="r2"} 5\na{g="2",i="r1"} 1\n')
    assert by_label(scrape, "a", "g") == {("1",): 8.0, ("2",): 1.0}
    assert by_label(scrape, "a", "g", how="max") == {("1",): 5.0, ("2",): 1.0}


def test_what_is_not_the_text_format_makes_the_service_unreadable():
    with pytest.raises(ServiceUnavailable) as exc:
        parse_metrics("kpi", '<html>{"error": 1}</html>\nnot metrics at all {')
    assert exc.value.service == "kpi" and "/metrics unreadable" in exc.value.message


def test_histogram_quantiles_follow_prometheus():
    scrape = parse_metrics("sla-timer", SLA_TIMER)
    both = buckets(scrape, m.FIRING_LATENESS_BUCKET)  # summed over rules, as sum by (le)
    assert both[0] == (0.05, 2.0) and both[-2] == (3600.0, 10.0) and both[-1] == (INF, 12.0)
    # rank 6 of 12 is the top of the 0.1-0.25 bucket; rank 3 halfway through 0.05-0.1
    assert histogram_quantile(0.5, both) == pytest.approx(0.25)
    assert histogram_quantile(0.25, both) == pytest.approx(0.075)
    # in the open-ended bucket: the highest finite bound
    assert histogram_quantile(0.99, both) == 3600.0
    one = buckets(scrape, m.FIRING_LATENESS_BUCKET, rule="first_response")
    assert histogram_quantile(0.9, one) == pytest.approx(300 + 3300 * 0.5)  # rank 9: halfway in 300-3600
    assert histogram_quantile(0.1, one) == pytest.approx(0.025)  # the first bucket starts at 0
    assert histogram_quantile(0.5, buckets(scrape, m.FIRING_LATENESS_BUCKET, rule="nothing")) is None
    assert histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]) is None  # nothing observed yet
    assert histogram_quantile(0.5, [(1.0, 3.0)]) is None  # no +Inf bucket: not a histogram
    # a scrape racing an observation (a count falling) is made monotonic first
    assert histogram_quantile(0.5, [(1.0, 4.0), (2.0, 3.0), (INF, 4.0)]) == pytest.approx(0.5)


def test_bucket_counts_and_their_labels():
    scrape = parse_metrics("sla-timer", SLA_TIMER)
    spread = bucket_counts(buckets(scrape, m.FIRING_LATENESS_BUCKET))
    assert spread[:3] == [(0.0, 0.05, 2), (0.05, 0.1, 2), (0.1, 0.25, 2)]
    assert spread[-2:] == [(300.0, 3600.0, 2), (3600.0, INF, 2)]
    assert sum(n for _lo, _hi, n in spread) == 12
    assert [range_label(lo, hi) for lo, hi, _n in (spread[0], spread[-3], spread[-1])] == [
        "0 s–0.05 s", "1 min–5 min", "≥ 1 h"]


async def test_the_gateway_reads_metrics_with_its_operator_token_and_reuses_them():
    calls: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path, request.headers.get("authorization", "")))
        if request.url.path == "/v1/oauth/token":
            return httpx.Response(200, json={"access_token": f"tok-{len(calls)}", "expires_in": 900})
        if request.url.host == "sla":
            if request.headers["authorization"] == "Bearer tok-1" and len(calls) == 2:
                return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "expired"}})
            return httpx.Response(200, text=SLA_TIMER, headers={"content-type": "text/plain; version=0.0.4"})
        return httpx.Response(403, json={"error": {"code": "forbidden", "message": "operators only"}})

    gateway = PlatformGateway(urls={"sla-timer": "http://sla", "kpi": "http://kpi"},
                              token_url="http://orders/v1/oauth/token", client_id="console", client_secret="s",
                              now=lambda: datetime.now(timezone.utc), cache_s=60, timeout_s=1, transport=httpx.MockTransport(handler))
    try:
        scrape = await gateway.metrics("sla-timer")
        assert total(scrape, m.OVERDUE_TIMERS) == 2.0
        # the token was renewed once after the 401, and the page was fetched with it
        assert [p for p, _a in calls] == ["/v1/oauth/token", "/metrics", "/v1/oauth/token", "/metrics"]
        assert calls[-1][1] == "Bearer tok-3"
        assert await gateway.metrics("sla-timer") is scrape and len(calls) == 4  # reused
        with pytest.raises(ServiceRefused):
            await gateway.metrics("kpi")
    finally:
        await gateway.close()
