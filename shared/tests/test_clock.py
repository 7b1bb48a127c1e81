from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import BEIJING, ManualClock, VirtualClock, to_beijing


def test_virtual_clock_moves_forward_only():
    c = VirtualClock()
    before = c.now()
    offset, seq = c.advance(timedelta(days=15))
    assert offset == 15 * 86400 and seq == 1
    assert c.now() - before >= timedelta(days=15)
    with pytest.raises(ValueError):
        c.advance(timedelta(seconds=-1))


def test_advances_add_up_once_each_and_snapshots_never_move_back():
    c = VirtualClock()
    assert c.apply_advance(1.0, "a")
    assert c.apply_advance(1.0, "b")  # two advances made at once on two services both count
    assert not c.apply_advance(1.0, "a")  # the same announcement read twice counts once
    assert c.offset == timedelta(seconds=2)
    assert not c.apply_snapshot(1.0)  # a stale snapshot never moves time back
    assert c.apply_snapshot(100.0)
    assert c.offset == timedelta(seconds=100)


def test_a_restarted_service_keeps_its_offset_whatever_the_log_holds(tmp_path):
    from shared.clock import ClockListener, ClockStateFile, apply_announcement, advance_announcement, snapshot_announcement

    state = ClockStateFile(tmp_path / "clock.json")
    state.save(86400.0)
    c = VirtualClock()
    ClockListener(c, "127.0.0.1:1", state=state)
    assert c.offset == timedelta(days=1)
    # replaying the log that led there does not count it twice ...
    apply_announcement(c, advance_announcement(86400.0, "x", "orders"))
    assert c.offset == timedelta(days=1)
    # ... the re-announced snapshot is a floor ... and later advances add
    apply_announcement(c, snapshot_announcement(86400.0, "orders"))
    apply_announcement(c, advance_announcement(60.0, "y", "kpi"))
    assert c.offset == timedelta(days=1, seconds=60)


async def test_wait_applied_returns_when_the_advance_is_read_back():
    import asyncio

    c = VirtualClock()
    waiter = asyncio.create_task(c.wait_applied("z", timeout=2))
    await asyncio.sleep(0)
    c.apply_advance(5.0, "z")
    assert await waiter
    assert not await c.wait_applied("never", timeout=0.01)


def test_manual_clock_stands_still_and_needs_aware_time():
    start = datetime(2026, 11, 11, 0, 0, tzinfo=timezone.utc)
    c = ManualClock(start)
    assert c.now() == start
    c.advance(timedelta(hours=12))
    assert c.now() == start + timedelta(hours=12)
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))


def test_beijing_is_utc_plus_8():
    assert to_beijing(datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc)) == datetime(2026, 11, 23, 0, 0, tzinfo=BEIJING)
