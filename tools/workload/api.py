"""The platform's HTTP APIs as the workload calls them: bearer tokens from the orders
service's token endpoint (refreshed before they expire on the shared virtual clock),
and retries that make every call safe to repeat while replicas and the broker die.

Retries: a connection refused or reset, a timeout, 502/503/504 or a 500 is tried again
(backoff from 0.2 s doubling to 2 s, jittered: shared.retry) for up to ``retry_for_s``. The calls the workload makes are
all safe to repeat: applications carry an ``Idempotency-Key``, order actions an
``If-Match`` version (a repeat of an action that went through is refused with 409, and the
caller reads the order again), route calls a ``consultation_id``. The clock advance is not
repeatable; ``advance_clock_to`` reads the offset back before it moves again."""
from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from shared.retry import Backoff

RETRY_STATUS = {500, 502, 503, 504}
# aiohttp rather than httpx for the workload's own calls: the driver runs on the machine it
# measures (bench-platform counts every process), and with httpx the client was three
# quarters of the driver's samples (~1 ms of CPU per call); aiohttp's client costs a fraction.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


@dataclass(frozen=True)
class Response:
    """An answer read whole: its status, its body, and the call it answers."""

    status_code: int
    content: bytes
    method: str
    path: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


class ApiError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        err = body.get("error") if isinstance(body, dict) else None
        self.code = err.get("code") if isinstance(err, dict) else None
        super().__init__(f"{response.method} {response.path}: {self.status} {response.text[:300]}")


class Unavailable(Exception):
    """The call kept failing for ``retry_for_s`` (the service is down)."""


@dataclass
class Credentials:
    client_id: str
    client_secret: str


TOKEN_ATTEMPTS = 20  # a 401 is retried with a new token for ~10 s (clock propagation)


def _jwt_exp(token: str) -> float:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return float(json.loads(base64.urlsafe_b64decode(payload))["exp"])


