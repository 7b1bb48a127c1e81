"""What tests/deploy holds the deployment files against: the code's console scripts, settings,
routes and topics, and a small reader of PromQL selectors."""
from __future__ import annotations

import contextlib
import io
import re
import secrets
import shutil
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
KUBE_DIR = DEPLOY / "kubernetes"
PROM_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"

# service (console script) → environment prefix: every workload the kit deploys. The tests
# below iterate it, so a service left out of Compose or Kubernetes fails them.
PREFIXES = {
    "orders": "ORDERS_",
    "consultation-routing": "CONSULTATION_ROUTING_",
    "sla-timer": "SLA_TIMER_",
    "kpi": "KPI_",
    "notifier": "NOTIFIER_",
    "console": "CONSOLE_",
}
# Variables a service container may set that are not its settings, each with the reader.
NON_SETTING_ENV = {
    "FORWARDED_ALLOW_IPS": "uvicorn: proxies whose X-Forwarded-For is trusted (the token endpoint's per-address limit)",
}
# Series Prometheus makes itself (not on any /metrics page): `up` per scrape target.
PROMETHEUS_SERIES = {"up"}


def _apps() -> dict[str, tuple]:
    """Service → (create_app, settings class): the five of tests/helpers.py (the ones the
    cross-service tests start) and the operators' console, a client of those five."""
    from console.app import create_app as console_app
    from console.settings import ConsoleSettings
    from tests.helpers import SERVICES

    return {**SERVICES, "console": (console_app, ConsoleSettings)}


def settings_class(service: str):
    return _apps()[service][1]


def app_factory(service: str):
    return _apps()[service][0]


def setting_env_names(service: str) -> set[str]:
    """Every environment variable the service's settings class reads (prefix + field name)."""
    cls = settings_class(service)
    prefix = cls.model_config.get("env_prefix", "")
    assert prefix == PREFIXES[service], (service, prefix)
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


@lru_cache
def console_scripts() -> dict[str, str]:
    """Console script name → entry point, for the deployed services (from the installed metadata
    of services/*/pyproject.toml)."""
    eps = entry_points(group="console_scripts")
    return {ep.name: ep.value for ep in eps if ep.name in PREFIXES}


@lru_cache
def subcommands(script: str) -> frozenset[str]:
    """The subcommands a service's CLI accepts, from its own argument parser (`<script> --help`)."""
    ep = next(ep for ep in entry_points(group="console_scripts") if ep.name == script)
    main = ep.load()
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [script, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main()
    finally:
        sys.argv = argv
    usage = out.getvalue()
    m = re.search(r"\{([a-z0-9,-]+)\}", usage)
    assert m, f"no subcommands in `{script} --help`:\n{usage}"
    return frozenset(m.group(1).split(","))


def check_command(argv: list[str]) -> str | None:
    """Why ``argv`` is not a command of the image (None if it is one)."""
    if not argv:
        return "no command"
    script = argv[0]
    if script not in console_scripts():
        return f"{script!r} is not a console script of a service ({sorted(console_scripts())})"
    if len(argv) < 2 or argv[1] not in subcommands(script):
        return f"{argv!r}: {script} has the subcommands {sorted(subcommands(script))}"
    return None


@lru_cache
def route_paths(service: str, method: str = "get") -> frozenset[str]:
    """Paths of the service's app that answer ``method`` (from its OpenAPI document)."""
    import tempfile

    cls = settings_class(service)
    with tempfile.TemporaryDirectory() as tmp:
        app = app_factory(service)(cls(environment="test", data_dir=tmp))
        paths = app.openapi()["paths"]
    return frozenset(p for p, ops in paths.items() if method in ops)


def public_paths(service: str) -> frozenset[str]:
    """GET paths of the service's app."""
    return route_paths(service, "get")


# The console's settings naming a service it reads → that service. Kept equal to the settings
# class's *_url fields (console_reads), so a service the console starts reading is checked too.
CONSOLE_URLS = {
    "orders_url": "orders",
    "routing_url": "consultation-routing",
    "sla_timer_url": "sla-timer",
    "kpi_url": "kpi",
    "notifier_url": "notifier",
}


def console_reads() -> dict[str, str]:
    fields = {f for f in settings_class("console").model_fields if f.endswith("_url")} - {"database_url", "token_url"}
    assert fields == set(CONSOLE_URLS), f"the console reads services through {sorted(fields)}"
    return CONSOLE_URLS


def check_console_settings(s, address: Callable[[str], str]) -> None:
    """The console's production settings as the kit sets them: Secure cookies, its own operator
    client, every service it reads at ``address(service)`` (a Compose service, a Kubernetes
    Service) and orders' token endpoint there."""
    assert s.environment == "production" and s.cookie_secure is True
    assert s.service_client_id and s.service_client_secret.get_secret_value()
    for field, service in console_reads().items():
        assert getattr(s, field) == address(service), (field, getattr(s, field))
    token_path = s.token_url.removeprefix(address("orders"))
    assert token_path != s.token_url and token_path in route_paths("orders", "post"), s.token_url


# ------------------------------------------------------------------------------ environment

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_variables(text: str) -> dict[str, tuple[str, str]]:
    """Variables the Compose file interpolates: name → (operator, default-or-message)."""
    return {m.group(1): (m.group(2) or "", m.group(3) or "") for m in _VAR.finditer(text)}


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} (what `docker compose config` does)."""
    if not isinstance(value, str):
        return value

    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        have = env.get(name, "")
        if op in (":-", "-"):
            return have or arg
        if op in (":?", "?") and not have:
            raise KeyError(f"{name}: {arg}")
        return have

    return _VAR.sub(sub, value)


@lru_cache
def example_env() -> dict[str, str]:
    """.env.example with every empty secret filled in with a random one, as the runbook says
    (once per test run: the Compose services see the same .env)."""
    env = read_env_file(COMPOSE_DIR / ".env.example")
    return {k: v or secrets.token_hex(32) for k, v in env.items()}


@contextlib.contextmanager
def environment(monkeypatch, variables: dict[str, str], prefix: str):
    """Only ``variables`` visible under ``prefix`` (a developer's own ORDERS_* stay out)."""
    import os

    with monkeypatch.context() as m:
        for k in list(os.environ):
            if k.startswith(prefix):
                m.delenv(k)
        for k, v in variables.items():
            m.setenv(k, str(v))
        yield


# ------------------------------------------------------------------------------ YAML files


def load_compose() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())


