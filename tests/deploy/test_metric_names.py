"""Every metric name an alert rule or a dashboard queries is one the services really expose:
the five services and the console are started, a little traffic is driven through them (an
order applied and claimed, consultations routed, so the labelled families have series), and
their /metrics are scraped (with an operator's token). Then each series selector of each query is looked up
there — on the service its `job` names, with the label names it filters on — and every metric
docs/operations.md lists is found on the service whose section lists it."""
from __future__ import annotations

import re

import pytest

from shared.testing import eventually
from tests.deploy import kit
from tests.helpers import (SERVICES, application, bearer, ensure_merchant, operator_headers, start_services,
                           storefront_headers)

OPERATIONS = kit.ROOT / "docs" / "operations.md"


@pytest.fixture
def db_backend():
    """Metric names do not depend on the database: SQLite only."""
    return "sqlite"


def test_the_selector_reader_finds_names_labels_and_name_patterns():
    found = kit.selectors('sum by (job, le) (rate(http_request_duration_seconds_bucket{job="orders", route!~"/ready"}[5m]))'
                          ' / on (job) group_left max(outbox_pending offset 5m) or vector(0) and up == 0'
                          ' + increase(label_replace({__name__=~"consumer_.+_parked_total"}, "c", "$1", "__name__", "(.+)")[10m:])')
    assert ("http_request_duration_seconds_bucket", [("job", "=", "orders"), ("route", "!~", "/ready")]) in found
    assert ("outbox_pending", []) in found and ("up", []) in found
    assert (None, [("__name__", "=~", "consumer_.+_parked_total")]) in found
    names = {n for n, _ in found}
    assert not names & {"sum", "rate", "by", "job", "le", "on", "group_left", "max", "offset", "vector", "and",
                        "increase", "label_replace", "c", "m"}


def documented_metrics() -> dict[str, set[str]]:
    """docs/operations.md, "Metrics": metric name → the services whose section lists it (the
    shared section: every service the kit deploys, the console included)."""
    text = OPERATIONS.read_text()
    text = text[text.index("## Metrics"):text.index("## Logs")]
    out: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        services = set(kit.PREFIXES) if title.startswith("Every service") else {title}
        assert services <= set(kit.PREFIXES), f"docs/operations.md: section {title!r} names no service"
        for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", section, flags=re.M):
            for name in re.findall(r"`([a-z_]+)`", row):
                out.setdefault(name, set()).update(services)
    return out


def _queries() -> list[tuple[str, str]]:
    out = [(f"alert {r['alert']}", r["expr"]) for r in kit.alert_rules()]
    out += [(f"dashboard {d} / {p}", q) for d, p, q in kit.dashboard_queries()]
    return out


async def _drive(running) -> None:
    """An order applied, claimed and rejected (the customer is told), consultations routed:
    the labelled families get series."""
    orders, routing = running["orders"].client, running["consultation-routing"].client
    await ensure_merchant(orders)
    r = await orders.post("/v1/storefront/service-orders", json=application(1),
                          headers={**storefront_headers("c-1"), "Idempotency-Key": "metrics-1"})
    assert r.status_code == 201, r.text
    oid, merchant = r.json()["id"], bearer("merchant_main", "m-1.main", merchant_id="m-1")
    for path, body in (("claim", {}), ("audit", {"decision": "reject", "opinion": "not covered"})):
        r = await orders.post(f"/v1/merchant/service-orders/{oid}/{path}", json=body, headers=merchant)
        assert r.status_code == 200, r.text
    for channel in ("im", "phone"):
        r = await routing.get("/v1/route", params={"channel": channel, "entry_point": "product_page", "sku": "x"},
                              headers=storefront_headers("c-1"))
        assert r.status_code == 200, r.text

    async def notified():  # the order's events reached the notifier and it recorded messages
        r = await running["notifier"].client.get("/metrics", headers=operator_headers())
        return "notifier_messages_sent_total{" in r.text
    await eventually(notified, timeout=60)