class VirtualTime:
    """The workload's view of the platform clock: real time plus the offset last read."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.offset_s


class Api:
    def __init__(self, urls: dict[str, str], *, retry_for_s: float = 90.0, timeout_s: float = 15.0,
                 max_connections: int = 32) -> None:
        self.urls = urls
        self.retry_for_s = retry_for_s
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made in the running event loop
        self.creds: dict[str, Credentials] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}
        self.clock = VirtualTime()
        self.stats: Counter = Counter()  # retries by cause, statuses, token fetches

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                cookie_jar=aiohttp.DummyCookieJar())  # the APIs set no cookies: none kept
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_url(self, url: str, *, headers: dict | None = None) -> Response:
        """One GET of a full URL (one replica, say), not retried."""
        return await self._request("GET", url, headers=headers)

    async def _request(self, method: str, url: str, *, headers: dict | None = None, params: dict | None = None,
                       content: bytes | None = None, data: dict | None = None, json: object = None) -> Response:
        if params:
            params = {k: str(v) for k, v in params.items()}
        async with self.session.request(method, url, headers=headers, params=params,
                                        data=content if content is not None else data, json=json) as r:
            body = await r.read()
        return Response(r.status, body, method, r.url.path)

    def add_client(self, client_id: str, client_secret: str) -> None:
        self.creds[client_id] = Credentials(client_id, client_secret)

    # ---------------------------------------------------------------- tokens
    async def token(self, client_id: str, *, force: bool = False) -> str:
        return (await self._bearer(client_id, force=force))[len("Bearer "):]

    async def _bearer(self, client_id: str, *, force: bool = False) -> str:
        """The ``Authorization`` header's value for ``client_id`` (kept as such: not put
        together again on every call)."""
        cached = self._tokens.get(client_id)
        # refreshed a minute before it expires on the (virtual) service clock
        if cached and not force and cached[1] - 60 > self.clock.now():
            return cached[0]  # the common case: no lock to take
        lock = self._token_locks.setdefault(client_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(client_id)
            if cached and not force and cached[1] - 60 > self.clock.now():
                return cached[0]
            c = self.creds[client_id]
            r = await self._send("orders", "POST", "/v1/oauth/token", data={
                "grant_type": "client_credentials", "client_id": c.client_id, "client_secret": c.client_secret})
            if r.status_code != 200:
                raise ApiError(r)
            token = r.json()["access_token"]
            self._tokens[client_id] = ("Bearer " + token, _jwt_exp(token))
            self.stats["token_fetched"] += 1
            return self._tokens[client_id][0]

    def forget_tokens(self) -> None:
        self._tokens.clear()

    # ---------------------------------------------------------------- calls
    async def _send(self, service: str, method: str, path: str, *, headers: dict | None = None,
                    retry: bool = True, **kw) -> Response:
        deadline = time.monotonic() + self.retry_for_s
        backoff = Backoff(0.2, 2.0)  # jittered: many workers retrying a restarted service spread out
        while True:
            cause = None
            try:
                r = await self._request(method, self.urls[service] + path, headers=headers, **kw)
                if r.status_code not in RETRY_STATUS:
                    return r
                cause = f"http_{r.status_code}"
                if r.status_code == 500:
                    self.stats[f"http_500:{service}{_route(path)}"] += 1
            except TRANSPORT_ERRORS as exc:
                cause = type(exc).__name__
            if not retry:
                raise Unavailable(f"{method} {service}{path}: {cause} (not repeatable)")
            self.stats[f"retry:{service}:{cause}"] += 1
            if time.monotonic() > deadline:
                raise Unavailable(f"{method} {service}{path}: still failing after {self.retry_for_s:.0f}s ({cause})")
            await backoff.wait()

    async def call(self, service: str, method: str, path: str, *, as_: str | None, customer: str | None = None,
                   headers: dict | None = None, **kw) -> Response:
        """One call as client ``as_`` (None: anonymous); a 401 fetches a new token. Right after
        a virtual-clock jump, a replica that has not applied it yet (one just restarted, say)
        issues a token the others already see as expired: fetched again for a few seconds."""
        pace = Backoff(0.5, 0.5, floor=0.6)
        for attempt in range(TOKEN_ATTEMPTS):
            if attempt > 1:
                await pace.wait()
            h = dict(headers or {})
            if as_ is not None:
                h["Authorization"] = await self._bearer(as_, force=attempt > 0)
            if customer is not None:
                h["X-Customer-Id"] = customer
            r = await self._send(service, method, path, headers=h, **kw)
            self.stats[f"status:{r.status_code}"] += 1
            if r.status_code != 401 or as_ is None:
                return r
            self.stats["token_refused"] += 1
        return r

    async def ok(self, service: str, method: str, path: str, *, as_: str | None, expect=(200, 201), **kw) -> dict:
        r = await self.call(service, method, path, as_=as_, **kw)
        if r.status_code not in expect:
            raise ApiError(r)
        return r.json() if r.content else {}

    # ---------------------------------------------------------------- clock
    async def read_clock(self, as_: str, services: tuple[str, ...] = ("orders",)) -> float:
        """The highest offset the given services report (each follows the clock topic on its own)."""
        async def one(service: str) -> float | BaseException:
            try:
                return float((await self.ok(service, "GET", "/admin/clock", as_=as_))["offset_seconds"])
            except (Unavailable, ApiError) as exc:
                return exc

        answers = await asyncio.gather(*(one(s) for s in services))  # at once: each may be retrying
        offsets = [a for a in answers if isinstance(a, float)]
        if not offsets:
            raise answers[-1]
        offset = max(offsets)
        self.clock.offset_s = max(self.clock.offset_s, offset)
        return offset

    async def advance_clock_to(self, as_: str, target_offset_s: float) -> float:
        """Move the shared virtual clock until its offset is at least ``target_offset_s``.
        An advance is announced once per request; a request whose answer was lost (a
        replica killed, the broker restarting) may still have moved it: the offset is read
        back from several services before asking again, so one step never moves it twice."""
        everyone = ("orders", "sla-timer", "kpi", "notifier")
        offset = await self.read_clock(as_, everyone)
        while target_offset_s - offset > 0.5:
            try:
                r = await self.call("orders", "POST", "/admin/clock/advance", as_=as_, retry=False,
                                    json={"seconds": target_offset_s - offset})
            except Unavailable:
                self.stats["clock_advance_unanswered"] += 1
                await asyncio.sleep(2.0)
                offset = await self.read_clock(as_, everyone)
                continue
            if r.status_code == 200:
                self.stats["clock_advanced"] += 1
                offset = float(r.json()["offset_seconds"])
                self.clock.offset_s = max(self.clock.offset_s, offset)
                return offset
            self.stats[f"clock_advance_refused:{r.status_code}"] += 1
            if r.status_code not in (409, 503):
                raise ApiError(r)
            await asyncio.sleep(2.0)  # the announcement may still land: read it back first
            offset = await self.read_clock(as_, everyone)
        return offset


def _route(path: str) -> str:
    parts = path.split("?")[0].split("/")
    return "/".join("{id}" if len(p) >= 20 else p for p in parts)
