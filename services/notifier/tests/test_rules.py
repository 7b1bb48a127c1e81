"""Pure rules: template checks, triggers, phone validity, backoff, rate-limit window."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from notifier.delivery import backoff, rate_limited_until, valid_phone
from notifier.masking import mask_phone
from notifier.templates import DEFAULTS, check, render
from notifier.triggers import DETAIL_VARIABLES, Context, from_deadline, from_order_action
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


def test_order_triggers():
    [i] = from_order_action("exchange.shipped", "SO1", {"carrier": "顺丰"}, Context())
    assert i.error == "missing fields: tracking_number"
    intents = from_order_action("system.auto_refund", "SO1", {"amount": "9.90"}, Context())
    assert [(i.audience, i.template_key) for i in intents] == [("customer", "auto_refund_customer"),
                                                               ("merchant", "auto_refund_merchant")]
    assert from_order_action("claim", "SO1", {}, Context()) == []
    [i] = from_order_action("remind_to_ship", "SO1", {}, Context(return_address="仓库"))
    assert i.variables["return_address"] == "仓库" and i.error is None


def test_deadline_triggers():
    [i] = from_deadline("remind_customer", "r", {"day": 25}, Context("SO1", "仓库"))
    assert i.variables == {"number": "SO1", "day": 25, "return_address": "仓库"} and i.error is None
    [i] = from_deadline("escalate", "r", {"level": "supervisor"}, Context("SO1"))
    assert i.error == "missing fields: to"
    assert from_deadline("auto_refund", "r", {}, Context("SO1")) == []


def test_phones_and_masking():
    assert valid_phone("13800138000") and valid_phone("+8613800138000") and valid_phone("400-000-1234")
    assert valid_phone("021-12345678")
    assert not valid_phone("12345") and not valid_phone("23800138000") and not valid_phone(None)
    assert mask_phone("13800138000") == "138****8000"


def test_backoff_is_exponential_and_capped():
    assert [backoff(n, 30, 200).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 200]


def test_rate_limit_window():
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    w = timedelta(hours=1)
    assert rate_limited_until([now - timedelta(minutes=10)], now, 2, w) is None
    sent = [now - timedelta(minutes=50), now - timedelta(minutes=10), now - timedelta(hours=2)]
    assert rate_limited_until(sent, now, 2, w) == now + timedelta(minutes=10)


def test_a_deadline_is_stale_when_a_later_transition_cancels_its_rule():
    from notifier.staleness import cancelled_by, transition_facts

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
