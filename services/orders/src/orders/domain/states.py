"""The service-order state machine (docs/lifecycle.md) as a transition TABLE.

``TRANSITIONS[(state, action)]`` gives the state after the action and who may do
it. ``parties``: ``customer`` (storefront), ``handler`` (whoever the mode's
responsibility table puts in charge of ``step``: merchant staff or platform),
``arbitrator``, ``system`` (timer effects). An action whose target equals its
source is an in-state action that still gets a timeline entry and an event.
"""
from __future__ import annotations

from dataclasses import dataclass

STATES = (
    "pending_claim", "pending_audit", "awaiting_customer_feedback", "awaiting_return_shipment",
    "awaiting_receipt", "pending_process", "provisionally_completed", "unresolved", "arbitration",
    "completed", "rejected", "abandoned", "closed", "refunded_by_system",
)
TERMINAL = frozenset({"completed", "rejected", "abandoned", "closed", "refunded_by_system"})
# Abandon (客户放弃) is allowed from every state before provisionally_completed (not while locked).
BEFORE_PROVISIONAL = ("pending_claim", "pending_audit", "awaiting_customer_feedback",
                      "awaiting_return_shipment", "awaiting_receipt", "pending_process")

AUDIT_DECISIONS = {
    "resend_without_return": "provisionally_completed",
    "approve_return": "awaiting_return_shipment",
    "request_feedback": "awaiting_customer_feedback",
    "reject": "rejected",
    "abandon": "abandoned",
}
PROCESS_DECISIONS = ("refund", "exchange", "return_original", "offline_exchange", "repair")
ARBITRATION_OUTCOMES = {"refund": "completed", "exchange": "completed", "return_original": "completed",
                        "reject": "rejected"}


@dataclass(frozen=True)
class Rule:
    to: str
    parties: frozenset[str]
    step: str | None = None  # responsibility step for ``handler``: assign/audit/receipt/process/service


def _r(to: str, *parties: str, step: str | None = None) -> Rule:
    return Rule(to, frozenset(parties), step)


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("pending_claim", "claim"): _r("pending_audit", "handler", step="audit"),
    ("pending_claim", "assign"): _r("pending_audit", "handler", step="assign"),
    ("pending_audit", "assign"): _r("pending_audit", "handler", step="assign"),
    **{("pending_audit", f"audit.{d}"): _r(to, "handler", step="audit") for d, to in AUDIT_DECISIONS.items()},
    ("awaiting_customer_feedback", "customer_feedback"): _r("pending_audit", "customer"),
    ("awaiting_return_shipment", "fill_shipment"): _r("awaiting_receipt", "customer", "handler", step="service"),
    ("awaiting_return_shipment", "remind_to_ship"): _r("awaiting_return_shipment", "handler", step="service"),
    ("awaiting_receipt", "register_receipt"): _r("pending_process", "handler", step="receipt"),
    ("awaiting_receipt", "freight.edit"): _r("awaiting_receipt", "handler", step="process"),
    ("pending_process", "freight.edit"): _r("pending_process", "handler", step="process"),
    **{("pending_process", f"process.{d}"): _r("provisionally_completed", "handler", step="process")
       for d in PROCESS_DECISIONS},
    ("provisionally_completed", "confirm"): _r("completed", "customer"),
    ("provisionally_completed", "message"): _r("unresolved", "customer"),
    ("provisionally_completed", "cancel_outcome"): _r("pending_process", "handler", step="process"),
    ("unresolved", "message"): _r("unresolved", "customer"),
    ("unresolved", "reply"): _r("unresolved", "handler", step="service"),
    ("unresolved", "process.offline_exchange"): _r("completed", "handler", step="process"),
    ("unresolved", "mark_resolved"): _r("completed", "handler", step="service"),
    ("completed", "rate"): _r("completed", "customer"),
    # Locked: only the arbitrator decides; receipt may still be registered (docs/lifecycle.md).
    ("arbitration", "arbitration.decide"): _r("completed", "arbitrator"),
    ("arbitration", "register_receipt"): _r("arbitration", "handler", step="receipt"),
    # System effects of fired deadlines (docs/deadlines.md).
    ("pending_claim", "system.advance_compensation"): _r("refunded_by_system", "system"),
    ("pending_audit", "system.advance_compensation"): _r("refunded_by_system", "system"),
    ("awaiting_customer_feedback", "system.auto_close"): _r("closed", "system"),
    ("awaiting_return_shipment", "system.auto_close"): _r("closed", "system"),
    ("awaiting_receipt", "system.auto_refund"): _r("refunded_by_system", "system"),
    ("pending_process", "system.auto_refund"): _r("refunded_by_system", "system"),
    ("provisionally_completed", "system.auto_confirm"): _r("completed", "system"),
}
for _s in BEFORE_PROVISIONAL:
    TRANSITIONS[(_s, "abandon")] = _r("abandoned", "customer", "handler", step="service")
for _s in ("awaiting_receipt", "pending_process", "unresolved"):
    TRANSITIONS[(_s, "arbitration.request")] = _r("arbitration", "customer", "handler", step="service")
# Refund payout confirmed by the platform's finance (ends the 24 h refund-payout deadline).
for _s in ("provisionally_completed", "unresolved", "completed", "refunded_by_system"):
    TRANSITIONS[(_s, "refund.paid")] = _r(_s, "platform")
for _s in ("provisionally_completed", "unresolved", "completed"):
    TRANSITIONS[(_s, "exchange.shipped")] = _r(_s, "handler", step="process")
    TRANSITIONS[(_s, "repair.shipped_back")] = _r(_s, "handler", step="process")


_ALLOWED: dict[str, tuple[str, ...]] = {}


def allowed_actions(state: str) -> list[str]:
    allowed = _ALLOWED.get(state)
    if allowed is None:  # the table is fixed once imported: computed once per state
        allowed = _ALLOWED[state] = tuple(sorted(a for (s, a) in TRANSITIONS if s == state))
    return list(allowed)


def target(state: str, action: str, outcome: str | None = None) -> str | None:
    """The state after ``action`` from ``state``; None when the table has no such row."""
    rule = TRANSITIONS.get((state, action))
    if rule is None:
        return None
    if action == "arbitration.decide":
        return ARBITRATION_OUTCOMES.get(outcome or "")
    return rule.to


# Deadline effects the orders service applies (sla.deadline_fired ``action`` → our action),
# and which arming transition each one belongs to (see handlers/deadlines.py).
DEADLINE_EFFECTS = {
    "auto_refund": "system.auto_refund",
    "advance_compensation": "system.advance_compensation",
    "auto_close": "system.auto_close",
    "auto_confirm": "system.auto_confirm",
}
