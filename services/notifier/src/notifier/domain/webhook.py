"""Checking a signed webhook request (SMS delivery receipts), without I/O.

The gateway signs ``timestamp\\nnonce\\nbody`` with the shared secret (HMAC-SHA256, hex,
``sign``; our requests to the gateway are signed the same way) and sends ``X-Timestamp``
(Unix seconds), ``X-Nonce`` and ``X-Signature``. A request is accepted when the signature
matches, the timestamp is within ±5 minutes of the service clock, and (checked by the caller
against the replay cache) the nonce was not accepted before within that window."""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.errors import ApiError

WINDOW = timedelta(minutes=5)
MAX_BODY = 16 * 1024  # a receipt is a few hundred bytes
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NONCE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")


def sign(secret: str, timestamp: str, nonce: str, payload: bytes) -> str:
    """HMAC-SHA256 over ``timestamp\\nnonce\\nbody`` (hex)."""
    return hmac.new(secret.encode(), f"{timestamp}\n{nonce}\n".encode() + payload, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    nonce: str
    at: datetime  # the request's timestamp

    @property
    def expires_at(self) -> datetime:
        """Until when the nonce must be remembered: after it, the timestamp is refused anyway."""
        return self.at + WINDOW


def _refuse(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


def verify(secret: str, headers, raw: bytes, now: datetime) -> Signed:
    """The checked request, or ApiError 401 (``missing_signature``, ``bad_signature``,
    ``stale_timestamp``). The signature is checked before the time, so a caller without the
    secret learns nothing else."""
    ts, nonce, sig = (headers.get(h, "") for h in ("x-timestamp", "x-nonce", "x-signature"))
    if not (ts and nonce and sig):
        raise _refuse("missing_signature", "send X-Timestamp, X-Nonce and X-Signature (HMAC-SHA256 of "
                                           "timestamp, nonce and body)")
    if not (_TIMESTAMP.match(ts) and _NONCE.match(nonce) and _SIGNATURE.match(sig)):
        raise _refuse("bad_signature", "X-Timestamp must be Unix seconds, X-Nonce 8-64 characters "
                                       "[A-Za-z0-9._:-], X-Signature 64 hex digits")
    if not hmac.compare_digest(sign(secret, ts, nonce, raw).encode(), sig.lower().encode()):
        raise _refuse("bad_signature", "the receipt signature does not match")
    at = datetime.fromtimestamp(int(ts), timezone.utc) if int(ts) < 253402300800 else None  # year 10000
    if at is None or abs(at - now) > WINDOW:
        raise _refuse("stale_timestamp", "X-Timestamp is more than 5 minutes away from the service clock")
    return Signed(nonce=nonce, at=at)
