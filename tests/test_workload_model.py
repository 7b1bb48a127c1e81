"""The workload's scenario is the seed's: the same seed gives the same merchants, orders and
decisions (whatever the timing), another seed another scenario; every mode and quality is
played."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.workload import model  # noqa: E402
from tools.workload.model import D, H, Track  # noqa: E402


def _scenario(seed: int):
    shops = model.merchants(seed, 8)
    plans = [model.order_plan(seed, i, shops) for i in range(200)]
    steps = []
    for p in plans:
        t = Track(plan=p, id=f"o{p.index}", state="pending_audit", version=2, entered_at=0.0, entered_version=2)
        steps.append([(s.actor, s.action, s.kind, sorted(s.body)) if s else None
                      for s in (model.next_step(t, seed, now) for now in (1 * H, 1 * D, 5 * D))])
    return [(m.id, m.mode, m.quality, [s.sku for s in m.skus]) for m in shops], \
        [(p.merchant.id, p.sku.sku, p.service_type, p.problem_type, p.quantity, p.amount_paid) for p in plans], steps


def test_same_seed_same_scenario_other_seed_another():
    assert _scenario(7) == _scenario(7)
    assert _scenario(7)[1] != _scenario(8)[1]


def test_every_mode_and_quality_and_exchanges_at_one_price():
    shops = model.merchants(1, 8)
    assert {m.effective_mode for m in shops} == set(model.MODES)
    assert {m.quality for m in shops} == {"fast", "slow", "negligent"}
    assert any(m.served_by_platform for m in shops) and any(m.enrolled for m in shops)
    for m in shops:
        prices = {s.sku: s.price for s in m.skus}
        assert all(prices[s.twin] == s.price for s in m.skus)


def test_look_wakes_exactly_when_someone_becomes_due():
    """Nobody due at ``now``: nobody due until ``look``'s wake time, someone just after it —
    in every state, with the follow-up flags set or not (the driver's due index relies on it)."""
    import math
    import random

    seed = 5
    shops = model.merchants(seed, 8)
    states = ["pending_claim", "pending_audit", "awaiting_customer_feedback", "awaiting_return_shipment",
              "awaiting_receipt", "pending_process", "provisionally_completed", "unresolved", "arbitration",
              "completed", "refunded_by_system", "rejected"]
    pick = random.Random(1)
    woke = never = 0
    for i in range(600):
        t = Track(plan=model.order_plan(seed, i, shops), id=f"o{i}", state=states[i % len(states)], version=3,
                  entered_at=1_800_000_000.0, entered_version=3)
        t.exchange_pending, t.repair_pending, t.refund_to_pay = (pick.random() < 0.3 for _ in range(3))
        t.rated, t.replied, t.feedback_rounds = pick.random() < 0.3, pick.random() < 0.5, pick.choice((0, 1))
        if t.state == "provisionally_completed":
            t.outcome = pick.choice(("return_original", "refund", "exchange"))
        step, wake = model.look(t, seed, t.entered_at + 60)
        if step is not None:
            assert wake == t.entered_at + 60
            continue
        if wake == math.inf:
            never += 1
            assert model.next_step(t, seed, t.entered_at + 400 * D) is None
            continue
        woke += 1
        assert model.next_step(t, seed, wake - 1) is None
        assert model.next_step(t, seed, wake + 1) is not None
    assert woke > 200 and never > 20
