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
    s = load_settings(DemoSettings)
    assert s.run_migrations_on_start is False and s.kafka_idempotent_producer is True
    assert s.token_secret != DEV_TOKEN_SECRET
