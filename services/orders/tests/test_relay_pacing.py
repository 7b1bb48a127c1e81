"""Relay wake-up pacing: an idle service wakes the relay at once; a busy one at most once per window."""
from __future__ import annotations

from orders.adapters import relay_pacing
from orders.adapters.relay_pacing import PacedWake


class FakeLoop:
    """Just the two loop methods PacedWake uses, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, object]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay, fn):
        self.timers.append((self.now + delay, fn))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in due:
            fn()


def test_paced_wake(monkeypatch):
    loop = FakeLoop()
    monkeypatch.setattr(relay_pacing.asyncio, "get_running_loop", lambda: loop)
    wakes = []
    paced = PacedWake(lambda: wakes.append(loop.now), 0.05)

    paced()  # idle: leading edge, at once
    assert wakes == [100.0]
    paced()  # busy: deferred to the end of the window...
    paced()  # ...and coalesced with the one already due
    assert wakes == [100.0] and len(loop.timers) == 1
    loop.advance(0.049)
    assert wakes == [100.0]
    loop.advance(0.001)
    assert len(wakes) == 2 and abs(wakes[1] - 100.05) < 1e-9
    loop.advance(1.0)  # quiet for a while: the next commit wakes at once again
    paced()
    assert len(wakes) == 3 and wakes[2] == loop.now and not loop.timers


def test_the_store_wakes_the_relay_paced_and_a_zero_window_wakes_it_directly():
    from orders.app import create_app, order_store

    app = create_app()
    rt = app.state.runtime
    store = order_store(rt, rt.settings.model_copy(update={"outbox_wake_window_s": 0.05}))
    assert isinstance(store.after_commit, PacedWake) and store.after_commit.window_s == 0.05
    store = order_store(rt, rt.settings.model_copy(update={"outbox_wake_window_s": 0}))
    assert store.after_commit == rt.relay.wake
