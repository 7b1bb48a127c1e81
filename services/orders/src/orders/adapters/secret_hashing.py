"""Client-secret hashes: Argon2id (pwdlib) for new ones, the earlier PBKDF2 format still verified.

Hashing is CPU work of tens of milliseconds, so the async entry points run it in a worker
thread (the event loop keeps answering, /health included) and at most ``concurrency``
at a time (each Argon2 hash holds ~19 MiB: a burst of attempts must not hold hundreds).

Argon2id parameters: the OWASP minimum (m = 19 MiB, t = 2, p = 1). Client secrets are
random (192 bits), so the hash guards a leaked table rather than a guessable password;
~20 ms per verification on one core keeps the token endpoint cheap.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Callable

import asyncio
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import ensure_str

ARGON2 = dict(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class LegacyPbkdf2Hasher:
    """The format stored before Argon2: ``pbkdf2_sha256$<iterations>$<salt hex>$<key hex>``.

    Only verified (and re-hashed with Argon2 after a successful login); ``hash`` exists so
    tests can store one."""

    PREFIX = "pbkdf2_sha256$"
    ITERATIONS = 120_000

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        try:
            return ensure_str(hash).startswith(cls.PREFIX)
        except UnicodeDecodeError:
            return False

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        salt = salt or secrets.token_bytes(16)
        dk = hashlib.pbkdf2_hmac("sha256", _bytes(password), salt, self.ITERATIONS)
        return f"{self.PREFIX[:-1]}${self.ITERATIONS}${salt.hex()}${dk.hex()}"

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        try:
            _alg, iterations, salt, dk = ensure_str(hash).split("$")
            got = hashlib.pbkdf2_hmac("sha256", _bytes(password), bytes.fromhex(salt), int(iterations))
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(got.hex(), dk)

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


def _bytes(v: str | bytes) -> bytes:
    return v.encode() if isinstance(v, str) else v


# The first hasher makes new hashes; the others are only recognised and verified.
PASSWORDS = PasswordHash((Argon2Hasher(**ARGON2), LegacyPbkdf2Hasher()))


def hash_secret(secret: str) -> str:
    return PASSWORDS.hash(secret)


def verify_secret(secret: str, stored: str) -> tuple[bool, str | None]:
    """(matches, the hash to store instead or None): legacy or outdated hashes come back
    re-hashed after a match."""
    try:
        return PASSWORDS.verify_and_update(secret, stored)
    except UnknownHashError:
        return False, None


_DUMMY: list[str] = []


def dummy_hash() -> str:
    """A hash of a random secret no one knows: unknown client ids are verified against it,
    so they take as long as known ones (no enumeration by timing)."""
    if not _DUMMY:
        _DUMMY.append(hash_secret(secrets.token_urlsafe(24)))
    return _DUMMY[0]


class SecretHasher:
    """The async face: hashing in worker threads, ``concurrency`` at a time."""

    def __init__(self, concurrency: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)

    async def run(self, fn: Callable, *args, before: Callable | None = None):
        """``fn(*args)`` in a worker thread once a slot is free; ``before`` (async) runs when
        the slot is taken, just before the work (the attempt limits are checked again there:
        a burst queued behind the slots must not all be hashed)."""
        async with self.slots:
            if before is not None:
                await before()
            return await asyncio.to_thread(fn, *args)

    async def hash(self, secret: str) -> str:
        return await self.run(hash_secret, secret)

    async def verify(self, secret: str, stored: str | None, before: Callable | None = None) -> tuple[bool, str | None]:
        """Like ``verify_secret``; ``stored=None`` (unknown client) verifies against the dummy
        hash and never matches."""
        if stored is None:
            await self.run(_verify_dummy, secret, before=before)
            return False, None
        return await self.run(verify_secret, secret, stored, before=before)


def _verify_dummy(secret: str) -> None:
    verify_secret(secret, dummy_hash())
