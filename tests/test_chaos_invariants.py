"""The chaos run's invariant checks (chaos/invariants.py) find what they are meant to find:
each test builds one order's records as the services' APIs answer them, breaks one thing,
and expects exactly that finding (and none on the intact records)."""
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaos.invariants import Checker, OrderData, Report, timer_event_id  # noqa: E402
from sla_timer.domain.rules import RULES  # noqa: E402

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=timezone.utc)
RULE_TABLE = [{"name": r.name, "starts": sorted(r.starts), "cancelled_by": sorted(r.cancelled_by),
               "problem_type": r.problem_type, "action": r.action} for r in RULES]
AFTER = {r.name: r.after for r in RULES}


def checker(now: datetime) -> Checker:
    c = Checker(api=None, operator="op")
    c.rules = RULE_TABLE
    c.rule_action = {r["name"]: r["action"] for r in RULE_TABLE}
    c.now = now
    return c


def entry(version, action, frm, to, at, role="merchant_staff", actor="m.audit", **details):
    return {"version": version, "action": action, "from_state": frm, "to_state": to, "at": at.isoformat(),
            "actor_role": role, "actor_id": actor, "details": details}


def timer(rule, version, armed_at, state, fired_at=None, cancelled_by=None):
    due = armed_at + AFTER[rule]
    return {"id": f"t-{rule}-{version}", "rule": rule, "action": next(r.action for r in RULES if r.name == rule),
            "state": state, "due_at": due.isoformat(), "order_version": version,
            "fired_at": fired_at.isoformat() if fired_at else None,
            "cancelled_at": None, "cancelled_by": cancelled_by}


def intact_order():
    """Applied, claimed after 10 min, approved after 20 min; the customer never ships; the
    first ship-back reminder fired at day 5 (now is day 6)."""
    c1, c2, c3 = T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    timeline = [entry(1, "apply", "", "pending_claim", c1, role="storefront", actor="c-1"),
                entry(2, "claim", "pending_claim", "pending_audit", c2),
                entry(3, "audit.approve_return", "pending_audit", "awaiting_return_shipment", c3,
                      return_address="x")]
    fired = c3 + timedelta(days=5, seconds=1)
    timers = [timer(r, 1, c1, "cancelled", cancelled_by="claim" if r.startswith("first") else "audit.approve_return")
              for r in ("audit_deadline", "audit_escalation", "advance_compensation", "first_response",
                        "first_response_manager")]
    timers += [timer("quality_plan", 1, c1, "fired", fired_at=c1 + timedelta(hours=72, seconds=1))]
    timers += [timer("ship_back_reminder_1", 3, c3, "fired", fired_at=fired)]
    timers += [timer(r, 3, c3, "pending") for r in ("ship_back_reminder_2", "ship_back_reminder_3",
                                                    "ship_back_timeout")]
    detail = {"id": "o-1", "version": 3, "state": "awaiting_return_shipment", "problem_type": "quality",
              "merchant_id": "m", "created_at": c1.isoformat(), "amount_paid": "100.00", "on_behalf": False,
              "quantity": 1, "timeline": timeline}
    fact = {"merchant_id": "m", "created_at": c1.isoformat(), "amount_paid": "100.00", "on_behalf": False,
            "audited_at": c3.isoformat(), "audit_action": "audit.approve_return"}
    customer = [{"event_id": "e-approve", "recipient": r, "template_key": "return_approved", "audience": "customer"}
                for r in ("sms:13800000000", "inbox:customer:c-1")]
    reminder = [{"event_id": timer_event_id("t-ship_back_reminder_1-3"), "recipient": r,
                 "template_key": "ship_back_reminder", "audience": "customer"}
                for r in ("sms:13800000000", "inbox:customer:c-1")]
    quality = [{"event_id": timer_event_id("t-quality_plan-1"), "recipient": "inbox:staff:supervisor",
                "template_key": "escalation", "audience": "staff"}]
    return OrderData("o-1", detail, timers, fact, customer + reminder + quality)


def run(o: OrderData, now=T0 + timedelta(days=6), acked=((1, "apply"), (2, "claim"), (3, "audit.approve_return")),
        goods=Decimal("100.00")) -> Report:
    rep = Report()
    checker(now).check_order(o, rep, list(acked), goods)
    return rep


def kinds(rep: Report) -> list[str]:
    return sorted(f"{v.cls}:{v.kind}" for v in rep.violations)


def test_intact_records_have_no_finding():
    assert kinds(run(intact_order())) == []


def test_acknowledged_action_missing_from_the_timeline_is_lost():
    assert kinds(run(intact_order(), acked=[(4, "fill_shipment")])) == ["lost:acknowledged_action_missing"]


