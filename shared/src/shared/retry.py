"""One retry pace for every loop that waits after a failure (a consumer reconnecting, the
outbox relay, the timer firing loop, the routing decision writer, a handler retried before
its event is parked): exponential backoff with jitter, capped.

Jitter matters when many clients fail together (a broker restart): with fixed steps every
replica of every service would reconnect in the same instant, again and again; each wait
is drawn at random between ``floor`` times the current step (half, by default) and the
step instead, and the step doubles from ``base_s`` up to ``cap_s`` while the failures go
on. ``reset()`` after a success.
"""
from __future__ import annotations

import asyncio
import random


_JITTER = random.Random()


class Backoff:
    def __init__(self, base_s: float = 0.2, cap_s: float = 5.0, *, factor: float = 2.0,
                 jitter: bool = True, floor: float = 0.5, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s or factor < 1:
            raise ValueError("backoff needs 0 < base_s <= cap_s and factor >= 1")
        self.base_s, self.cap_s, self.factor = base_s, cap_s, factor
        self.jitter, self.floor = jitter, floor  # floor: the least share of the step a wait takes
        self._rng = rng or _JITTER  # a generator of its own would seed from the OS on every retry loop made
        self.failures = 0

    @property
    def step_s(self) -> float:
        """The current ceiling of a wait: ``base_s * factor ** failures``, at most ``cap_s``."""
        return min(self.cap_s, self.base_s * self.factor ** min(self.failures, 64))

    def next_delay(self) -> float:
        """The wait after one more failure (and count it)."""
        step = self.step_s
        self.failures += 1
        return self._rng.uniform(step * self.floor, step) if self.jitter else step

    async def wait(self) -> float:
        """Count a failure and sleep for its delay; returns the delay."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self.failures = 0


__all__ = ["Backoff"]
