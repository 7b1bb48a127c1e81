"""Delivery rules: phone validity, backoff, rate-limit window (pure)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

# Mainland mobile numbers, and landline / 400 service numbers used as merchant contacts.
_PHONE = re.compile(r"^(?:\+?86)?(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|400-?\d{3}-?\d{4})$")


def valid_phone(phone: str | None) -> bool:
    return bool(phone) and bool(_PHONE.match(phone.replace(" ", "")))


def backoff(attempts: int, base_s: float, cap_s: float) -> timedelta:
    """Delay before attempt ``attempts + 1`` after ``attempts`` failures: base·2^(n-1), capped."""
    return timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempts - 1)))


def rate_limited_until(recent_sent: list[datetime], now: datetime, limit: int, window: timedelta) -> datetime | None:
    """When the recipient may receive again, or None when under the limit.

    Excess messages are held (stay queued) rather than dropped: none is lost."""
    inside = sorted(t for t in recent_sent if t > now - window)
    if len(inside) < limit:
        return None
    return inside[len(inside) - limit] + window
