"""The operator commands as an operator runs them (the installed `orders` console script):
a second `create-operator` with the same id is one line and exit status 2, not a traceback;
`seed-demo` refuses production."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ORDERS = Path(sys.executable).parent / "orders"


def run(args: list[str], **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    return subprocess.run([str(ORDERS), *args], env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_create_operator_twice_is_a_one_line_error(tmp_path):
    env = {"ORDERS_DATA_DIR": str(tmp_path), "ORDERS_LOG_LEVEL": "WARNING"}
    first = run(["create-operator", "--client-id", "ops-1", "--name", "Operations"], **env)
    assert first.returncode == 0, first.stderr[-2000:]
    creds = json.loads(first.stdout.strip().splitlines()[-1])
    assert creds["client_id"] == "ops-1" and creds["role"] == "platform_operator" and len(creds["client_secret"]) >= 32
    again = run(["create-operator", "--client-id", "ops-1"], **env)
    assert again.returncode == 2
    assert "Traceback" not in again.stderr
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "client ops-1 already exists" in lines[0], again.stderr
    assert again.stdout == ""  # no second secret


def test_create_operator_refuses_an_id_no_token_request_could_use(tmp_path):
    bad = run(["create-operator", "--client-id", "ops 1/x"], ORDERS_DATA_DIR=str(tmp_path))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--client-id" in bad.stderr


def test_seed_demo_refuses_production(tmp_path):
    # Settings that pass the production checks; the refusal comes before any database access.
    env = {"ORDERS_ENVIRONMENT": "production", "ORDERS_DATA_DIR": str(tmp_path),
           "ORDERS_DATABASE_URL": "postgresql+asyncpg://orders@127.0.0.1:1/orders",
           "ORDERS_TOKEN_SECRET": secrets.token_urlsafe(32), "ORDERS_KAFKA_ALLOW_PLAINTEXT": "true"}
    out = run(["seed-demo"], **env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "seed-demo: refused with ORDERS_ENVIRONMENT=production" in out.stderr
    assert not (tmp_path / "demo-credentials.json").exists()


async def test_seed_demo_itself_refuses_a_production_runtime():
    """Also when called from code (not the command line): the guard is in the seeding too."""
    import pytest
    from types import SimpleNamespace

    from orders.entrypoints.demo import DemoRefused, seed_demo

    with pytest.raises(DemoRefused):
        await seed_demo(SimpleNamespace(settings=SimpleNamespace(environment="production")))


def test_serve_with_an_unreadable_kafka_ca_file_stops_naming_the_setting(tmp_path):
    out = run(["serve"], ORDERS_DATA_DIR=str(tmp_path), ORDERS_KAFKA_SECURITY_PROTOCOL="SSL",
              ORDERS_KAFKA_SSL_CAFILE=str(tmp_path / "no-such-ca.pem"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "ORDERS_KAFKA_SSL_CAFILE" in out.stderr and "cannot load the TLS files" in out.stderr