def test_missing_duplicated_uncancelled_and_overdue_timers():
    o = intact_order()
    o.timers = [t for t in o.timers if t["rule"] != "ship_back_timeout"]
    assert kinds(run(o)) == ["lost:timer_missing"]
    o = intact_order()
    o.timers.append(dict(o.timers[-1], id="t-again"))
    assert kinds(run(o)) == ["duplicated:timer_twice"]
    o = intact_order()
    o.timers[0]["state"] = "pending"  # audit_deadline: the approval cancels it
    assert kinds(run(o)) == ["lost:timer_not_cancelled"]
    # day 11: ship_back_reminder_2 (day 10) should have fired
    o = intact_order()
    assert "invariant:timer_overdue" in kinds(run(o, now=T0 + timedelta(days=11)))


def test_a_deadline_effect_after_the_order_moved_on_and_a_lost_effect():
    o = intact_order()
    # the customer shipped at day 6; the ship-back timeout (day 30) then closed it anyway
    shipped = T0 + timedelta(days=6)
    o.detail["timeline"] += [
        entry(4, "fill_shipment", "awaiting_return_shipment", "awaiting_receipt", shipped, role="storefront"),
        entry(5, "system.auto_close", "awaiting_receipt", "closed", T0 + timedelta(days=31), role="system",
              actor="timer:ship_back_timeout")]
    o.detail.update(version=5, state="closed")
    found = kinds(run(o, now=T0 + timedelta(days=31), acked=[]))
    assert "invariant:stale_deadline_applied" in found
    # a live auto-close that fired while the order still waits for the shipment: the effect was lost
    o = intact_order()
    for t in o.timers:
        if t["rule"] == "ship_back_timeout":
            t.update(state="fired", fired_at=(T0 + timedelta(days=30, minutes=21)).isoformat())
        elif t["state"] == "pending":
            t.update(state="fired", fired_at=(T0 + timedelta(days=25, minutes=21)).isoformat())
    o.messages = [m for m in o.messages if m["template_key"] != "ship_back_reminder"]
    found = kinds(run(o, now=T0 + timedelta(days=31)))
    assert "lost:deadline_effect_missing" in found


def test_notifications_lost_duplicated_and_stale():
    o = intact_order()
    o.messages = [m for m in o.messages if m["template_key"] != "return_approved"]
    assert kinds(run(o)) == ["lost:notice_missing"]
    o = intact_order()
    o.messages.append(dict(o.messages[0]))
    assert kinds(run(o)) == ["duplicated:message_twice"]
    o = intact_order()
    o.messages = [m for m in o.messages if m["template_key"] != "ship_back_reminder"]
    assert kinds(run(o)) == ["lost:deadline_notice_missing"]
    # the first escalation fired AFTER the claim (the timer service lagged): no message may go out
    o = intact_order()
    fr = next(t for t in o.timers if t["rule"] == "first_response")
    fr.update(state="fired", fired_at=(T0 + timedelta(minutes=31)).isoformat())
    o.messages.append({"event_id": timer_event_id(fr["id"]), "recipient": "inbox:staff:supervisor",
                       "template_key": "escalation", "audience": "staff"})
    assert kinds(run(o)) == ["invariant:stale_deadline_notified"]
    # ...unless the notifier withdrew it before sending
    o.messages[-1]["status"] = "cancelled"
    assert kinds(run(o)) == []
    # a message recorded as failed because the event lacks the template's fields is no notice
    o = intact_order()
    o.messages[0].update(status="failed", last_error="missing fields: day")
    assert kinds(run(o)) == ["invariant:notice_unsendable"]


def test_kpi_facts_must_follow_the_history():
    o = intact_order()
    o.fact = None
    assert kinds(run(o)) == ["lost:kpi_fact_missing"]
    o = intact_order()
    del o.fact["audited_at"]
    assert kinds(run(o)) == ["lost:kpi_milestone_missing"]
    o = intact_order()
    o.fact["received_at"] = T0.isoformat()
    assert kinds(run(o)) == ["invariant:kpi_fact_unearned"]


def test_refunds_never_above_what_was_paid():
    o = intact_order()
    at = T0 + timedelta(days=1)
    o.detail["timeline"] += [
        entry(4, "fill_shipment", "awaiting_return_shipment", "awaiting_receipt", at, role="storefront"),
        entry(5, "register_receipt", "awaiting_receipt", "pending_process", at),
        entry(6, "process.refund", "pending_process", "provisionally_completed", at, amount="100.00",
              goods_amount="100.00", freight_to_return="0.00", completed_by="merchant"),
        entry(7, "message", "provisionally_completed", "unresolved", at, role="storefront"),
        entry(8, "arbitration.request", "unresolved", "arbitration", at, role="storefront"),
        entry(9, "arbitration.decide", "arbitration", "completed", at, role="arbitrator", outcome="refund",
              amount="100.00", goods_amount="100.00", freight_to_return="0.00")]
    rep = run(o, acked=[])
    assert "invariant:refund_above_paid" in kinds(rep)


