"""Per-service settings (pydantic-settings), one env prefix per service.

Unsafe defaults (SQLite files, the development token secret, the virtual clock)
are refused outside development/test so a production deploy cannot start on them.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TOKEN_SECRET = "dev-insecure-token-secret-change-me"


class ServiceSettings(BaseSettings):
    """Base class; each service subclasses it with its own ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = ""
    data_dir: str = "var/data"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # The embedded Tansu build rejects InitProducerId, so this is off by default
    # and must be switched on for Apache Kafka.
    kafka_idempotent_producer: bool = False
    kafka_topic_partitions: int = Field(default=6, ge=1, le=256)
    kafka_replication_factor: int = Field(default=1, ge=1, le=5)
    # The embedded broker holds a group join for half the session timeout, so
    # tests and the demo use a short one; Apache Kafka's minimum is usually 6 s.
    kafka_session_timeout_ms: int = Field(default=10000, ge=1000, le=300000)
    clock: Literal["system", "virtual"] = "system"
    # Virtual clock only: a file where the service keeps its offset across restarts.
    clock_state_file: str = ""
    token_secret: str = DEV_TOKEN_SECRET
    # Where clients get tokens (the orders service's OAuth2 endpoint); shown in OpenAPI.
    token_url: str = "http://127.0.0.1:8101/v1/oauth/token"
    # Operations listener for Prometheus (GET /metrics without a token); 0 = none, and
    # /metrics is then served on the service port to platform operators only.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Browser origins allowed to call this service (CORS), e.g. the other services' /docs
    # pages calling the orders token endpoint from Swagger's Authorize dialog. JSON list.
    cors_origins: list[str] = Field(default_factory=list)
    run_migrations_on_start: bool | None = None
    outbox_poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> "ServiceSettings":
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/{self.service_name}.db"
        if not (
            self.database_url.startswith("sqlite+aiosqlite://")
            or self.database_url.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {self.database_url.split(':', 1)[0]}://...)"
            )
        if self.run_migrations_on_start is None:
            self.run_migrations_on_start = self.environment != "production"
        if self.environment == "production":
            problems = []
            if self.database_url.startswith("sqlite"):
                problems.append("DATABASE_URL is a SQLite file; production needs PostgreSQL")
            if self.token_secret == DEV_TOKEN_SECRET or len(self.token_secret) < 32 or len(set(self.token_secret)) < 8:
                problems.append("TOKEN_SECRET is the development default, shorter than 32 characters "
                                "or not random (fewer than 8 distinct characters)")
            if self.clock == "virtual":
                problems.append("CLOCK=virtual is for tests and demos only")
            if problems:
                prefix = self.model_config.get("env_prefix", "")
                raise ValueError(
                    "unsafe settings for production: "
                    + "; ".join(f"{prefix}{p}" for p in problems)
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(cls: type[ServiceSettings], **overrides) -> ServiceSettings:
    """Build settings; a bad value fails with a message naming the variable."""
    from pydantic import ValidationError

    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            var = f"{prefix}{loc}".upper() if loc != "settings" else prefix.rstrip("_") or "settings"
            lines.append(f"{var}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None


class SettingsError(RuntimeError):
    """Raised at start when a setting is missing or unsafe."""
