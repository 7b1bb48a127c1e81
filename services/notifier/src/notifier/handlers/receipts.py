"""Applying a verified delivery receipt once: its nonce goes into the replay cache (a
table, so every replica refuses a replay) in the transaction that applies it."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from notifier.adapters.metrics import notifier_metrics
from notifier.models import Message, SeenNonce
from notifier.parts import notifier_parts
from notifier.domain.webhook import Signed
from shared.errors import ApiError
from shared.runtime import Runtime

log = logging.getLogger(__name__)
PRUNE_EVERY = timedelta(minutes=1)  # per replica, on the service clock


async def apply_receipt(rt: Runtime, signed: Signed, message_id: str, status: str, detail: str | None,
                        receipt_json: str) -> dict:
    now = rt.clock.now()
    try:
        async with rt.uow() as s:
            # A nonce whose window is over may come again (a new request with a new timestamp).
            await s.execute(delete(SeenNonce).where(SeenNonce.nonce == signed.nonce, SeenNonce.expires_at < now))
            s.add(SeenNonce(nonce=signed.nonce, seen_at=now, expires_at=signed.expires_at))
            # A concurrent request with the same nonce waits here on the key, then fails.
            await s.flush()
            m = (await s.execute(select(Message).where(Message.provider_message_id == message_id))).scalar_one_or_none()
            if m is None:
                # Rolled back with the nonce: nothing changed, so a retry of this request may apply later.
                raise ApiError(404, "message_not_found", f"no message with provider id {message_id}")
            m.receipt = receipt_json
            if status == "delivered":
                m.status, m.delivered_at = "delivered", now
            else:
                if m.status != "failed":  # a repeated failure receipt counts once
                    notifier_metrics(rt).at_commit(s, "failed", m.channel, m.template_key)
                m.status, m.last_error = "failed", f"provider receipt: {detail or 'failed'}"
            out = {"id": m.id, "status": m.status}
    except IntegrityError:
        raise ApiError(401, "replayed", "this receipt (its nonce) was already accepted") from None
    await prune(rt)
    return out


async def prune(rt: Runtime, force: bool = False) -> int:
    """Drop expired nonces, at most once per PRUNE_EVERY on this replica (opportunistic:
    only after an accepted receipt, so unsigned traffic causes no database work)."""
    now = rt.clock.now()
    parts = notifier_parts(rt)
    last = parts.nonces_pruned_at
    if not force and last is not None and now - last < PRUNE_EVERY:
        return 0
    parts.nonces_pruned_at = now
    try:
        async with rt.uow() as s:
            r = await s.execute(delete(SeenNonce).where(SeenNonce.expires_at < now))
        return r.rowcount or 0
    except Exception as e:  # noqa: BLE001 - pruning is housekeeping; the receipt was applied
        log.warning("nonce pruning failed", extra={"error": repr(e)})
        return 0