def test_parked_messages_other_than_the_poisoned_ones():
    rep = Report()
    poisons = [{"topic": "orders.events", "marker": "poison-x", "consumers": ["kpi", "notifier"]}]
    parked = {"kpi": [{"consumer": "kpi.facts", "topic": "orders.events", "partition": 0, "offset": 3,
                       "error": "not an envelope", "payload": "garbage poison-x"}],
              "notifier": [{"consumer": "notifier.orders", "topic": "orders.events", "partition": 1, "offset": 9,
                            "error": "handler failed", "payload": '{"id": "real event"}'}]}
    checker(T0).check_parked(parked, poisons, rep)
    assert kinds(rep) == ["invariant:message_parked", "lost:poison_not_parked"]
    assert rep.parked_poison == 1


def received_order(decided_after: timedelta, penalty_fired: bool) -> OrderData:
    o = intact_order()
    r = T0 + timedelta(days=1)
    o.detail["timeline"] += [
        entry(4, "fill_shipment", "awaiting_return_shipment", "awaiting_receipt", r - timedelta(hours=1),
              role="storefront"),
        entry(5, "register_receipt", "awaiting_receipt", "pending_process", r),
        entry(6, "process.refund", "pending_process", "provisionally_completed", r + decided_after,
              amount="100.00", goods_amount="100.00", freight_to_return="0.00", completed_by="merchant")]
    pen = timer("processing_penalty", 5, r, "fired" if penalty_fired else "cancelled",
                fired_at=r + timedelta(hours=48, seconds=1) if penalty_fired else None,
                cancelled_by=None if penalty_fired else "process.refund")
    o.timers.append(pen)
    return o


def test_penalties_and_bills_follow_the_orders_that_earned_them():
    c = checker(T0 + timedelta(days=10))

    def ledger(o, lines, billing=(), consultations=None):
        rep = Report()
        c.check_ledgers([o], lines, list(billing), {"m"}, consultations or {}, rep)
        return kinds(rep)

    line = {"merchant_id": "m", "week": "2026-11-09", "kind": "unprocessed_48h", "count": 1, "amount": "2000.00",
            "order_ids": ["o-1"]}
    assert ledger(received_order(timedelta(hours=50), True), [line]) == []
    assert ledger(received_order(timedelta(hours=50), True), []) == ["lost:penalty_not_charged"]
    assert ledger(received_order(timedelta(hours=30), False), [line]) == ["invariant:penalty_unearned"]
    assert ledger(received_order(timedelta(hours=30), False), [line, line]) == [
        "duplicated:penalty_twice", "invariant:penalty_unearned"]
    # an on-behalf order is billed once
    o = received_order(timedelta(hours=30), False)
    o.detail["on_behalf"] = True
    bill = {"manufacturer_id": "m", "item": "service_order", "refs": ["o-1"]}
    assert ledger(o, [], [bill]) == []
    assert ledger(o, [], []) == ["lost:order_fee_not_billed"]
    assert ledger(o, [], [bill, bill]) == ["duplicated:billed_twice"]


def test_an_arbitrators_refund_arms_the_refund_payout_timer():
    """Chaos run 3 reported ``unexpected_timer refund_payout``: the checker did not know that an
    arbitrator's binding outcome (``outcome:refund`` of arbitration.decide) starts the payout
    deadline, as sla-timer's rules say."""
    from chaos.invariants import expected_armings
    t = T0 + timedelta(days=2)
    timeline = [entry(1, "apply", "", "pending_claim", T0, role="storefront", actor="c-1"),
                entry(2, "arbitration.request", "pending_claim", "in_arbitration", t),
                entry(3, "arbitration.decide", "in_arbitration", "refunded", t + timedelta(hours=1),
                      role="arbitrator", actor="arb", outcome="refund")]
    armings, _ = expected_armings(timeline, RULE_TABLE, "quality")
    assert ("refund_payout", 3) in {(a.rule, a.version) for a in armings}
    timeline[2]["details"]["outcome"] = "exchange"
    armings, _ = expected_armings(timeline, RULE_TABLE, "quality")
    assert ("refund_payout", 3) not in {(a.rule, a.version) for a in armings}


def test_a_penalty_charged_inside_the_grace_after_48_hours_is_earned():
    """The short chaos run reported ``penalty_unearned`` for orders received 48 h and 3 s before
    the check, undecided, charged by a timer that fired on time: the checker allowed the
    charge only after the grace it gives a timer to fire."""
    o = received_order(timedelta(hours=30), False)
    o.detail["timeline"].pop()  # never decided
    received = T0 + timedelta(days=1)
    line = {"merchant_id": "m", "week": "2026-11-09", "kind": "unprocessed_48h", "count": 1, "amount": "2000.00",
            "order_ids": ["o-1"]}

    def ledger(now, lines):
        rep = Report()
        checker(now).check_ledgers([o], lines, [], {"m"}, {}, rep)
        return kinds(rep)
    assert ledger(received + timedelta(hours=48, seconds=3), [line]) == []
    assert ledger(received + timedelta(hours=48, seconds=3), []) == []  # not yet: the timer may still fire
    assert ledger(received + timedelta(hours=47), [line]) == ["invariant:penalty_unearned"]
    assert ledger(received + timedelta(hours=49), []) == ["lost:penalty_not_charged"]
