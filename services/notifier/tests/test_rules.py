"""Pure rules: template checks, triggers, phone validity, backoff, rate-limit window."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from string import Template

import pytest

from notifier.domain.delivery import backoff, rate_limited_until, sms_capable, valid_phone
from notifier.domain.masking import mask_phone
from notifier.domain.templates import DEFAULTS, check, render
from notifier.domain.triggers import DETAIL_VARIABLES, Context, from_deadline, from_order_action
from shared.errors import ApiError


def test_every_default_template_is_valid_and_chinese():
    for t in DEFAULTS:
        check(t.body, t.variables)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in t.body)


def test_triggers_supply_every_declared_variable():
    defaults = {t.key: set(t.variables) for t in DEFAULTS}
    for key, fields in DETAIL_VARIABLES.items():
        assert defaults[key] == {"number", *fields}


@pytest.mark.parametrize("body,variables,code_detail", [
    ("单号${number}，${reason}", ["number"], "undeclared"),
    ("单号${number}", ["number", "amount"], "unused"),
    ("单号${number", ["number"], None),
    ("单号${Number}", ["Number"], None),
])
def test_template_save_check_rejects(body, variables, code_detail):
    with pytest.raises(ApiError) as e:
        check(body, variables)
    assert e.value.status == 422 and e.value.code == "template_invalid"
    if code_detail:
        assert code_detail in e.value.details


def test_render_missing_variable_raises():
    with pytest.raises(KeyError):
        render("单号${number}", {})
    assert render("单号${number}", {"number": "SO1"}) == "单号SO1"


@pytest.mark.parametrize("body", [t.body for t in DEFAULTS] + [
    "a $$ b ${x}c $y.", "$x", "plain", "$$$x", "${x}${x}", "", "尾$$",
])
def test_render_answers_as_string_template(body):
    values = {"x": 1, "y": "二", **{v: f"<{v}>" for t in DEFAULTS for v in t.variables}}
    assert render(body, values) == Template(body).substitute(values)
    assert render(body, values) == render(body, values)  # the parsed pieces are kept, not used up


def test_render_refuses_a_malformed_placeholder():
    with pytest.raises(ValueError):
        render("单号 $ 与 ${number}", {"number": "SO1"})


def _act(action, details, ctx=Context(), from_state="pending_process", to_state="pending_process"):
    return from_order_action(action, "SO1", details, ctx, from_state=from_state, to_state=to_state)


def test_order_triggers():
    [i] = _act("exchange.shipped", {"carrier": "顺丰"})
    assert i.error == "missing fields: tracking_number"
    intents = _act("system.auto_refund", {"amount": "9.90"}, to_state="refunded_by_system")
    assert [(i.audience, i.template_key) for i in intents] == [("customer", "auto_refund_customer"),
                                                               ("merchant", "auto_refund_merchant")]
    assert _act("claim", {}) == []
    [i] = _act("remind_to_ship", {}, Context(return_address="仓库"))
    assert i.variables["return_address"] == "仓库" and i.error is None


@pytest.mark.parametrize("action, from_state", [
    ("confirm", "provisionally_completed"), ("system.auto_confirm", "provisionally_completed"),
    ("mark_resolved", "unresolved"), ("process.offline_exchange", "unresolved"), ("arbitration.decide", "arbitration"),
])
def test_every_arrival_in_completed_tells_the_customer_once(action, from_state):
    [i] = _act(action, {}, from_state=from_state, to_state="completed")
    assert (i.kind, i.audience, i.error) == ("completed", "customer", None)


def test_actions_inside_completed_or_elsewhere_are_no_completion():
    assert _act("rate", {}, from_state="completed", to_state="completed") == []
    assert _act("refund.paid", {}, from_state="completed", to_state="completed") == []
    assert _act("arbitration.decide", {}, from_state="arbitration", to_state="rejected") == []
    [i] = _act("exchange.shipped", {"carrier": "顺丰", "tracking_number": "SF1"}, from_state="completed",
               to_state="completed")
    assert i.kind == "exchange_shipped"


def test_deadline_triggers():
    [i] = from_deadline("remind_customer", "r", {"day": 25}, Context("SO1", "仓库"))
    assert i.variables == {"number": "SO1", "day": 25, "return_address": "仓库"} and i.error is None
    [i] = from_deadline("escalate", "r", {"level": "supervisor"}, Context("SO1"))
    assert i.error == "missing fields: to"
    assert from_deadline("auto_refund", "r", {}, Context("SO1")) == []


@pytest.mark.parametrize("rule, details, text", [
    ("first_response", {"level": 1, "to": "supervisor"}, "【主管】售后单SO1的首次响应已超时"),
    ("first_response_manager", {"level": 2, "to": "operations_manager"}, "【运营经理】售后单SO1的首次响应已超时"),
    ("audit_escalation", {"level": 1, "to": "supervisor"}, "【主管】售后单SO1的审核已超时"),
    ("refund_payout", {"level": 1, "to": "finance"}, "【财务】售后单SO1的退款打款已超时"),
    ("repair", {"level": 1, "to": "13900139000"}, "【主管】售后单SO1的维修已超时"),  # a phone: named by level
    ("some_new_rule", {"level": 2, "to": "operations_manager"}, "【运营经理】售后单SO1的处理已超时"),
])
def test_escalation_says_to_whom_and_what_is_overdue_in_chinese(rule, details, text):
    [i] = from_deadline("escalate", rule, details, Context("SO1"))
    tpl = next(t for t in DEFAULTS if t.key == "escalation")
    body = render(tpl.body, i.variables)
    assert i.error is None and body == text + "，请立即跟进。"
    assert rule not in body and not any(ch.isdigit() for ch in body.replace("SO1", ""))


def test_phones_and_masking():
    assert valid_phone("13800138000") and valid_phone("+8613800138000") and valid_phone("400-000-1234")
    assert valid_phone("021-12345678") and valid_phone("010-6666-0101")
    assert not valid_phone("12345") and not valid_phone("23800138000") and not valid_phone(None)
    assert mask_phone("13800138000") == "138****8000"


def test_only_mobile_numbers_receive_sms():
    assert sms_capable("13800138000") and sms_capable("+86 138 0013 8000") and sms_capable("8613800138000")
    for landline in ("010-6666-0101", "021-12345678", "400-606-5500", "0755-8888-6666", "12345", "", None):
        assert not sms_capable(landline), landline


def test_backoff_is_exponential_and_capped():
    assert [backoff(n, 30, 200).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 200]


def test_rate_limit_window():
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    w = timedelta(hours=1)
    assert rate_limited_until([now - timedelta(minutes=10)], now, 2, w) is None
    sent = [now - timedelta(minutes=50), now - timedelta(minutes=10), now - timedelta(hours=2)]
    assert rate_limited_until(sent, now, 2, w) == now + timedelta(minutes=10)


def test_a_deadline_is_stale_when_a_later_transition_cancels_its_rule():
    from notifier.domain.staleness import cancelled_by, transition_facts

    assert transition_facts("fill_shipment", "awaiting_return_shipment", "awaiting_receipt") == {
        "action:fill_shipment", "state:awaiting_receipt"}
    assert transition_facts("message", "pending_audit", "pending_audit") == {"action:message"}
    seen = [(3, "audit.approve_return", "pending_audit", "awaiting_return_shipment"),
            (4, "remind_to_ship", "awaiting_return_shipment", "awaiting_return_shipment"),
            (5, "fill_shipment", "awaiting_return_shipment", "awaiting_receipt")]
    facts = ["action:fill_shipment", "state:closed"]
    assert cancelled_by(seen, 3, facts) == (5, "action:fill_shipment")
    assert cancelled_by(reversed(seen), 3, facts) == (5, "action:fill_shipment")  # in any order
    assert cancelled_by(seen, 5, facts) is None  # armed at (or after) the cancelling transition: a new round
    assert cancelled_by(seen[:2], 3, facts) is None  # later transitions, none cancelling
    assert cancelled_by(seen, 3, []) is None  # an event without cancelling facts: nothing to check
    assert cancelled_by([(6, "system.auto_close", "awaiting_return_shipment", "closed")], 3, facts) == (6, "state:closed")
    # a state fact is an arrival: staying in the state produces none
    assert cancelled_by([(6, "note", "closed", "closed")], 3, facts) is None
