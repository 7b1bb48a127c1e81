"""Delivery rules: phone validity, backoff, rate-limit window (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

# Numbers without a country code are read as mainland China numbers.
REGION = "CN"


@lru_cache(maxsize=65536)
def _kind(phone: str) -> tuple[bool, bool]:
    """(valid, mobile) of a number. Parsing is the costly part of recording a message and the
    same customers, merchants and staff numbers come back all the time: remembered (pure)."""
    try:
        number = phonenumbers.parse(phone, REGION)
    except NumberParseException:
        return False, False
    if not phonenumbers.is_valid_number(number):
        return False, False
    return True, phonenumbers.number_type(number) == PhoneNumberType.MOBILE


def valid_phone(phone: str | None) -> bool:
    """A real phone number (mobile, landline, 400 service number...)."""
    return isinstance(phone, str) and bool(phone) and _kind(phone)[0]


def sms_capable(phone: str | None) -> bool:
    """Only mobile numbers receive SMS: a landline or a 400 hotline is a valid contact, but an
    SMS to it is never delivered (its owner gets the in-site message instead)."""
    return isinstance(phone, str) and bool(phone) and _kind(phone)[1]


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
