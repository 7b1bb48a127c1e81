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


def test_stale_or_backward_announcements_are_ignored():
    c = VirtualClock()
    assert c.apply(100.0, 3)
    assert not c.apply(50.0, 4)  # would move time back
    assert not c.apply(100.0, 2)  # already seen
    assert c.apply(200.0, 5)
    assert c.offset == timedelta(seconds=200)


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
