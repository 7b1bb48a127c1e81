"""Per-service settings (pydantic-settings), one env prefix per service.

Unsafe defaults (SQLite files, the development token secret, the virtual clock)
are refused outside development/test so a production deploy cannot start on them.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
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
    # The embedded broker's own count (shared.broker.EMBEDDED_PARTITIONS); Apache Kafka
    # deployments set theirs (deploy/ uses 6).
    kafka_topic_partitions: int = Field(default=4, ge=1, le=256)
    kafka_replication_factor: int = Field(default=1, ge=1, le=5)
    # The embedded broker holds a group join for half the session timeout, so
    # tests and the demo use a short one; Apache Kafka's minimum is usually 6 s.
    kafka_session_timeout_ms: int = Field(default=10000, ge=1000, le=300000)
    # Topics this service creates (at start, when missing) or `<service> provision-topics`
    # creates: writes need this many in-sync replicas (acks=all); -1 retention keeps events
    # for ever (`kpi replay` and re-driving parked messages read topics from offset 0).
    kafka_min_insync_replicas: int = Field(default=1, ge=1, le=5)
    kafka_topic_retention_ms: int = Field(default=-1, ge=-1)
    # Connection security of every Kafka client (producer, consumers, admin): see
    # shared.kafka.kafka_options. Production refuses PLAINTEXT and SASL_PLAINTEXT unless
    # kafka_allow_plaintext says so explicitly (e.g. a broker network private to one host).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_allow_plaintext: bool = False
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # TLS: the CA bundle that signed the brokers' certificates (empty: the system's), and a
    # client certificate and key for brokers that authenticate clients by certificate (mTLS).
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_ssl_key_password: SecretStr = SecretStr("")
    kafka_ssl_check_hostname: bool = True
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
    # A broker that restarted empty gets the rows sent this recently again (shared.outbox); 0: never.
    outbox_republish_window_s: float = Field(default=600, ge=0, le=7 * 86400)
    # Sent outbox rows are deleted this long after they were sent; at least the window above.
    outbox_keep_sent_s: float = Field(default=3600, ge=0, le=30 * 86400)
    # The ids of applied events (the consumers' inbox) are deleted this long after they were
    # applied: keep it at least as long as the broker keeps the topics (a redelivered event
    # whose id is gone is applied again). Kafka's default retention: 7 days.
    inbox_keep_s: float = Field(default=7 * 86400, ge=3600, le=365 * 86400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Log lines: JSON (one object per line), or short human lines; unset: human lines when
    # stderr is a terminal outside production, JSON otherwise (shared.logging).
    log_json: bool | None = None
    # How often the gauges read from the database (outbox backlog, dead letters, orders by
    # state, pending timers...) and the readiness gauge are recomputed for /metrics.
    metrics_refresh_s: float = Field(default=15.0, gt=0, le=3600)

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
        prefix = self.model_config.get("env_prefix", "")
        if self.outbox_keep_sent_s < self.outbox_republish_window_s:
            raise ValueError(f"{prefix}OUTBOX_KEEP_SENT_S ({self.outbox_keep_sent_s:g}) must be at least "
                             f"{prefix}OUTBOX_REPUBLISH_WINDOW_S ({self.outbox_republish_window_s:g}): the rows of "
                             "the window are sent again after a broker restart")
        if self.inbox_keep_s < self.outbox_republish_window_s:
            raise ValueError(f"{prefix}INBOX_KEEP_S ({self.inbox_keep_s:g}) must be at least "
                             f"{prefix}OUTBOX_REPUBLISH_WINDOW_S ({self.outbox_republish_window_s:g}): an event "
                             "sent again after a broker restart must still find its id")
        kafka = self._kafka_problems(prefix)
        if kafka:
            raise ValueError("; ".join(kafka))
        if self.environment == "production":
            problems = []
            if self.database_url.startswith("sqlite"):
                problems.append("DATABASE_URL is a SQLite file; production needs PostgreSQL")
            if self.token_secret == DEV_TOKEN_SECRET or len(self.token_secret) < 32 or len(set(self.token_secret)) < 8:
                problems.append("TOKEN_SECRET is the development default, shorter than 32 characters "
                                "or not random (fewer than 8 distinct characters)")
            if self.clock == "virtual":
                problems.append("CLOCK=virtual is for tests and demos only")
            if self.kafka_security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and not self.kafka_allow_plaintext:
                problems.append(
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} sends events (and SASL passwords) "
                    f"unencrypted: use SSL or SASL_SSL, or set {prefix}KAFKA_ALLOW_PLAINTEXT=true if the brokers' "
                    "network is private to this deployment")
            if problems:
                raise ValueError(
                    "unsafe settings for production: "
                    + "; ".join(f"{prefix}{p}" for p in problems)
                )
        return self

    def _kafka_problems(self, p: str) -> list[str]:
        """Kafka connection settings that cannot work together (any environment); ``p`` is the prefix."""
        problems = []
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            problems.append(f"{p}KAFKA_MIN_INSYNC_REPLICAS={self.kafka_min_insync_replicas} is more than "
                            f"{p}KAFKA_REPLICATION_FACTOR={self.kafka_replication_factor}: no write could succeed")
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            problems.append(f"{p}KAFKA_SASL_USERNAME and {p}KAFKA_SASL_PASSWORD are required with "
                            f"{p}KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            problems.append(f"{p}KAFKA_SSL_CERTFILE and {p}KAFKA_SSL_KEYFILE go together "
                            "(a client certificate and its key)")
        return problems

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
