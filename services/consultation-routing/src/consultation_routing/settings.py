from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConsultationRoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSULTATION_ROUTING_", extra="ignore", validate_default=True)

    service_name: str = "consultation_routing"
    port: int = 8102
    platform_hotline: str = "400-606-5500"
    platform_im_queue_id: str = "platform"
    platform_hover_text: str = "400-606-5500：平台客服，解答全部商品的售前咨询与售后服务"
    # The in-memory state is refreshed from the database this often; older than
    # ``max_state_age_s`` and every decision answers the platform queue (degraded).
    refresh_interval_s: float = Field(default=2.0, gt=0, le=300)
    max_state_age_s: float = Field(default=30.0, gt=0, le=3600)
    # A queue whose last report is older than this counts as having no agents.
    queue_state_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    # Decisions wait here for the journal (a few ms); when it is full new ones are dropped (counted).
    decision_buffer: int = Field(default=100_000, ge=100)
    # The decision journal (durable, drained into the outbox); default <DATA_DIR>/routing-journal-<PORT>.
    # One service instance per directory (locked).
    journal_dir: str = ""
    journal_interval_s: float = Field(default=0.05, gt=0, le=5)
    decision_batch: int = Field(default=500, ge=1, le=5000)
    # Decision ids of named consultations this process already billed (a repeat is not billed
    # again); KPI's one fact per consultation id holds across replicas and restarts.
    remember_billed: int = Field(default=100_000, ge=1, le=10_000_000)
    # Decisions a transfer may name are kept this long (the writer deletes older ones).
    decision_retention_h: float = Field(default=72.0, gt=0, le=24 * 366)
    # Service orders routing remembers (order → SKU, for consultations naming only an order),
    # by creation time: older ones are forgotten (memory and table).
    order_lookup_days: int = Field(default=180, ge=1, le=3660)
    # A transfer whose decision this replica answered but has not written yet waits this long for it.
    transfer_wait_s: float = Field(default=2.0, ge=0, le=30)

    @property
    def journal_path(self) -> str:
        import os

        return self.journal_dir or os.path.join(self.data_dir, f"routing-journal-{self.port}")
