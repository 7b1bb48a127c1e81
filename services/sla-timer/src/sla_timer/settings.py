from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SlaTimerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_TIMER_", extra="ignore", validate_default=True)

    service_name: str = "sla_timer"
    port: int = 8103
    fire_batch_size: int = Field(default=1000, ge=1, le=50_000)
    # Longest sleep of the firing loop: bounds lateness after a virtual-clock jump.
    fire_poll_interval_s: float = Field(default=0.2, gt=0, le=10)
    # Shortest wait after a partial batch before the next claim (timers coming due one by one
    # fire together): bounds the claims per second; adds at most this much lateness.
    fire_min_gap_s: float = Field(default=0.05, ge=0, le=5)
    fire_enabled: bool = True
    # Outbox rows the relay publishes per transaction: a fired batch goes out in one or
    # two relay rounds instead of ten (each round also checks the broker's metadata).
    outbox_batch_size: int = Field(default=5000, ge=1, le=50_000)
