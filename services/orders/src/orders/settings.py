from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
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
    # Audit attachments: "local" keeps them in blob_dir on this host (default <data_dir>/orders-blobs;
    # one host only), "s3" in a bucket of S3-compatible object storage every replica shares.
    blob_store: Literal["local", "s3"] = "local"
    blob_dir: str = ""
    # S3: endpoint empty = Amazon S3 itself; MinIO and the like need theirs (http://minio:9000).
    blob_s3_endpoint_url: str = ""
    blob_s3_bucket: str = ""
    blob_s3_region: str = ""
    blob_s3_prefix: str = "attachments/"
    # Empty keys: boto3's own chain (AWS_* variables, web identity of a service account, instance profile).
    blob_s3_access_key_id: str = ""
    blob_s3_secret_access_key: SecretStr = SecretStr("")
    # "path" for most self-hosted stores (MinIO); "auto"/"virtual" for Amazon S3.
    blob_s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    blob_s3_timeout_s: float = Field(default=10.0, gt=0, le=120)
    retention_days: int = Field(default=730, ge=730, description="Records are kept at least 2 years")
    # Per-category eligibility windows in days, e.g. {"phones:return:no_reason": 15, "furniture:repair": 730}.
    eligibility_windows: dict[str, int] = Field(default_factory=dict)
    max_staff_per_merchant: int = Field(default=10, ge=1, le=100)
    # Where customers send items back in the modes whose receipt is the platform's
    # (`platform`, `customer_contact`): the platform warehouse (备件库), not the merchant.
    platform_return_address: str = Field(
        default="平台售后备件库 北京市大兴区亦庄经济开发区 备件库收货组", min_length=1, max_length=500,
        description="The platform warehouse's return address, shown in platform and customer_contact modes")
    # Wake the outbox relay at most once per this many seconds (0: after every commit);
    # see adapters/relay_pacing.py.
    outbox_wake_window_s: float = Field(default=0.05, ge=0, le=5)
    # The adapter of the order store (adapters/store.py): "session" (SQLAlchemy), "direct"
    # (asyncpg, one statement per action; PostgreSQL only), "auto": direct on PostgreSQL.
    order_store: Literal["auto", "session", "direct"] = "auto"

    @model_validator(mode="after")
    def _blob_store_complete(self) -> "OrdersSettings":
        if self.blob_store == "s3":
            if not self.blob_s3_bucket:
                raise ValueError("ORDERS_BLOB_S3_BUCKET is required with ORDERS_BLOB_STORE=s3")
            if bool(self.blob_s3_access_key_id) != bool(self.blob_s3_secret_access_key.get_secret_value()):
                raise ValueError("ORDERS_BLOB_S3_ACCESS_KEY_ID and ORDERS_BLOB_S3_SECRET_ACCESS_KEY go together "
                                 "(or leave both empty for boto3's credential chain)")
        return self

    @model_validator(mode="after")
    def _direct_needs_postgres(self) -> "OrdersSettings":
        if self.order_store == "direct" and self.is_sqlite:
            raise ValueError("ORDERS_ORDER_STORE=direct needs PostgreSQL (ORDERS_DATABASE_URL=postgresql+asyncpg://…)")
        return self

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
