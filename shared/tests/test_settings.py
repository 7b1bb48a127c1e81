import pytest
from pydantic_settings import SettingsConfigDict

from shared.settings import DEV_TOKEN_SECRET, ServiceSettings, SettingsError, load_settings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", validate_default=True)
    service_name: str = "demo"


def test_development_defaults_are_embedded(monkeypatch):
    s = load_settings(DemoSettings)
    assert s.database_url == "sqlite+aiosqlite:///var/data/demo.db"
    assert s.run_migrations_on_start is True and s.kafka_idempotent_producer is False


def test_env_prefix_is_per_service(monkeypatch):
    monkeypatch.setenv("DEMO_PORT", "9999")
    monkeypatch.setenv("OTHER_PORT", "1")
    assert load_settings(DemoSettings).port == 9999


def test_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEMO_KAFKA_TOPIC_PARTITIONS", "0")
    with pytest.raises(SettingsError, match="DEMO_KAFKA_TOPIC_PARTITIONS"):
        load_settings(DemoSettings)


def test_production_refuses_unsafe_defaults(monkeypatch):
    monkeypatch.setenv("DEMO_ENVIRONMENT", "production")
    with pytest.raises(SettingsError) as e:
        load_settings(DemoSettings)
    assert "DEMO_DATABASE_URL" in str(e.value) and "DEMO_TOKEN_SECRET" in str(e.value)


def test_production_with_safe_settings_starts_and_does_not_migrate_on_start(monkeypatch):
    monkeypatch.setenv("DEMO_ENVIRONMENT", "production")
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql+asyncpg://app@db/demo")
    monkeypatch.setenv("DEMO_TOKEN_SECRET", "k3J9x-Qw7pL2mZ8vR4tY6uN1bC5dE0fG")
    monkeypatch.setenv("DEMO_KAFKA_IDEMPOTENT_PRODUCER", "true")
    monkeypatch.setenv("DEMO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DEMO_KAFKA_SASL_USERNAME", "demo")
    monkeypatch.setenv("DEMO_KAFKA_SASL_PASSWORD", "pw")
    s = load_settings(DemoSettings)
    assert s.run_migrations_on_start is False and s.kafka_idempotent_producer is True
    assert s.token_secret != DEV_TOKEN_SECRET


# --- Kafka connection security ----------------------------------------------------------------
PROD = {"environment": "production", "database_url": "postgresql+asyncpg://app@db/demo",
        "token_secret": "k3J9x-Qw7pL2mZ8vR4tY6uN1bC5dE0fG"}


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_refuses_plaintext_kafka_naming_the_setting_that_allows_it(protocol):
    extra = {"kafka_sasl_username": "u", "kafka_sasl_password": "p"} if protocol.startswith("SASL") else {}
    with pytest.raises(SettingsError) as e:
        load_settings(DemoSettings, **PROD, kafka_security_protocol=protocol, **extra)
    assert f"DEMO_KAFKA_SECURITY_PROTOCOL={protocol}" in str(e.value)
    assert "DEMO_KAFKA_ALLOW_PLAINTEXT=true" in str(e.value)
    # told so explicitly, production accepts it; development never asks
    assert load_settings(DemoSettings, **PROD, kafka_security_protocol=protocol, kafka_allow_plaintext=True, **extra)
    assert load_settings(DemoSettings, kafka_security_protocol=protocol, **extra).environment == "development"


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_production_accepts_tls(protocol):
    extra = {"kafka_sasl_username": "u", "kafka_sasl_password": "p"} if protocol == "SASL_SSL" else {}
    s = load_settings(DemoSettings, **PROD, kafka_security_protocol=protocol, **extra)
    assert s.kafka_security_protocol == protocol and s.kafka_allow_plaintext is False


@pytest.mark.parametrize("overrides, named", [
    ({"kafka_security_protocol": "SASL_SSL"}, ["DEMO_KAFKA_SASL_USERNAME", "DEMO_KAFKA_SASL_PASSWORD"]),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, ["DEMO_KAFKA_SASL_PASSWORD"]),
    ({"kafka_ssl_certfile": "/c.pem"}, ["DEMO_KAFKA_SSL_KEYFILE"]),
    ({"kafka_min_insync_replicas": 2}, ["DEMO_KAFKA_MIN_INSYNC_REPLICAS", "DEMO_KAFKA_REPLICATION_FACTOR"]),
    ({"kafka_sasl_mechanism": "GSSAPI"}, ["DEMO_KAFKA_SASL_MECHANISM"]),
])
def test_kafka_settings_that_cannot_work_are_refused_in_any_environment(overrides, named):
    with pytest.raises(SettingsError) as e:
        load_settings(DemoSettings, **overrides)
    for name in named:
        assert name in str(e.value)


def test_secrets_do_not_show_in_the_settings_repr():
    s = load_settings(DemoSettings, kafka_security_protocol="SASL_SSL", kafka_sasl_username="u",
                      kafka_sasl_password="hunter2-kafka", kafka_ssl_key_password="hunter3-key")
    assert "hunter2-kafka" not in repr(s) and "hunter3-key" not in repr(s)


@pytest.mark.parametrize("secret", ["a" * 32, "ab" * 20, "abcdefg" * 6, "short-but-random-7Qx"])
def test_production_refuses_a_token_secret_that_is_not_random(secret):
    with pytest.raises(SettingsError, match="DEMO_TOKEN_SECRET"):
        load_settings(DemoSettings, **{**PROD, "token_secret": secret}, kafka_allow_plaintext=True)
    # a random one of the same length passes
    assert load_settings(DemoSettings, **PROD, kafka_allow_plaintext=True)


def test_sent_outbox_rows_are_kept_at_least_the_republish_window(monkeypatch):
    monkeypatch.setenv("DEMO_OUTBOX_REPUBLISH_WINDOW_S", "900")
    monkeypatch.setenv("DEMO_OUTBOX_KEEP_SENT_S", "600")
    with pytest.raises(SettingsError, match="DEMO_OUTBOX_KEEP_SENT_S"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DEMO_OUTBOX_KEEP_SENT_S", "900")
    assert load_settings(DemoSettings).outbox_keep_sent_s == 900


def test_inbox_ids_are_kept_at_least_an_hour_and_the_republish_window(monkeypatch):
    assert load_settings(DemoSettings).inbox_keep_s == 7 * 86400
    monkeypatch.setenv("DEMO_INBOX_KEEP_S", "60")
    with pytest.raises(SettingsError, match="DEMO_INBOX_KEEP_S"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DEMO_OUTBOX_REPUBLISH_WINDOW_S", str(3 * 86400))
    monkeypatch.setenv("DEMO_OUTBOX_KEEP_SENT_S", str(3 * 86400))
    monkeypatch.setenv("DEMO_INBOX_KEEP_S", str(86400))
    with pytest.raises(SettingsError, match="DEMO_INBOX_KEEP_S"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DEMO_INBOX_KEEP_S", str(3 * 86400))
    assert load_settings(DemoSettings).inbox_keep_s == 3 * 86400