async def test_every_metric_in_the_rules_dashboards_and_docs_is_exposed(start_service, database_url, broker):
    running = await start_services(start_service, database_url, broker, list(SERVICES), metrics_refresh_s=0.5)
    # the operators' console too: the rules select it by job like the five
    running["console"] = await start_service(kit.app_factory("console"), kit.settings_class("console"),
                                             database_url=await database_url("console"), metrics_refresh_s=0.5)
    await _drive(running)
    exposed: dict[str, set[str]] = {}
    labels: dict[str, dict[str, set[str]]] = {}
    for name, svc in running.items():
        c = svc.client
        # a few requests, so the labelled request histogram has series to show its labels
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/admin/outbox")).status_code == 401
        r = await c.get("/metrics", headers=operator_headers())
        assert r.status_code == 200
        r = await c.get("/metrics", headers=operator_headers())
        exposed[name], labels[name] = kit.exposed_names(r.text)
        # the readiness gauge is sampled (every METRICS_REFRESH_S, 0.5 s here) from /ready's checks;
        # one round may count a check failed that took longer than /ready allows (a loaded
        # machine running the other test worker): the next rounds pass
        for check in ("database", "schema"):
            async def ready(check=check, c=c):
                text = (await c.get("/metrics", headers=operator_headers())).text
                return f'service_ready{{check="{check}"}} 1.0' in text
            assert await eventually(ready, timeout=15), (name, check)

    problems, checked = [], set()
    for where, expr in _queries():
        for metric, matchers in kit.selectors(expr):
            job = next(((op, v) for lbl, op, v in matchers if lbl == "job"), None)
            if job is None:
                jobs = list(exposed)
            elif job[0] == "=":
                jobs = [job[1]]
            else:
                jobs = [j for j in exposed if re.fullmatch(job[1], j)]
            if job is not None and not jobs:
                problems.append(f"{where}: job {job} names no service")
                continue
            if metric is None:
                pattern = next(v for lbl, op, v in matchers if lbl == "__name__")
                hits = [n for j in jobs for n in exposed[j] if re.fullmatch(pattern, n)]
                if not hits:
                    problems.append(f"{where}: no exposed metric matches {pattern!r}")
                checked.update(hits)
                continue
            if metric in kit.PROMETHEUS_SERIES:
                continue
            having = [j for j in jobs if metric in exposed[j]]
            if not having:
                problems.append(f"{where}: {metric} is not exposed by {jobs}")
                continue
            checked.add(metric)
            seen = set().union(*(labels[j].get(metric, set()) for j in having))
            for lbl, _, _ in matchers:
                if lbl not in {"job", "instance", "__name__"} and seen and lbl not in seen:
                    problems.append(f"{where}: {metric} has no label {lbl!r} (it has {sorted(seen)})")
    documented = documented_metrics()
    for metric, services in sorted(documented.items()):
        for svc in sorted(services):
            names = exposed[svc]
            if not ({metric, f"{metric}_bucket", f"{metric}_total"} & names):
                problems.append(f"docs/operations.md: {metric} is not exposed by {svc}")
    assert not problems, "\n".join(problems)
    # the reader did find the queries' metrics (not a vacuous pass), the docs list the domain ones
    assert len(checked) >= 35, sorted(checked)
    assert {"orders_transitions_total", "sla_timer_firing_lateness_seconds", "notifier_messages_failed_total",
            "routing_decisions_total", "consumer_lag_seconds", "outbox_oldest_pending_age_seconds",
            "service_ready", "consumer_dead_letters"} <= set(documented)
    # the labels the dashboards split by are on the series (the driven traffic made some)
    assert {"from_state", "to_state", "action"} <= labels["orders"]["orders_transitions_total"]
    assert {"target", "reason", "channel"} <= labels["consultation-routing"]["routing_decisions_total"]
    assert {"channel", "template"} <= labels["notifier"]["notifier_messages_sent_total"]
    assert {"group"} <= labels["kpi"]["consumer_lag_seconds"]
