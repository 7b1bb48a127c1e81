"""SMS providers behind one interface: a log/file provider and an HTTP gateway."""
from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Protocol

import httpx

from notifier.domain.masking import mask_phone
from notifier.domain.webhook import sign

log = logging.getLogger(__name__)


class ProviderError(Exception):
    """The provider did not accept the message (retried with backoff)."""


class SmsProvider(Protocol):
    async def send(self, phone: str, body: str, message_id: int) -> str:
        """Send; return the provider's message id. Raise ProviderError on failure."""


class LogProvider:
    """The embedded default: every SMS goes to a file (phone masked) so a demo shows them."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def send(self, phone: str, body: str, message_id: int) -> str:
        pid = f"log-{message_id}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"id": pid, "to": mask_phone(phone), "body": body}, ensure_ascii=False) + "\n")
        log.info("sms sent", extra={"to": mask_phone(phone), "provider_id": pid})
        return pid


class HttpGatewayProvider:
    def __init__(self, url: str, key: str, secret: str, timeout_s: float) -> None:
        self.url, self.key, self.secret, self.timeout_s = url, key, secret, timeout_s

    async def send(self, phone: str, body: str, message_id: int) -> str:
        payload = json.dumps({"to": phone, "content": body, "client_ref": str(message_id)},
                             ensure_ascii=False).encode()
        ts, nonce = str(int(time.time())), uuid.uuid4().hex
        headers = {"content-type": "application/json", "x-api-key": self.key, "x-timestamp": ts,
                   "x-nonce": nonce, "x-signature": sign(self.secret, ts, nonce, payload)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                r = await client.post(self.url, content=payload, headers=headers)
        except httpx.HTTPError as e:
            raise ProviderError(f"gateway unreachable: {e.__class__.__name__}") from e
        if r.status_code >= 300:
            raise ProviderError(f"gateway answered {r.status_code}: {r.text[:200]}")
        try:
            return str(r.json()["message_id"])
        except (ValueError, KeyError, TypeError) as e:
            raise ProviderError("gateway answer without message_id") from e


def provider_from_settings(s) -> SmsProvider:
    if s.sms_provider == "http":
        return HttpGatewayProvider(s.sms_gateway_url, s.sms_gateway_key, s.sms_gateway_secret, s.sms_gateway_timeout_s)
    return LogProvider(s.sms_log_file)
