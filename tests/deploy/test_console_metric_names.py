"""The metrics the operators' console reads (services/console/src/console/domain/metric_names.py)
are ones the services expose and the Grafana dashboards query: a console chart and the
dashboard panel showing the same thing read the same series.

Exposed: each service's app is built (not started) and its /metrics page read; the families
a service declares only when it starts its consumers are taken from docs/operations.md, which
test_metric_names.py checks against running services."""
from __future__ import annotations

import re
import tempfile
from functools import lru_cache

from prometheus_client import generate_latest

from console.domain import metric_names
from tests.deploy import kit
from tests.deploy.test_metric_names import documented_metrics


@lru_cache
def built_exposure(service: str) -> frozenset[str]:
    cls = kit.settings_class(service)
    with tempfile.TemporaryDirectory() as tmp:
        app = kit.app_factory(service)(cls(environment="test", data_dir=tmp))
        names, _labels = kit.exposed_names(generate_latest(app.state.runtime.metrics).decode())
    return frozenset(names)


def _family(sample: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", sample)


def test_every_metric_the_console_reads_is_exposed_by_its_services():
    documented = documented_metrics()
    problems, seen_built = [], 0
    for sample, services in metric_names.READS.items():
        assert set(services) <= set(kit.PREFIXES), (sample, services)
        for svc in services:
            if sample in built_exposure(svc):
                seen_built += 1
            elif svc not in documented.get(_family(sample), set()):
                problems.append(f"{sample}: not exposed by {svc}")
    assert not problems, "\n".join(problems)
    assert seen_built >= 30  # most found on the services' own pages, not only in the docs


def test_every_metric_the_console_reads_is_on_a_dashboard():
    read_by_dashboards: dict[str, set[str]] = {}
    for dashboard, _panel, expr in kit.dashboard_queries():
        for name, matchers in kit.selectors(expr):
            if name is None:
                continue
            job = next((v for lbl, op, v in matchers if lbl == "job" and op == "="), None)
            read_by_dashboards.setdefault(name, set()).add(job or "*")
    missing = sorted(set(metric_names.READS) - set(read_by_dashboards))
    assert not missing, f"the console reads metrics no Grafana dashboard shows: {missing}"
    # a name a dashboard reads on one service only is read by the console on that service
    for sample, services in metric_names.READS.items():
        jobs = read_by_dashboards[sample]
        assert "*" in jobs or set(services) <= jobs, (sample, services, jobs)
