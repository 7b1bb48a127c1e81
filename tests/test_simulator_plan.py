"""The Double-11 simulator's scenario is the seed's (same seed and sizes, same plan), its
arrival curve peaks in the first hours after midnight Beijing time, and the clock
arithmetic behind the benchmark's firing lateness is right. Pure: no platform."""
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.clock import BEIJING  # noqa: E402
from tools.simulator.scenario import ScenarioConfig, double11_start, hourly_weights, mondays_between, plan  # noqa: E402
from tools.simulator.tap import PartitionLog, due_wall_time, quantile  # noqa: E402
from tools.workload import model  # noqa: E402


def test_same_seed_same_plan_another_seed_another():
    cfg = ScenarioConfig(seed=7, merchants=8, orders=300, days=4)
    a, b = plan(cfg), plan(ScenarioConfig(seed=7, merchants=8, orders=300, days=4))
    assert a.summary() == b.summary() and a.digest() == b.digest()
    c = plan(ScenarioConfig(seed=8, merchants=8, orders=300, days=4))
    assert c.digest() != a.digest()
    assert [o["at"] for o in c.summary()["orders"]] != [o["at"] for o in a.summary()["orders"]]
    # another size is another scenario too
    assert plan(ScenarioConfig(seed=7, merchants=8, orders=301, days=4)).digest() != a.digest()


def test_every_order_arrives_in_the_run_and_the_steps_add_up():
    cfg = ScenarioConfig(seed=3, merchants=12, orders=1000, days=3, tick_s=1800)
    p = plan(cfg)
    assert len(p.arrivals) == 1000 and p.arrivals == sorted(p.arrivals)
    assert all(0 <= a < 3 * 86400 for a in p.arrivals)
    assert len(p.orders_per_tick) == cfg.ticks == 144 and sum(p.orders_per_tick) == 1000
    assert abs(sum(p.consultations_per_tick) - 1000 * cfg.consultations_per_order) <= 1
    ms = p.merchants
    assert {m.effective_mode for m in ms} == set(model.MODES)
    assert {m.quality for m in ms} == {"fast", "slow", "negligent"}


def test_the_peak_is_in_the_first_hours_after_midnight():
    w = hourly_weights(24 * 7)
    first = sum(w[:3])
    assert max(w) == w[0]
    assert first > 2 * sum(w[24:27]) and first > 2 * sum(w[20:23])  # the same hours a day later; the evening
    assert min(w[2:8]) < min(w[10:23])  # the night is quiet
    p = plan(ScenarioConfig(seed=1, orders=2000, days=7))
    assert sum(p.orders_per_tick[:3]) > 3 * sum(p.orders_per_tick[24:27])


def test_double11_start_and_the_weeks_that_end():
    start = double11_start(datetime(2026, 12, 7, tzinfo=BEIJING).timestamp())
    assert datetime.fromtimestamp(start, BEIJING) == datetime(2027, 11, 11, tzinfo=BEIJING)
    assert double11_start(start) == start  # already there
    # 2027-11-11 is a Thursday: the Mondays 15 and 22 November end weeks within 12 days
    assert [d.isoformat() for d in mondays_between(start, start + 12 * 86400)] == ["2027-11-15", "2027-11-22"]


def test_due_wall_time_follows_the_clock_jumps():
    # from wall 1000 the offset is 0; at wall 1010 a jump of 3600; at 1020 another of 600
    history = [(1000.0, 0.0), (1010.0, 3600.0), (1020.0, 4200.0)]
    assert due_wall_time(1005.0, history) == 1005.0  # before any jump: virtual = wall
    assert due_wall_time(2000.0, history) == 1010.0  # inside the first jump: reached when it was answered
    assert due_wall_time(1010.0 + 3600 + 5, history) == 1015.0  # after it: wall = virtual - offset
    assert due_wall_time(1020.0 + 3600 + 100, history) == 1020.0  # inside the second jump
    assert due_wall_time(1030.0 + 4200, history) == 1030.0
    assert due_wall_time(10.0, history) == 1000.0  # due before the history starts: reached at its start


def test_partition_log_and_quantiles():
    plog = PartitionLog()
    for off, ts in ((0, 1.0), (1, 2.0), (5, 3.0)):  # a gap (compacted or bundled offsets)
        plog.add(off, ts)
    assert plog.end == 6 and plog.ts_from(0) == 1.0 and plog.ts_from(2) == 3.0 and plog.ts_from(6) is None
    assert quantile([], 0.99) is None
    assert quantile([float(i) for i in range(100)], 0.99) == 99.0 and quantile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_paced_load_takes_due_steps_from_the_due_index_and_looks_again_when_due():
    """``Workload.pace``'s choice of calls: due steps up to the cap, those due longest first;
    ended orders leave the index; an order with nobody due is not looked at again before
    someone may be (``model.look``'s wake), and then is; a call in flight: not twice."""
    from tools.workload import Config, Workload
    from tools.workload.model import H, Track

    w = Workload(api=None, operator_id="op", config=Config(seed=3, merchants=4, refresh="events"))
    w.shops = model.merchants(3, 4, "t")
    t0 = 1_000_000.0
    looked: list[str] = []
    real_look = model.look

    def counting_look(t, seed, now):
        looked.append(t.id)
        return real_look(t, seed, now)

    model.look = counting_look
    try:
        for i in range(6):
            p = model.order_plan(3, i, w.shops, "t")
            state = "rejected" if i == 5 else "pending_claim"
            w.tracks[f"o{i}"] = Track(plan=p, id=f"o{i}", state=state, version=1, entered_at=t0)
            w._index(f"o{i}", t0)
        assert w._due_steps(t0 + 60, cap=10) == []  # a minute after: nobody acts yet
        assert sorted(looked) == [f"o{i}" for i in range(6)]
        # the rejected order left the index, and so did any whose merchant never acts (negligent):
        # a deadline moves those on
        assert "o5" not in w._looks and len(w._looks) >= 3
        wakes = {oid: when for when, seq, oid in w._heap if w._looks.get(oid) == seq}
        assert all(when > t0 + 60 for when in wakes.values())
        looked.clear()
        first = min(wakes.values())
        assert w._due_steps(first - 1, cap=10) == [] and looked == []  # nobody looked at before its time
        late = t0 + 200 * H  # long after every persona's delay (negligent ones may never act)
        due = w._due_steps(late, cap=2)
        assert len(due) == 2 and len({t.id for t, _s in due}) == 2
        w._busy.add(due[0][0].id)
        w._index(due[0][0].id)  # e.g. an event seen while its call is in flight
        again = w._due_steps(late, cap=10)
        assert due[0][0].id not in {t.id for t, _s in again}  # a call in flight: not twice at once
        assert due[1][0].id not in {t.id for t, _s in again}  # taken already, not indexed until it moves
        w._busy.discard(due[0][0].id)
        w._index(due[0][0].id)  # its call ended
        assert due[0][0].id in {t.id for t, _s in w._due_steps(late, cap=10)}
    finally:
        model.look = real_look
