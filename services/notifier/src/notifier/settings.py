from typing import Literal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", validate_default=True)

    service_name: str = "notifier"
    port: int = 8105
    sms_provider: Literal["log", "http"] = "log"
    sms_log_file: str = "var/notifier-sms.log"
    sms_gateway_url: str = "http://127.0.0.1:9999/sms/send"
    sms_gateway_key: str = "notifier"
    sms_gateway_secret: str = "dev-sms-secret"
    sms_gateway_timeout_s: float = 5.0
    dispatch_interval_s: float = 0.5
    dispatch_batch: int = 50
    dispatch_lease_s: float = 120.0
    retry_max_attempts: int = 5
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    rate_limit_per_window: int = 5
    rate_limit_window_s: int = 3600