def kustomize_resources() -> list[dict]:
    """The documents `kubectl apply -k deploy/kubernetes` applies: built by kubectl's kustomize
    when it is installed, else the listed files with the kustomization's namespace and labels
    applied by hand (the same transformations, for these plain resources)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(KUBE_DIR)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [d for d in yaml.safe_load_all(out.stdout) if d]
    k = yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())
    docs = []
    for res in k["resources"]:
        for d in yaml.safe_load_all((KUBE_DIR / res).read_text()):
            if not d:
                continue
            if d["kind"] != "Namespace":
                d["metadata"]["namespace"] = k["namespace"]
            for group in k.get("labels", []):
                d["metadata"].setdefault("labels", {}).update(group["pairs"])
            template = d.get("spec", {}).get("template", {}).get("spec", {})
            for c in template.get("containers", []) + template.get("initContainers", []):
                for img in k.get("images", []):
                    if c["image"] == img["name"]:
                        c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}" if "newTag" in img \
                            else img.get("newName", img["name"])
            docs.append(d)
    return docs


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------ PromQL

_STRING = r'"(?:[^"\\]|\\.)*"'
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{((?:[^{}\"]|" + _STRING + r")*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(" + _STRING + ")")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "atan2"}


def _unquote(s: str) -> str:
    return s[1:-1].encode().decode("unicode_escape")


def selectors(expr: str) -> list[tuple[str | None, list[tuple[str, str, str]]]]:
    """Every series selector of a PromQL expression: (metric name or None, [(label, op, value)])."""
    found = []
    for m in _SELECTOR.finditer(expr):
        matchers = [(lbl, op, _unquote(val)) for lbl, op, val in _MATCHER.findall(m.group(2))]
        found.append((m.group(1), matchers))
    # bare metric names: not a function (no "(" after), not a keyword, not a label list
    t = re.sub(_STRING, '""', expr)
    t = re.sub(r"\{[^{}]*\}", " ", t)
    t = re.sub(r"\[[^\]]*\]", " ", t)
    t = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", t)
    named = {n for n, _ in found if n}
    for m in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", t):
        name = m.group(1)
        if name not in _KEYWORDS and name not in named:
            found.append((name, []))
            named.add(name)
    return found


def exposed_names(metrics_text: str) -> tuple[set[str], dict[str, set[str]]]:
    """(sample names a /metrics page exposes, label names seen per sample name). A family
    declared without samples yet (a labelled metric nobody touched) counts with the names its
    type gives its samples."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "gauge": ("",), "untyped": ("",), "unknown": ("",)}
    for fam in text_string_to_metric_families(metrics_text):
        for suffix in suffixes.get(fam.type, ("",)):
            names.add(fam.name + suffix)
        for s in fam.samples:
            names.add(s.name)
            labels.setdefault(s.name, set()).update(s.labels)
    return names, labels


def alert_rules() -> list[dict]:
    rules = []
    for f in sorted((PROM_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def dashboards() -> dict[str, dict]:
    import json

    return {f.stem: json.loads(f.read_text()) for f in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every panel target and every query variable."""
    out = []
    for name, d in dashboards().items():
        for p in d.get("panels", []):
            for t in p.get("targets", []):
                out.append((name, p.get("title", ""), t["expr"]))
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            if v.get("type") == "query" and q:
                q = q.get("query", "") if isinstance(q, dict) else q
                m = re.match(r"\s*label_values\((.*),\s*\w+\)\s*$", q)
                out.append((name, f"variable {v.get('name')}", m.group(1) if m else q))
    return out
