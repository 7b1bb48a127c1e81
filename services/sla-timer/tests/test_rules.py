"""The rule table of docs/deadlines.md: what starts each rule, when it is due, what it asks
for, what cancels it (pure domain, no I/O)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.calendar import BusinessCalendar
from sla_timer.domain.rules import (RULES_BY_NAME, facts_of_created, facts_of_transition, rules_cancelled,
                                    rules_started)
from sla_timer.domain.schedule import Policy, due_at, pick_policy

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing
H, D = timedelta(hours=1), timedelta(days=1)

# rule, starting facts, problem type, due after, action, details subset, one cancelling (action, to_state)
TABLE = [
    ("audit_deadline", facts_of_created(), "other", 12 * H, "breach", {"indicator": "F2"}, ("audit.reject", "rejected")),
    ("audit_escalation", facts_of_created(), "other", 12 * H, "escalate", {"level": 1}, ("audit.approve_return", "awaiting_return_shipment")),
    ("advance_compensation", facts_of_created(), "other", 7 * D, "advance_compensation", {}, ("abandon", "abandoned")),
    ("feedback_timeout", {"action:audit.request_feedback"}, "other", 15 * D, "auto_close", {}, ("customer_feedback", "pending_audit")),
    ("ship_back_reminder_1", {"action:audit.approve_return"}, "other", 5 * D, "remind_customer", {"day": 5}, ("fill_shipment", "awaiting_receipt")),
    ("ship_back_reminder_2", {"action:audit.approve_return"}, "other", 10 * D, "remind_customer", {"day": 10}, ("fill_shipment", "awaiting_receipt")),
    ("ship_back_reminder_3", {"action:audit.approve_return"}, "other", 25 * D, "remind_customer", {"day": 25}, ("abandon", "abandoned")),
    ("ship_back_timeout", {"action:audit.approve_return"}, "other", 30 * D, "auto_close", {}, ("fill_shipment", "awaiting_receipt")),
    ("merchant_reminder", {"action:fill_shipment"}, "other", 10 * D, "remind_merchant", {}, ("arbitration.request", "arbitration")),
    ("auto_refund", {"action:fill_shipment"}, "other", 15 * D, "auto_refund", {}, ("process.refund", "provisionally_completed")),
    ("processing_kpi", {"action:register_receipt"}, "other", 12 * H, "breach", {"indicator": "F3"}, ("process.exchange", "provisionally_completed")),
    ("processing_penalty", {"action:register_receipt"}, "other", 48 * H, "penalty", {"amount_cny": "2000.00"}, ("process.repair", "provisionally_completed")),
    ("exchange_shipping", {"action:process.exchange"}, "other", 18 * H, "breach", {"indicator": "F4"}, ("exchange.shipped", "provisionally_completed")),
    ("exchange_shipping", {"action:audit.resend_without_return"}, "other", 18 * H, "breach", {"indicator": "F4"}, ("exchange.shipped", "completed")),
    ("first_response", facts_of_created(), "other", 30 * timedelta(minutes=1), "escalate", {"level": 1, "to": "supervisor"}, ("claim", "pending_audit")),
    ("first_response_manager", facts_of_created(), "other", 60 * timedelta(minutes=1), "escalate", {"level": 2, "to": "operations_manager"}, ("assign", "pending_audit")),
    ("quality_plan", facts_of_created(), "quality", 72 * H, "escalate", {"level": 1}, ("process.refund", "provisionally_completed")),
    ("logistics_resolution", facts_of_created(), "logistics", 24 * H, "escalate", {"level": 1}, ("process.return_original", "provisionally_completed")),
    ("refund_payout", {"action:process.refund"}, "other", 24 * H, "escalate", {"to": "finance"}, ("refund.paid", "provisionally_completed")),
    ("customer_confirmation", {"state:provisionally_completed"}, "other", 7 * D, "auto_confirm", {}, ("confirm", "completed")),
]


@pytest.mark.parametrize("name,facts,problem,after,action,details,cancel", TABLE)
def test_every_rule_starts_is_due_and_is_cancelled(name, facts, problem, after, action, details, cancel):
    started = {r.name: r for r in rules_started(set(facts), problem)}
    assert name in started
    rule = started[name]
    assert rule.action == action
    assert details.items() <= rule.details.items()
    assert due_at(rule, T0, BusinessCalendar()) == T0 + after
    c_action, c_to = cancel
    assert name in rules_cancelled(facts_of_transition(c_action, "x", c_to))
    # ...and not by an unrelated in-state action
    assert name not in rules_cancelled(facts_of_transition("message", "x", "x")) or name == "customer_confirmation"


def test_problem_specific_rules_only_for_their_problem():
    names = {r.name for r in rules_started(facts_of_created(), "not_as_described")}
    assert "quality_plan" not in names and "logistics_resolution" not in names
    assert {"audit_deadline", "advance_compensation", "first_response", "first_response_manager"} <= names


def test_audit_deadline_counts_weekends_and_holidays():
    # Created Friday 2026-02-13 20:00 Beijing, Spring Festival follows: still 12 calendar hours.
    start = datetime(2026, 2, 13, 12, 0, tzinfo=timezone.utc)
    assert due_at(RULES_BY_NAME["audit_deadline"], start, BusinessCalendar()) == start + 12 * H


def test_repair_counts_working_days_across_spring_festival():
    # Fri 2026-02-13 10:00 Beijing; Sat 02-14 is a 调休 working day; 02-15..02-23 off.
    start = datetime(2026, 2, 13, 2, 0, tzinfo=timezone.utc)
    due = due_at(RULES_BY_NAME["repair"], start, BusinessCalendar())
    assert due == datetime(2026, 2, 25, 2, 0, tzinfo=timezone.utc)


def test_cancel_outcome_reopens_and_cancels_confirmation():
    assert "customer_confirmation" in rules_cancelled(facts_of_transition("cancel_outcome", "provisionally_completed",
                                                                          "pending_process"))


def test_refund_payout_survives_completion():
    assert "refund_payout" not in rules_cancelled(facts_of_transition("confirm", "provisionally_completed", "completed"))


def test_policy_override_merchant_beats_category():
    overrides = {("category", "phones", "ship_back_timeout"): Policy(after=20 * D),
                 ("merchant", "m-1", "ship_back_timeout"): Policy(after=45 * D)}
    rule = RULES_BY_NAME["ship_back_timeout"]
    assert due_at(rule, T0, BusinessCalendar(), pick_policy(overrides, rule.name, "m-1", "phones")) == T0 + 45 * D
    assert due_at(rule, T0, BusinessCalendar(), pick_policy(overrides, rule.name, "m-2", "phones")) == T0 + 20 * D
    assert pick_policy(overrides, rule.name, "m-2", "books") is None
    wd = Policy(working_days=2)
    assert due_at(rule, datetime(2026, 9, 30, 2, tzinfo=timezone.utc), BusinessCalendar(), wd) == \
        datetime(2026, 10, 9, 2, tzinfo=timezone.utc)
