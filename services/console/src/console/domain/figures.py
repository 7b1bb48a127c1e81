"""Figures the pages derive (from the read model, chart axes): pure functions."""
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


def range_label(lower: float, upper: float) -> str:
    """A histogram bucket's range for a chart axis: ``0.1–0.25 s``, ``≥ 1 h`` (the open one)."""
    if math.isinf(upper):
        return f"≥ {_fmt(lower)}"
    return f"{_fmt(lower)}–{_fmt(upper)}"


def _fmt(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:g} h"
    if s >= 60:
        return f"{s / 60:g} min"
    return f"{s:g} s"


def share(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)
