"""Delivery rules: phone validity, backoff, rate-limit window (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

# Numbers without a country code are read as mainland China numbers.
REGION = "CN"


def _parse(phone: str | None) -> phonenumbers.PhoneNumber | None:
    if not isinstance(phone, str) or not phone:
        return None
    try:
        number = phonenumbers.parse(phone, REGION)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def valid_phone(phone: str | None) -> bool:
    """A real phone number (mobile, landline, 400 service number...)."""
    return _parse(phone) is not None


def sms_capable(phone: str | None) -> bool:
    """Only mobile numbers receive SMS: a landline or a 400 hotline is a valid contact, but an
    SMS to it is never delivered (its owner gets the in-site message instead)."""
    number = _parse(phone)
    return number is not None and phonenumbers.number_type(number) == PhoneNumberType.MOBILE


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
