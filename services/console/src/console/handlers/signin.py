"""Signing in and out, and the session behind a request.

Credentials are checked by the orders token endpoint (the console never sees a password
store); the token it answers is verified here with the platform's signing secret, and
only platform operators and arbitrators get a session (docs/console.md § Signing in)."""
from __future__ import annotations

from datetime import datetime, timedelta

from console.adapters.platform import PlatformGateway, SignInRefused
from console.adapters.sessions import Session, SessionStore
from console.domain import access
from shared.accounts import AccountGuard
from shared.auth import Principal, verify_token
from shared.errors import ApiError


async def sign_in(gateway: PlatformGateway, store: SessionStore, guard: AccountGuard, *, secret: str,
                  client_id: str, client_secret: str, platform_now: datetime, wall_now: datetime,
                  ttl: timedelta) -> tuple[str, Session]:
    """(cookie value, session); SignInRefused with reason invalid / throttled / unavailable / not_staff."""
    token, lifetime_s = await gateway.sign_in(client_id, client_secret)
    try:
        p = verify_token(token, secret, now=platform_now)
        guard.check(p)
    except ApiError:
        # a token this console cannot verify (another signing secret): not a sign-in
        raise SignInRefused("invalid") from None
    if not access.may_sign_in(p.role):
        raise SignInRefused("not_staff")
    return await store.create(client_id=p.subject, role=p.role, version=p.version, token=token,
                              token_expires_at=platform_now + timedelta(seconds=lifetime_s), now=wall_now,
                              expires_at=wall_now + ttl)


async def current(store: SessionStore, guard: AccountGuard, cookie: str | None, wall_now: datetime) -> Session | None:
    """The live session a cookie names; None (and the session ended) when it expired or its
    account was deactivated or changed since the sign-in (the ``account.changed`` events)."""
    if not cookie or len(cookie) > 200:
        return None
    s = await store.get(cookie)
    if s is None:
        return None
    if s.expires_at <= wall_now:
        await store.end(s.id_hash)
        return None
    try:
        guard.check(Principal(s.role, s.client_id, version=s.version))
    except ApiError:
        await store.end(s.id_hash)
        return None
    return s
