"""Eligibility windows (docs/lifecycle.md), days after delivery, per category. Policy defaults;
a window not listed for a (service, problem) pair falls back to the service type's.

Per-category overrides (setting ``ORDERS_ELIGIBILITY_WINDOWS``, JSON) are keyed
``"category:service_type:problem_type"`` or ``"category:service_type"``; the most
specific key wins, then the defaults below."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_WINDOWS_DAYS: dict[tuple[str, str | None], int] = {
    ("return", "no_reason"): 7,   # 七天无理由
    ("return", None): 30,
    ("exchange", None): 30,       # quality exchange ≤ 30 days
    ("repair", None): 365,        # within warranty
    ("compensation", None): 30,
}


@dataclass(frozen=True)
class WindowCheck:
    allowed: bool
    window_days: int
    deadline: datetime


def window_days(service_type: str, problem_type: str, category: str | None = None,
                overrides: dict[str, int] | None = None,
                windows: dict[tuple[str, str | None], int] = DEFAULT_WINDOWS_DAYS) -> int:
    for key in (f"{category}:{service_type}:{problem_type}", f"{category}:{service_type}"):
        if overrides and key in overrides:
            return overrides[key]
    return windows.get((service_type, problem_type), windows[(service_type, None)])


def check_window(service_type: str, problem_type: str, delivered_at: datetime, now: datetime,
                 windows: dict[tuple[str, str | None], int] = DEFAULT_WINDOWS_DAYS, *,
                 category: str | None = None, overrides: dict[str, int] | None = None) -> WindowCheck:
    days = window_days(service_type, problem_type, category, overrides, windows)
    deadline = delivered_at + timedelta(days=days)
    return WindowCheck(allowed=delivered_at <= now <= deadline, window_days=days, deadline=deadline)
