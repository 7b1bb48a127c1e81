"""The services' public APIs, as the console calls them (httpx).

Reads go out with the console's own platform-operator client (a token from the orders
token endpoint, renewed before it expires) and their answers are reused for
``service_cache_s``, so a wall of open console pages costs each service one call per
figure and interval. Actions (an arbitrator's decision) go out with the person's own
token, so the services decide and record who acted.

``metrics`` reads a service's Prometheus ``/metrics`` the same way (operators only on the
service port: the console's operator client) and parses the text format with
prometheus_client's own parser."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from console.domain.metrics import Sample, Scrape

SERVICES = ("orders", "consultation-routing", "sla-timer", "kpi", "notifier")
TOKEN_MARGIN_S = 60  # renew the console's token this long before it expires


class ServiceUnavailable(Exception):
    """A service did not answer (or answered 5xx): the page shows it and keeps the rest."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service, self.message = service, message


class ServiceRefused(Exception):
    """A service answered 4xx: its error code and message (the one error shape)."""

    def __init__(self, service: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{service}: {status} {code}: {message}")
        self.service, self.status, self.code, self.message = service, status, code, message


class SignInRefused(Exception):
    """The token endpoint refused the credentials: ``reason`` is invalid, throttled or unavailable."""

    def __init__(self, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


def _error(r: httpx.Response) -> tuple[str, str]:
    try:
        err = r.json().get("error") or {}
        return str(err.get("code") or "error"), str(err.get("message") or r.text[:200])
    except (ValueError, AttributeError):
        return "error", r.text[:200]


class PlatformGateway:
    def __init__(self, *, urls: dict[str, str], token_url: str, client_id: str, client_secret: str,
                 now: Callable[[], datetime], cache_s: float, timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = {k: v.rstrip("/") for k, v in urls.items()}
        self.token_url = token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.now = now  # the platform clock: tokens expire in its time
        self.cache_s = cache_s
        self.http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._token: tuple[str, datetime] | None = None
        self._token_lock = asyncio.Lock()
        self._cache: dict[tuple, tuple[float, Any]] = {}

    async def close(self) -> None:
        await self.http.aclose()

    # -------------------------------------------------------------------- tokens
    async def sign_in(self, client_id: str, client_secret: str) -> tuple[str, int]:
        """The person's bearer token and its lifetime (seconds), from the token endpoint."""
        try:
            r = await self.http.post(self.token_url, data={"grant_type": "client_credentials", "client_id": client_id,
                                                           "client_secret": client_secret})
        except httpx.HTTPError:
            raise SignInRefused("unavailable") from None
        if r.status_code == 429:
            try:
                retry = int(r.headers.get("retry-after", "60"))
            except ValueError:
                retry = 60
            raise SignInRefused("throttled", retry)
        if r.status_code in (400, 401, 403, 422):
            raise SignInRefused("invalid")
        if r.status_code != 200:
            raise SignInRefused("unavailable")
        body = r.json()
        return str(body["access_token"]), int(body.get("expires_in", 0))

    async def _service_token(self, renew: bool = False) -> str:
        async with self._token_lock:
            held = self._token
            if held is not None and not renew and held[1] - timedelta(seconds=TOKEN_MARGIN_S) > self.now():
                return held[0]
            if not self.client_id or not self.client_secret:
                raise ServiceUnavailable("console", "no service credential (CONSOLE_SERVICE_CLIENT_ID / _SECRET)")
            try:
                token, ttl = await self.sign_in(self.client_id, self.client_secret)
            except SignInRefused as exc:
                raise ServiceUnavailable("orders", f"the console's credential was refused ({exc.reason})") from None
            self._token = (token, self.now() + timedelta(seconds=ttl))
            return token

    # -------------------------------------------------------------------- calls
    def _url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    async def read(self, service: str, path: str, params: dict | None = None, *, fresh: bool = False) -> Any:
        """GET with the console's credential; answers reused for ``cache_s``."""
        return await self._cached(service, path, params, fresh, lambda r: r.json())

    async def metrics(self, service: str) -> Scrape:
        """The service's ``/metrics``, parsed (sample name -> samples); reused for ``cache_s``."""
        return await self._cached(service, "/metrics", None, False, lambda r: parse_metrics(service, r.text))

    async def _cached(self, service: str, path: str, params: dict | None, fresh: bool,
                      decode: Callable[[httpx.Response], Any]) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        key = (service, path, tuple(sorted(clean.items())))
        hit = self._cache.get(key)
        if hit is not None and not fresh and hit[0] > time.monotonic():
            return hit[1]
        r = await self._get(service, path, clean, await self._service_token())
        if r.status_code == 401:  # renewed meanwhile, revoked, or a clock jump: once more
            r = await self._get(service, path, clean, await self._service_token(renew=True))
        value = self._answer(service, r, decode)
        if len(self._cache) > 2000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.cache_s, value)
        return value

    async def _get(self, service: str, path: str, params: dict, token: str) -> httpx.Response:
        try:
            return await self.http.get(self._url(service, path), params=params,
                                       headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(service, type(exc).__name__) from None

    async def act(self, token: str, service: str, path: str, body: dict) -> Any:
        """POST as the signed-in person (their own token)."""
        try:
            r = await self.http.post(self._url(service, path), json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(service, type(exc).__name__) from None
        value = self._answer(service, r)
        self._cache.clear()  # what the pages show just changed
        return value

    @staticmethod
    def _answer(service: str, r: httpx.Response, decode: Callable[[httpx.Response], Any] = lambda r: r.json()) -> Any:
        if r.status_code >= 500:
            raise ServiceUnavailable(service, f"HTTP {r.status_code}")
        if r.status_code >= 400:
            code, message = _error(r)
            raise ServiceRefused(service, r.status_code, code, message)
        return decode(r)


def parse_metrics(service: str, text: str) -> Scrape:
    """Prometheus text format -> sample name -> samples (a counter's ``x_total``, a
    histogram's ``x_bucket``/``x_count``/``x_sum`` each under its own name)."""
    out: dict[str, list[Sample]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append(Sample(dict(s.labels), float(s.value)))
    except (ValueError, TypeError, IndexError) as exc:  # not the text format: the service is not readable
        raise ServiceUnavailable(service, f"/metrics unreadable ({type(exc).__name__})") from None
    return out
