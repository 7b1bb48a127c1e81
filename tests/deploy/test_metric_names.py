"""Every metric name an alert rule or a dashboard queries is one the services really expose:
the five services are started and their /metrics scraped (with an operator's token), then
each series selector of each query is looked up there — on the service its `job` names,
with the label names it filters on."""
from __future__ import annotations

import re

import pytest

from tests.deploy import kit
from tests.helpers import SERVICES, operator_headers, start_services


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


def _queries() -> list[tuple[str, str]]:
    out = [(f"alert {r['alert']}", r["expr"]) for r in kit.alert_rules()]
    out += [(f"dashboard {d} / {p}", q) for d, p, q in kit.dashboard_queries()]
    return out


async def test_every_metric_in_the_rules_and_dashboards_is_exposed(start_service, database_url, broker):
    running = await start_services(start_service, database_url, broker, list(SERVICES))
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
    assert not problems, "\n".join(problems)
    # the reader did find the queries' metrics (not a vacuous pass)
    assert len(checked) >= 25, sorted(checked)
