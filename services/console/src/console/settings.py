from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", validate_default=True)

    service_name: str = "console"
    port: int = 8106
    # The services the console reads (their public APIs only).
    orders_url: str = "http://127.0.0.1:8101"
    routing_url: str = "http://127.0.0.1:8102"
    sla_timer_url: str = "http://127.0.0.1:8103"
    kpi_url: str = "http://127.0.0.1:8104"
    notifier_url: str = "http://127.0.0.1:8105"
    # The console's own platform-operator client (orders create-operator): it reads the
    # services with it; what a page shows is then filtered by the signed-in person's role.
    service_client_id: str = ""
    service_client_secret: SecretStr = SecretStr("")
    # A sign-in lasts this long (wall-clock time), whatever the person's token lifetime.
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    # Session and sign-in cookies only over HTTPS (production sits behind TLS).
    cookie_secure: bool = False
    # The pages ask for fresh figures this often (seconds).
    refresh_s: float = Field(default=5.0, ge=1, le=300)
    # Answers of the services are reused this long, so many open pages cost the services one call.
    service_cache_s: float = Field(default=3.0, ge=0, le=300)
    service_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _console_production(self) -> "ConsoleSettings":
        if self.environment == "production":
            problems = []
            if not self.service_client_id or not self.service_client_secret.get_secret_value():
                problems.append("CONSOLE_SERVICE_CLIENT_ID and CONSOLE_SERVICE_CLIENT_SECRET are required "
                                "(an operator client: orders create-operator)")
            if not self.cookie_secure:
                problems.append("CONSOLE_COOKIE_SECURE must be true (session cookies only over HTTPS)")
            if problems:
                raise ValueError("unsafe settings for production: " + "; ".join(problems))
        return self
