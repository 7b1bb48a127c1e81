"""Events published by the SLA timer service on ``sla.events`` (key: service order id)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_serializer

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
    # The facts that cancel the timer's rule (``action:<transition action>``,
    # ``state:<to_state>`` as in the sla-timer's rule table): a consumer that has seen a
    # transition of this order with a version above ``order_version`` producing one of them
    # knows the deadline no longer holds. Optional (events from before it have none, and
    # nothing can be checked then); left out of the JSON when empty, so an event without it
    # keeps the byte layout it always had.
    cancelled_by: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_empty_cancelled_by(self, handler):
        out = handler(self)
        if not out.get("cancelled_by"):
            out.pop("cancelled_by", None)
        return out


# ``DeadlineFired.action`` values and who acts on them:
#   orders:   auto_refund, advance_compensation, auto_close, auto_confirm
#   notifier: remind_customer, remind_merchant, escalate (details: level, to)
#   kpi:      breach (details: indicator F2/F3/F4), penalty (details: amount_cny)
DEADLINE_ACTIONS = (
    "auto_refund", "advance_compensation", "auto_close", "auto_confirm",
    "remind_customer", "remind_merchant", "escalate", "breach", "penalty",
)


class ArmedDeadline(BaseModel):
    timer_id: str
    rule: str
    action: str
    due_at: datetime  # UTC, the rule's duration with any override and the business calendar applied


@registry.register("sla.deadlines_armed", topic=SLA_EVENTS, version=1)
class DeadlinesArmed(BaseModel):
    """The timers one order event started, with when each is due: what the order actually
    faces, overrides included (the orders service shows it as the expected completion).
    ``order_version``/``order_state``: the order event that armed them. Published once per
    order event that started at least one timer (a rule an override disables starts none)."""

    order_id: str
    order_version: int = Field(ge=0)
    order_state: str
    deadlines: list[ArmedDeadline] = Field(min_length=1)
