"""Figures the pages derive from the read model: pure functions."""
from __future__ import annotations

import math
from datetime import datetime, timedelta


def last_hours(now_hour: datetime, n: int) -> list[datetime]:
    """The ``n`` hours ending with ``now_hour`` (the current, unfinished one), oldest first."""
    return [now_hour - timedelta(hours=k) for k in range(n - 1, -1, -1)]


def backlog_trend(open_now: int, hours: list[datetime], opened: dict[datetime, int],
                  closed: dict[datetime, int], after: dict[datetime, tuple[int, int]] | None = None) -> list[int]:
    """Open orders at the end of each of ``hours`` (oldest first), walked back from the open
    orders now: before an hour, the backlog was the one after it less what opened in it plus
    what closed in it. ``after``: opened/closed in hours later than the last of ``hours``
    (events stamped ahead of the clock), taken off first."""
    level = open_now
    for o, c in (after or {}).values():
        level -= o - c
    out = []
    for h in reversed(hours):
        out.append(level)
        level -= opened.get(h, 0) - closed.get(h, 0)
    return list(reversed(out))


# Firing lateness buckets (seconds): upper bounds, the last one open-ended.
LATENESS_BOUNDS = (1.0, 5.0, 30.0, 60.0, 300.0, 3600.0)


def lateness_buckets(values: list[float]) -> list[tuple[str, int]]:
    labels = []
    lower = 0.0
    for b in LATENESS_BOUNDS:
        labels.append((f"{_fmt(lower)}–{_fmt(b)}", lower, b))
        lower = b
    labels.append((f"≥ {_fmt(lower)}", lower, math.inf))
    counts = [0] * len(labels)
    for v in values:
        for i, (_label, lo, hi) in enumerate(labels):
            if lo <= max(v, 0.0) < hi:
                counts[i] += 1
                break
    return [(label, n) for (label, _lo, _hi), n in zip(labels, counts)]


def _fmt(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:g} h"
    if s >= 60:
        return f"{s / 60:g} min"
    return f"{s:g} s"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def share(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)
