"""Every setting of every service is documented: the shared ones (shared.settings.ServiceSettings)
in the root README's settings table, each service's own in its README; and the root README's
production example covers all five services."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from tests.helpers import SERVICES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SETTINGS_SECTION = README[README.index("## Settings"):README.index("## Repository layout")]


def _mentioned(name: str, text: str, prefix: str) -> bool:
    """`NAME` in backticks (a table naming the setting after the prefix) or PREFIX_NAME."""
    return bool(re.search(rf"`{re.escape(name)}`", text)
                or re.search(rf"(?<![A-Z0-9_]){re.escape(prefix + name)}(?![A-Z0-9_])", text))


def test_every_shared_setting_is_in_the_root_readme():
    missing = [f.upper() for f in ServiceSettings.model_fields if not _mentioned(f.upper(), SETTINGS_SECTION, "")]
    assert not missing, f"README.md, Settings: {missing}"


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_setting_of_the_service_is_in_its_readme(service):
    cls = SERVICES[service][1]
    prefix = cls.model_config["env_prefix"]
    readme = (ROOT / "services" / service / "README.md").read_text()
    own = [f for f in cls.model_fields if f not in ServiceSettings.model_fields or f == "port"]
    missing = [prefix + f.upper() for f in own if f != "service_name" and not _mentioned(f.upper(), readme, prefix)]
    assert not missing, f"services/{service}/README.md: {missing}"


def test_the_production_example_starts_all_five_services():
    example = README[README.index("### PostgreSQL and Apache Kafka"):README.index("## Repository layout")]
    for service, (_app, cls) in SERVICES.items():
        prefix = cls.model_config["env_prefix"]
        assert f"common {prefix} " in example, service
        assert f"export {prefix}DATABASE_URL=postgresql+asyncpg://" in example, service
    assert "for svc in orders consultation-routing sla-timer kpi notifier; do .venv/bin/$svc serve" in example
    assert "provision-topics" in example and "migrate" in example and "create-operator" in example
    # the service-specific production settings of orders (shared attachments) and notifier (the gateway)
    for name in ("ORDERS_BLOB_STORE=s3", "NOTIFIER_SMS_PROVIDER=http", "NOTIFIER_SMS_GATEWAY_SECRET"):
        assert name in example


def test_the_production_example_passes_every_services_production_checks(monkeypatch, tmp_path):
    """The example's exports, run by bash with its `...` filled in, load in production."""
    import os
    import secrets
    import subprocess

    from shared.settings import load_settings

    example = README[README.index("### PostgreSQL and Apache Kafka"):README.index("## Repository layout")]
    block = example[example.index("```bash") + 7:example.index("```", example.index("```bash") + 7)]
    lines = [line for line in block.splitlines() if not line.startswith((".venv/bin", "for svc"))]
    script = "\n".join(lines).replace("=...", f"={secrets.token_hex(24)}").replace(":...@", ":pw@")
    prefixes = tuple(cls.model_config["env_prefix"] for _app, cls in SERVICES.values())
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    base.update(TOKEN_SECRET=secrets.token_hex(32), **{f"{n}_KAFKA_PASSWORD": "pw" for n in
                                                       ("ORDERS", "ROUTING", "SLA", "KPI", "NOTIFIER")})
    out = subprocess.run(["bash", "-euc", script + "\nenv -0"], env=base, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    env = dict(item.split("=", 1) for item in out.stdout.split("\0") if "=" in item)
    for service, (_app, cls) in SERVICES.items():
        prefix = cls.model_config["env_prefix"]
        with monkeypatch.context() as m:
            for k in list(os.environ):
                if k.startswith(prefix):
                    m.delenv(k)
            for k, v in env.items():
                if k.startswith(prefix):
                    m.setenv(k, v)
            s = load_settings(cls)
        assert s.environment == "production" and s.kafka_security_protocol == "SASL_SSL", service
        assert s.database_url.startswith("postgresql+asyncpg://") and s.run_migrations_on_start is False
