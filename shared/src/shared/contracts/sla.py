"""Events published by the SLA timer service on ``sla.events`` (key: service order id)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.events import registry
from shared.topics import SLA_EVENTS


@registry.register("sla.deadline_fired", topic=SLA_EVENTS, version=1)
class DeadlineFired(BaseModel):
    """A timer came due. ``order_version``/``order_state`` are what the timer was
    set for: the owner of the effect applies it only if the order is still there."""

    timer_id: str
    order_id: str
    rule: str
    action: str  # e.g. auto_refund, advance_compensation, auto_close, auto_confirm, remind, escalate, breach
    order_version: int = Field(ge=0)
    order_state: str
    due_at: datetime
    fired_at: datetime
    details: dict = Field(default_factory=dict)


# ``DeadlineFired.action`` values and who acts on them:
#   orders:   auto_refund, advance_compensation, auto_close, auto_confirm
#   notifier: remind_customer, remind_merchant, escalate (details: level, to)
#   kpi:      breach (details: indicator F2/F3/F4), penalty (details: amount_cny)
DEADLINE_ACTIONS = (
    "auto_refund", "advance_compensation", "auto_close", "auto_confirm",
    "remind_customer", "remind_merchant", "escalate", "breach", "penalty",
)
