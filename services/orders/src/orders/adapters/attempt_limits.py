"""Failed-attempt limits of the token endpoint (the ``limits`` library, moving windows).

Two limits, each counting FAILED attempts only: per client id (whatever id was sent,
known or not) and per source address. While either is exhausted the endpoint answers
429 ``too_many_attempts`` with ``Retry-After`` without looking at the secret, so a
correct secret does not get through a lockout either (guessing cannot go on behind it).

Storage: ``async+memory://`` by default, i.e. per process: with several replicas each
counts its own attempts (an attacker spread over N replicas gets N times the limit).
A shared storage (``async+redis://host:6379``, which needs the ``limits[async-redis]``
extra) makes the limits global; see the README.
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class TooManyAttempts(Exception):
    def __init__(self, scope: str, retry_after_s: int) -> None:
        super().__init__(f"too many failed attempts for this {scope}")
        self.scope, self.retry_after_s = scope, retry_after_s


class AttemptLimits:
    def __init__(self, per_client: str, per_address: str, storage_uri: str = "async+memory://") -> None:
        self.per_client: RateLimitItem = parse(per_client)
        self.per_address: RateLimitItem = parse(per_address)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def _checks(self, client_id: str, address: str) -> list[tuple[str, RateLimitItem, str]]:
        # Ids are bounded before they become keys: a flood of long random ids must not
        # make long keys.
        return [("client", self.per_client, "client:" + client_id[:100]),
                ("address", self.per_address, "address:" + address[:100])]

    async def ensure_allowed(self, client_id: str, address: str) -> None:
        """TooManyAttempts while the client id or the address has no failure left."""
        for scope, item, key in self._checks(client_id, address):
            if not await self.limiter.test(item, key):
                stats = await self.limiter.get_window_stats(item, key)
                raise TooManyAttempts(scope, max(1, math.ceil(stats.reset_time - time.time())))

    async def failed(self, client_id: str, address: str) -> None:
        for _scope, item, key in self._checks(client_id, address):
            await self.limiter.hit(item, key)
