from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", validate_default=True)

    service_name: str = "orders"
    port: int = 8101
    token_ttl_s: int = Field(default=900, ge=60, le=90 * 86400, description="Lifetime of issued bearer tokens")
    blob_dir: str = ""  # audit attachments; default <data_dir>/orders-blobs
    retention_days: int = Field(default=730, ge=730, description="Records are kept at least 2 years")
    # Per-category eligibility windows in days, e.g. {"phones:return:no_reason": 15, "furniture:repair": 730}.
    eligibility_windows: dict[str, int] = Field(default_factory=dict)
    max_staff_per_merchant: int = Field(default=10, ge=1, le=100)
    # Wake the outbox relay at most once per this many seconds (0: after every commit);
    # see adapters/relay_pacing.py.
    outbox_wake_window_s: float = Field(default=0.05, ge=0, le=5)
