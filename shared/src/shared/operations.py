"""Response models of the operations endpoints every service serves (``/health``,
``/ready``, ``/admin/*``), so their OpenAPI documents say what they answer."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Strict):
    status: str = Field(examples=["ok"])
    service: str


class Readiness(_Strict):
    status: str = Field(description="ready | not_ready")
    service: str
    checks: dict[str, bool] = Field(description="each check: database, broker (true: reachable within 0.8 s), "
                                                "schema (true: migrated to this release's head)")
    reasons: dict[str, str] = Field(default_factory=dict,
                                    description="why a failed check failed, when known (e.g. schema: migrations pending)")


class ClockState(_Strict):
    now: str = Field(json_schema_extra={"format": "date-time"})
    virtual: bool
    offset_seconds: float
    seq: int


class ClockAdvanced(_Strict):
    now: str = Field(json_schema_extra={"format": "date-time"})
    offset_seconds: float
    seq: int


class DeadLetter(_Strict):
    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    payload: str = Field(description="the message as received, phone numbers masked")
    error: str
    created_at: str = Field(json_schema_extra={"format": "date-time"})


class DeadLetters(_Strict):
    total: int
    items: list[DeadLetter]


class OutboxState(_Strict):
    pending: int
