from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", validate_default=True)

    service_name: str = "orders"
    port: int = 8101
    token_ttl_s: int = Field(default=900, ge=60, le=90 * 86400, description="Lifetime of issued bearer tokens")
    # Token endpoint failed-attempt limits ("N/period", the `limits` notation): per client id
    # and per source address; in-process counts unless token_limit_storage names a shared one.
    token_failures_per_client: str = Field(default="5/5minutes")
    token_failures_per_address: str = Field(default="30/5minutes")
    token_limit_storage: str = Field(default="async+memory://", description="limits storage URI (async+redis://… to share)")
    token_hash_concurrency: int = Field(default=2, ge=1, le=32, description="Secret hashes computed at once")
    # Other replicas' account changes reach this one's revocation check within this many seconds.
    account_refresh_s: float = Field(default=2.0, gt=0, le=60)
    blob_dir: str = ""  # audit attachments; default <data_dir>/orders-blobs
    retention_days: int = Field(default=730, ge=730, description="Records are kept at least 2 years")
    # Per-category eligibility windows in days, e.g. {"phones:return:no_reason": 15, "furniture:repair": 730}.
    eligibility_windows: dict[str, int] = Field(default_factory=dict)
    max_staff_per_merchant: int = Field(default=10, ge=1, le=100)
    # Wake the outbox relay at most once per this many seconds (0: after every commit);
    # see adapters/relay_pacing.py.
    outbox_wake_window_s: float = Field(default=0.05, ge=0, le=5)

    @field_validator("token_failures_per_client", "token_failures_per_address")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse(v)  # ValueError names the notation
        return v

    @field_validator("token_limit_storage")
    @classmethod
    def _storage(cls, v: str) -> str:
        if not v.startswith("async+"):
            raise ValueError("the token endpoint is async: use an async+… limits storage URI (async+memory://)")
        return v
