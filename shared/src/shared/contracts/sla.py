"""Events published by the SLA timer service on ``sla.events`` (key: service order id).
The deadlines and who acts on them: docs/deadlines.md, docs/events.md § 3."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType, field

from shared.contracts.vocabulary import OrderState
from shared.events import Contract, registry
from shared.topics import SLA_EVENTS

AwareTime = Annotated[datetime, Meta(tz=True)]


@registry.register("sla.deadline_fired", topic=SLA_EVENTS, version=1)
class DeadlineFired(Contract, kw_only=True):
    """A timer came due. ``order_version``/``order_state`` are what the timer was
    set for: the owner of the effect applies it only if the order is still there."""

    timer_id: str
    order_id: str
    rule: str
    action: str  # DEADLINE_ACTIONS
    order_version: Annotated[int, Meta(ge=0)]
    order_state: OrderState
    due_at: AwareTime
    fired_at: AwareTime
    details: dict[str, Any] = field(default_factory=dict)
    # The facts that cancel the timer's rule (``action:<transition action>``,
    # ``state:<to_state>`` as in the sla-timer's rule table): a consumer that has seen a
    # transition of this order with a version above ``order_version`` producing one of them
    # knows the deadline no longer holds. Left out of the JSON when empty (UNSET: falsy, so
    # ``if fired.cancelled_by:`` reads as before); events from before it have none.
    cancelled_by: list[str] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not self.cancelled_by:
            self.cancelled_by = UNSET


# ``DeadlineFired.action`` values and who acts on them:
#   orders:   auto_refund, advance_compensation, auto_close, auto_confirm
#   notifier: remind_customer, remind_merchant, escalate (details: level, to)
#   kpi:      breach (details: indicator F2/F3/F4), penalty (details: amount_cny)
DEADLINE_ACTIONS = (
    "auto_refund", "advance_compensation", "auto_close", "auto_confirm",
    "remind_customer", "remind_merchant", "escalate", "breach", "penalty",
)


class ArmedDeadline(Contract, kw_only=True):
    timer_id: str
    rule: str
    action: str
    due_at: AwareTime  # UTC, the rule's duration with any override and the business calendar applied


@registry.register("sla.deadlines_armed", topic=SLA_EVENTS, version=1)
class DeadlinesArmed(Contract, kw_only=True):
    """The timers one order event started, with when each is due: what the order actually
    faces, overrides included (the orders service shows it as the expected completion).
    ``order_version``/``order_state``: the order event that armed them. Published once per
    order event that started at least one timer (a rule an override disables starts none)."""

    order_id: str
    order_version: Annotated[int, Meta(ge=0)]
    order_state: OrderState
    deadlines: Annotated[list[ArmedDeadline], Meta(min_length=1)]
