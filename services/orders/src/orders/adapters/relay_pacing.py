"""Pacing of outbox relay wake-ups for a busy orders service (the order store's ``after_commit``).

Every committed transaction with events may wake the relay. Under load that means one relay batch per
request, and each batch costs far more than its events: a transaction (advisory lock,
SELECT, UPDATE) and two broker metadata round trips (the relay checks the topics
before and after sending). Waking it at most once per ``window_s`` lets it publish
everything committed meanwhile in one batch; an idle service is still woken at once
(leading edge), so a lone event is not delayed at all and a busy one by < ``window_s``.
"""
from __future__ import annotations

import asyncio
from typing import Callable


class PacedWake:
    def __init__(self, wake: Callable[[], None], window_s: float) -> None:
        self._wake = wake
        self.window_s = window_s
        self._last = float("-inf")
        self._scheduled = False

    def __call__(self) -> None:
        if self._scheduled:
            return  # a wake-up is already due at the end of this window
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self._last + self.window_s
        if now >= due:
            self._last = now
            self._wake()
        else:
            self._scheduled = True
            loop.call_later(due - now, self._fire)

    def _fire(self) -> None:
        self._scheduled = False
        self._last = asyncio.get_running_loop().time()
        self._wake()

