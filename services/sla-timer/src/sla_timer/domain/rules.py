"""The deadline rules of docs/deadlines.md as data: what starts a timer, how long it runs
(calendar time or working days), what it asks for at due, what cancels it.

Triggers are order-event facts: ``created`` (service_order.created) or a
``service_order.transitioned`` action (``action:<name>``), arrival in a state
(``state:<name>``) or an arbitrator's outcome (``outcome:<refund|exchange|...>``). Every rule is cancelled by abandon and by the order ending
in a terminal state the rule no longer matters in."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import timedelta

from shared.contracts.vocabulary import TERMINAL_STATES, OrderState
from shared.service_levels import (AUDIT_WITHIN, EXCHANGE_SHIP_WITHIN, PROCESS_WITHIN, PROCESSING_PENALTY_AFTER,
                                   PROCESSING_PENALTY_CNY)

CREATED = "created"

ABANDON = frozenset({"action:abandon", "action:audit.abandon"})
AUDIT_DECISIONS = frozenset({
    "action:audit.resend_without_return", "action:audit.approve_return", "action:audit.request_feedback",
    "action:audit.reject", "action:audit.abandon",
})
PROCESS_DECISIONS = frozenset({
    "action:process.refund", "action:process.exchange", "action:process.return_original",
    "action:process.offline_exchange", "action:process.repair", "action:arbitration.decide",
})
# A timer is moot once the order ended (its effect would be refused anyway).
# (terminal states but ``completed``: the customer-confirmation rule lists that one itself)
ENDED = frozenset(f"state:{s}" for s in TERMINAL_STATES if s != OrderState.COMPLETED)
ENDED_OR_DONE = ENDED | {f"state:{OrderState.COMPLETED}"}


@dataclass(frozen=True)
class Rule:
    name: str
    starts: frozenset[str]
    action: str  # DeadlineFired.action
    after: timedelta | None = None  # calendar time (weekends and holidays count)
    working_days: int | None = None  # business-calendar days, same Beijing wall-clock time
    cancelled_by: frozenset[str] = field(default_factory=frozenset)
    details: dict = field(default_factory=dict)
    problem_type: str | None = None  # only orders with this problem type
    policy: bool = False  # marked *default* in the spec: overridable per merchant/category
    description: str = ""

    @property
    def calendar(self) -> str:
        return "working_days" if self.working_days is not None else "calendar_time"


def _r(name, starts, action, *, cancelled_by=frozenset(), **kw) -> Rule:
    return Rule(name, frozenset(starts), action, cancelled_by=frozenset(cancelled_by), **kw)


H, D = timedelta(hours=1), timedelta(days=1)
# Second escalation step of the first response: another 30 minutes after the
# supervisor was alerted (docs/deadlines.md gives only the chain; 30 min is our default).
FIRST_RESPONSE_MANAGER_AFTER = timedelta(minutes=60)
CLAIMED = frozenset({"action:claim", "action:assign"}) | AUDIT_DECISIONS
SHIPPED = frozenset({"action:fill_shipment"})
ARBITRATION = frozenset({"action:arbitration.request"})

RULES: tuple[Rule, ...] = (
    _r("audit_deadline", {CREATED}, "breach", after=AUDIT_WITHIN, details={"indicator": "F2"},
       cancelled_by=AUDIT_DECISIONS | ABANDON | ENDED, description="audit SLA breach (KPI F2, penalty counting)"),
    _r("audit_escalation", {CREATED}, "escalate", after=AUDIT_WITHIN, details={"level": 1, "to": "supervisor"},
       cancelled_by=AUDIT_DECISIONS | ABANDON | ENDED, description="audit overdue: escalate"),
    _r("advance_compensation", {CREATED}, "advance_compensation", after=7 * D,
       cancelled_by=AUDIT_DECISIONS | ABANDON | ENDED, description="先行赔付 → refunded_by_system"),
    _r("feedback_timeout", {"action:audit.request_feedback"}, "auto_close", after=15 * D,
       cancelled_by={"action:customer_feedback"} | ABANDON | ENDED, description="→ closed"),
    _r("ship_back_reminder_1", {"action:audit.approve_return"}, "remind_customer", after=5 * D,
       details={"reminder": 1, "day": 5}, cancelled_by=SHIPPED | ABANDON | ENDED, description="SMS to the customer"),
    _r("ship_back_reminder_2", {"action:audit.approve_return"}, "remind_customer", after=10 * D,
       details={"reminder": 2, "day": 10}, cancelled_by=SHIPPED | ABANDON | ENDED, description="SMS to the customer"),
    _r("ship_back_reminder_3", {"action:audit.approve_return"}, "remind_customer", after=25 * D,
       details={"reminder": 3, "day": 25}, cancelled_by=SHIPPED | ABANDON | ENDED, description="SMS to the customer"),
    _r("ship_back_timeout", {"action:audit.approve_return"}, "auto_close", after=30 * D, policy=True,
       cancelled_by=SHIPPED | ABANDON | ENDED, description="→ closed (customer never shipped)"),
    _r("merchant_reminder", SHIPPED, "remind_merchant", after=10 * D, details={"day": 10},
       cancelled_by=PROCESS_DECISIONS | ARBITRATION | ABANDON | ENDED,
       description="SMS to the merchant's after-sales contact phone"),
    _r("auto_refund", SHIPPED, "auto_refund", after=15 * D,
       cancelled_by=PROCESS_DECISIONS | ARBITRATION | ABANDON | ENDED, description="full refund → refunded_by_system"),
    _r("processing_kpi", {"action:register_receipt"}, "breach", after=PROCESS_WITHIN, details={"indicator": "F3"},
       cancelled_by=PROCESS_DECISIONS | ABANDON | ENDED, description="processing SLA breach (KPI F3)"),
    _r("processing_penalty", {"action:register_receipt"}, "penalty", after=PROCESSING_PENALTY_AFTER,
       details={"amount_cny": str(PROCESSING_PENALTY_CNY)}, cancelled_by=PROCESS_DECISIONS | ABANDON | ENDED,
       description="2000 CNY penalty for this order"),
    # Every outcome starts the same deadlines whoever decided it: a merchant, an arbitrator
    # (``outcome:<outcome>`` of arbitration.decide) or the system.
    _r("exchange_shipping", {"action:audit.resend_without_return", "action:process.exchange", "outcome:exchange"},
       "breach",
       after=EXCHANGE_SHIP_WITHIN, details={"indicator": "F4"}, cancelled_by={"action:exchange.shipped"},
       description="exchange shipping SLA breach (KPI F4)"),
    _r("first_response", {CREATED}, "escalate", after=timedelta(minutes=30), details={"level": 1, "to": "supervisor"},
       cancelled_by=CLAIMED | ABANDON | ENDED, description="escalate to the supervisor"),
    _r("first_response_manager", {CREATED}, "escalate", after=FIRST_RESPONSE_MANAGER_AFTER,
       details={"level": 2, "to": "operations_manager"}, cancelled_by=CLAIMED | ABANDON | ENDED,
       description="escalate to the operations manager"),
    _r("quality_plan", {CREATED}, "escalate", after=72 * H, problem_type="quality", details={"level": 1, "to": "supervisor"},
       cancelled_by=PROCESS_DECISIONS | ABANDON | ENDED, description="quality plan overdue: escalate"),
    _r("logistics_resolution", {CREATED}, "escalate", after=24 * H, problem_type="logistics",
       details={"level": 1, "to": "supervisor"}, cancelled_by=PROCESS_DECISIONS | ABANDON | ENDED,
       description="logistics resolution overdue: escalate"),
    _r("repair", {"action:process.repair"}, "escalate", working_days=3, details={"level": 1, "to": "supervisor"},
       cancelled_by={"action:repair.shipped_back"} | ABANDON, description="repair overdue: escalate"),
    _r("refund_payout", {"action:process.refund", "outcome:refund", "action:system.auto_refund",
                         "action:system.advance_compensation"}, "escalate", after=24 * H,
       details={"level": 1, "to": "finance"},
       cancelled_by={"action:refund.paid"}, description="refund not paid: escalate to finance"),
    _r("customer_confirmation", {"state:provisionally_completed"}, "auto_confirm", after=7 * D, policy=True,
       cancelled_by={"action:confirm", "action:message", "action:cancel_outcome"} | ABANDON | ENDED_OR_DONE, description="→ completed"),
)
RULES_BY_NAME = {r.name: r for r in RULES}
# What a fired deadline carries (``DeadlineFired.cancelled_by``), sorted: consumers that saw a
# later transition producing one of these facts ignore the deadline (stale timer).
CANCELLED_BY: dict[str, list[str]] = {r.name: sorted(r.cancelled_by) for r in RULES}


def facts_of_created() -> set[str]:
    return {CREATED}


def facts_of_transition(action: str, from_state: str, to_state: str, details: dict | None = None) -> set[str]:
    facts = {f"action:{action}"}
    if to_state != from_state:
        facts.add(f"state:{to_state}")
    if action == "arbitration.decide" and details and isinstance(details.get("outcome"), str):
        facts.add(f"outcome:{details['outcome']}")  # the arbitrator's binding outcome
    return facts


def rules_started(facts: set[str], problem_type: str) -> list[Rule]:
    return list(_rules_started(frozenset(facts), problem_type))


@lru_cache(maxsize=1024)  # few distinct (facts, problem) pairs; this runs per consumed event
def _rules_started(facts: frozenset[str], problem_type: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.starts & facts and r.problem_type in (None, problem_type))


def rules_cancelled(facts: set[str]) -> set[str]:
    return set(_rules_cancelled(frozenset(facts)))


@lru_cache(maxsize=1024)  # as above: few distinct fact sets, asked for every consumed event
def _rules_cancelled(facts: frozenset[str]) -> frozenset[str]:
    return frozenset(r.name for r in RULES if r.cancelled_by & facts)
