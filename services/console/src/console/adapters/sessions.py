"""Sign-in sessions in the console's database: the cookie carries a random token, the
table its SHA-256 (a stolen database holds no usable cookie). The person's own bearer token
(for their actions) is stored encrypted with a key derived from the cookie, which only their
browser holds: a stolen database holds no usable bearer token either."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete

from console.models import ConsoleSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sealer(cookie: str) -> Fernet:
    """Authenticated encryption (AES-CBC + HMAC, cryptography's Fernet) under a key derived from
    the cookie; a different purpose string than the stored hash, so the hash reveals nothing."""
    key = hmac.new(cookie.encode(), b"console bearer token", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(cookie: str, token: str) -> str:
    return _sealer(cookie).encrypt(token.encode()).decode()


def unseal(cookie: str, sealed: str) -> str | None:
    try:
        return _sealer(cookie).decrypt(sealed.encode()).decode()
    except InvalidToken:  # a row written before tokens were sealed, or tampered with
        return None


@dataclass(frozen=True)
class Session:
    id_hash: str
    client_id: str
    role: str
    version: int | None
    token: str
    token_expires_at: datetime
    csrf: str
    expires_at: datetime


def _view(r: ConsoleSession, token: str) -> Session:
    return Session(r.id_hash, r.client_id, r.role, r.version, token, r.token_expires_at, r.csrf, r.expires_at)


class SessionStore:
    def __init__(self, sessions) -> None:
        self.sessions = sessions  # the runtime's session factory

    async def create(self, *, client_id: str, role: str, version: int | None, token: str,
                     token_expires_at: datetime, now: datetime, expires_at: datetime) -> tuple[str, Session]:
        """A new session: (the cookie value, the session)."""
        cookie = secrets.token_urlsafe(32)
        row = ConsoleSession(id_hash=token_hash(cookie), client_id=client_id, role=role, version=version,
                             token=seal(cookie, token),
                             token_expires_at=token_expires_at, csrf=secrets.token_urlsafe(32), created_at=now,
                             expires_at=expires_at)
        async with self.sessions() as s, s.begin():
            # expired sessions go when a new one comes (no sweeper needed)
            await s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
            s.add(row)
        return cookie, _view(row, token)

    async def get(self, cookie: str) -> Session | None:
        async with self.sessions() as s:
            row = await s.get(ConsoleSession, token_hash(cookie))
        token = None if row is None else unseal(cookie, row.token)
        return None if token is None else _view(row, token)

    async def end(self, id_hash: str) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))
