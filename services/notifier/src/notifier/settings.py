from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

DEV_SMS_SECRET = "dev-sms-secret"
# SMS providers for development and tests only: ``log`` writes messages to a file.
TEST_PROVIDERS = frozenset({"log"})


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", validate_default=True)

    service_name: str = "notifier"
    port: int = 8105
    sms_provider: Literal["log", "http"] = "log"
    sms_log_file: str = "var/notifier-sms.log"
    sms_gateway_url: str = "http://127.0.0.1:9999/sms/send"
    sms_gateway_key: str = "notifier"
    # Signs requests to the gateway and verifies its delivery receipts (HMAC-SHA256).
    sms_gateway_secret: str = DEV_SMS_SECRET
    sms_gateway_timeout_s: float = 5.0
    dispatch_interval_s: float = 0.5
    dispatch_batch: int = 50
    dispatch_lease_s: float = 120.0
    retry_max_attempts: int = 5
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    rate_limit_per_window: int = 5
    rate_limit_window_s: int = 3600

    @model_validator(mode="after")
    def _production_gateway(self) -> "NotifierSettings":
        """Production refuses development secrets and test providers (the shared checks
        of the database, token secret and clock run first)."""
        if self.environment != "production":
            return self
        problems = []
        secret = self.sms_gateway_secret
        if secret == DEV_SMS_SECRET or len(secret) < 32 or len(set(secret)) < 8:
            problems.append("SMS_GATEWAY_SECRET is the development default, shorter than 32 characters "
                            "or not random (fewer than 8 distinct characters)")
        if self.sms_provider in TEST_PROVIDERS:
            problems.append(f"SMS_PROVIDER={self.sms_provider} is a test provider; production sends through "
                            "the gateway (http)")
        if problems:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError("unsafe settings for production: " + "; ".join(f"{prefix}{p}" for p in problems))
        return self
