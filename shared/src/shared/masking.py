"""Masking of personal data (phone numbers) wherever it is shown or kept for operators:
parked messages, logs, delivery logs. A mobile 13800138000 becomes 138****8000."""
from __future__ import annotations

import json
import re

_MOBILE = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}|400|800)([- ]?)\d{3,4}([- ]?)(\d{2})(\d{2})(?!\d)")
_PHONE_KEYS = ("phone", "mobile", "tel", "contact")


def mask_phone(value: str) -> str:
    """One phone number, masked: keep the first 3 and last 4 digits of a mobile."""
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:] if len(digits) > 7 else digits[:3] + "****"
    return "*" * len(value)


def mask_text(text: str) -> str:
    """Every phone-like number in free text, masked."""
    text = _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(3)}**{m.group(5)}", text)


def _mask_value(key: str | None, value):
    if isinstance(value, dict):
        return {k: _mask_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(key, v) for v in value]
    if isinstance(value, str):
        if key and any(k in key.lower() for k in _PHONE_KEYS) and any(c.isdigit() for c in value):
            return mask_phone(value)
        return mask_text(value)
    return value


def mask_payload(payload: str) -> str:
    """A message payload with phone numbers masked: by field name where it is JSON, and
    phone-like numbers anywhere in the text."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return mask_text(payload)
    return json.dumps(_mask_value(None, data), ensure_ascii=False)
