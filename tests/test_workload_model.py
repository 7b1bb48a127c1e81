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
