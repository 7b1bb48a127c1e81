"""The orders service's account guard: account versions from its own database.

``shared.accounts.AccountGuard`` refuses a token older than its account's latest version.
Here the versions come from ``api_clients`` (authoritative):

- a change made by this process is noted right after its commit (``handlers/accounts.py``):
  the very next request on this replica is refused;
- the accounts changed within ``WINDOW`` are loaded at start, before the first request,
  and again every ``refresh_s`` seconds: a change made on another replica holds here
  within ``refresh_s`` (sooner when ``account.changed`` arrives through the shared
  listener, which feeds this guard too).

Only changed accounts are held (one int each): a token of an account that never changed
carries its current version. A change older than ``WINDOW`` (the longest token lifetime
the settings allow) can be dropped: every token issued before it has expired.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select

from orders.models import ApiClient
from shared.accounts import AccountGuard

log = logging.getLogger(__name__)

WINDOW = timedelta(days=90)  # the longest token lifetime (OrdersSettings.token_ttl_s, le=90 days)


class OrdersAccountGuard(AccountGuard):
    def __init__(self, rt, refresh_s: float) -> None:
        super().__init__()
        self.rt = rt  # its sessions and clock (tests replace the clock after start-up)
        self.refresh_s = refresh_s

    async def load(self) -> int:
        """Note the versions of the accounts changed within WINDOW; how many were read."""
        since = self.rt.clock.now() - WINDOW
        async with self.rt.sessions() as s:
            rows = (await s.execute(select(ApiClient.client_id, ApiClient.version).where(
                ApiClient.version > 1, ApiClient.version_changed_at >= since))).all()
        for client_id, version in rows:
            self.note(client_id, version)
        return len(rows)

    async def follow(self) -> None:
        """Reload every ``refresh_s`` seconds (a background task of the service)."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.load()
            except Exception as exc:  # noqa: BLE001 - the database may be away; next round
                log.warning("account versions not refreshed", extra={"error": repr(exc)})


async def start_account_guard(rt) -> None:
    """``ServiceDefinition.on_start``: load before the first request, then keep following."""
    guard = rt.account_guard
    if isinstance(guard, OrdersAccountGuard):
        await guard.load()
        rt.spawn(guard.follow(), "account-versions")
