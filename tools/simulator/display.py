"""The live progress of a simulation: a table redrawn in place on a terminal (rich), one
plain line every few seconds otherwise (a log file, CI)."""
from __future__ import annotations

import sys
import time

STATE_ORDER = ("pending_claim", "pending_audit", "awaiting_customer_feedback", "awaiting_return_shipment",
               "awaiting_receipt", "pending_process", "provisionally_completed", "unresolved", "arbitration",
               "completed", "refunded_by_system", "closed", "rejected", "abandoned")


class Progress:
    def update(self, snap: dict) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class PlainProgress(Progress):
    def __init__(self, every_s: float = 5.0, out=None) -> None:
        self.every_s = every_s
        self.out = out or sys.stdout
        self._last = 0.0

    def update(self, snap: dict) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        states = " ".join(f"{k}={snap['states'][k]}" for k in STATE_ORDER if snap["states"].get(k))
        lag = " ".join(f"{k}={v:.1f}s" for k, v in snap["lag_s"].items())
        print(f"[sim] {snap['sim_time']} step {snap['tick']}/{snap['ticks']} orders={snap['orders']} "
              f"actions={snap['actions']} ({snap['actions_per_s']:.1f}/s) deadlines_fired={snap['deadlines_fired']} "
              f"lag {lag} errors={snap['errors']} | {states}", file=self.out, flush=True)


class RichProgress(Progress):
    """A rich ``Live`` table: simulated time, orders by state, actions/s, deadlines, lags."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def update(self, snap: dict) -> None:
        from rich.table import Table

        t = Table(title=f"Double-11 simulation — {snap['sim_time']} (Beijing)", show_header=True)
        t.add_column("figure")
        t.add_column("value", justify="right")
        t.add_row("step", f"{snap['tick']} / {snap['ticks']}")
        t.add_row("real time", f"{snap['elapsed_s']:.0f} s")
        t.add_row("orders", str(snap["orders"]))
        for k in STATE_ORDER:
            if snap["states"].get(k):
                t.add_row(f"  {k}", str(snap["states"][k]))
        t.add_row("actions", f"{snap['actions']} ({snap['actions_per_s']:.1f}/s)")
        t.add_row("deadlines fired", str(snap["deadlines_fired"]))
        for k, v in snap["lag_s"].items():
            t.add_row(f"lag {k}", f"{v:.2f} s")
        t.add_row("errors", str(snap["errors"]))
        self.live.update(t)

    def close(self) -> None:
        self.live.stop()


def make_progress(kind: str = "auto") -> Progress | None:
    if kind == "none":
        return None
    if kind == "rich" or (kind == "auto" and sys.stdout.isatty()):
        return RichProgress()
    return PlainProgress()
