"""shared.kafka.kafka_options: the one place aiokafka clients get their connection options
(TLS, SASL) from the settings. End to end through a TLS + SASL listener: tests/test_kafka_tls_sasl.py."""
from __future__ import annotations

import pickle
import re
import ssl
from pathlib import Path

import pytest
from pydantic_settings import SettingsConfigDict

from shared.kafka import KafkaConnection, kafka_connection, kafka_options
from shared.settings import ServiceSettings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", validate_default=True)
    service_name: str = "demo"


def test_a_bare_address_is_plaintext():
    assert kafka_options("k1:9092,k2:9092") == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_from_the_settings_with_the_system_trust_store():
    s = load_settings(DemoSettings, kafka_bootstrap="k:9093", kafka_security_protocol="SASL_SSL",
                      kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username="orders", kafka_sasl_password="pw")
    opts = kafka_options(kafka_connection(s))
    assert opts["security_protocol"] == "SASL_SSL" and opts["bootstrap_servers"] == "k:9093"
    assert opts["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (opts["sasl_plain_username"], opts["sasl_plain_password"]) == ("orders", "pw")
    ctx = opts["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # one context per process for the same files: every client shares it
    assert kafka_options(kafka_connection(s))["ssl_context"] is ctx


def test_ssl_without_sasl_sends_no_credentials():
    opts = kafka_options(KafkaConnection("k:9093", security_protocol="SSL", ssl_check_hostname=False))
    assert "sasl_mechanism" not in opts and opts["ssl_context"].check_hostname is False


def test_tls_files_that_cannot_be_read_stop_the_start_naming_the_setting(tmp_path):
    s = load_settings(DemoSettings, kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "missing-ca.pem"))
    with pytest.raises(SettingsError, match="DEMO_KAFKA_SSL_CAFILE"):
        kafka_connection(s)


def test_the_connection_travels_to_worker_processes_without_its_password_in_logs():
    conn = KafkaConnection("k:9093", security_protocol="SASL_SSL", sasl_username="u", sasl_password="hunter2")
    assert pickle.loads(pickle.dumps(conn)) == conn  # kpi replay hands it to its workers
    assert "hunter2" not in repr(conn)


def _call_arguments(text: str, start: int) -> str:
    """The text between the parenthesis at ``start`` and its match."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise AssertionError("unbalanced parentheses")


def test_every_kafka_client_in_the_code_is_built_with_kafka_options():
    """A client built without them would connect in plaintext to a secured cluster."""
    sources = [*ROOT.glob("shared/src/shared/*.py"), *ROOT.glob("services/*/src/*/**/*.py")]
    sources = [p for p in sources if p.name != "testing.py"]  # the tests' own producer (embedded broker)
    found = []
    for path in sources:
        text = path.read_text()
        for m in re.finditer(r"AIOKafka(?:Producer|Consumer|AdminClient)\(", text):
            args = _call_arguments(text, m.end() - 1)
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            assert "**kafka_options(" in args or "**self.client_options()" in args, where
            found.append(where)
    # the producer, the admin clients, the consumer groups, the two listeners, kpi replay
    assert len(found) >= 7, found
