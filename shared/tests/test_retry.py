"""The one retry pace (shared.retry.Backoff): doubling from the base to the cap, each wait
drawn between half the step and the step, back to the base after a success."""
import random

import pytest

from shared.retry import Backoff


def test_steps_double_up_to_the_cap_and_reset():
    b = Backoff(0.2, 5.0, jitter=False)
    assert [b.next_delay() for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    b.reset()
    assert b.next_delay() == 0.2


def test_jittered_waits_stay_between_half_the_step_and_the_step_and_differ():
    b = Backoff(0.2, 5.0, rng=random.Random(7))
    delays = []
    for n in range(40):
        step = min(5.0, 0.2 * 2 ** n)
        d = b.next_delay()
        assert step / 2 <= d <= step
        delays.append(d)
    assert len(set(delays[-10:])) == 10  # replicas failing together do not retry in the same instant


async def test_wait_sleeps_the_drawn_delay():
    b = Backoff(0.01, 0.02)
    assert 0.005 <= await b.wait() <= 0.01 and b.failures == 1


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
