"""/health, /ready, /metrics and the request middleware (correlation ids, timings)."""
from __future__ import annotations

import asyncio
import time
import weakref
from typing import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from shared.auth import Policy
from shared.operations import Health, Readiness
from shared.logging import current_correlation_id, reset_correlation_id, set_correlation_id

# A check answers True (ok), False (failed) or a string: failed, and why (shown in "reasons").
ReadyCheck = Callable[[], Awaitable[bool | str]]
READY_TIMEOUT_S = 0.8  # /ready answers within a second, 503 if a check has not finished by then


def _quiet(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


async def run_checks(checks: dict[str, ReadyCheck]) -> tuple[dict[str, bool], dict[str, str]]:
    """Run the readiness checks at once: (check → passed, check → why not, where it said).
    Bounded whatever hangs: checks not done in READY_TIMEOUT_S count as failed and are
    cancelled without waiting for them (a frozen broker may ignore the cancellation).
    ``/ready`` answers from it, and the ``service_ready`` gauge is sampled from it."""
    tasks = {n: asyncio.ensure_future(check()) for n, check in checks.items()}
    await asyncio.wait(tasks.values(), timeout=READY_TIMEOUT_S)
    detail, reasons = {}, {}
    for n, t in tasks.items():
        if t.done() and not t.cancelled() and t.exception() is None:
            result = t.result()
            detail[n] = result is True
            if isinstance(result, str):
                reasons[n] = result
        else:
            if not t.done():
                t.cancel()
                t.add_done_callback(_quiet)
            detail[n] = False
    return detail, reasons


def health_router(service: str, metrics: CollectorRegistry, checks: dict[str, ReadyCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness: the process answers", response_model=Health,
                dependencies=[Depends(Policy.public("liveness probe"))])
    async def health() -> dict:
        return {"status": "ok", "service": service}

    @router.get("/ready", summary="Readiness: database and broker reachable, schema migrated", response_model=Readiness,
                responses={503: {"model": Readiness, "description": "not ready: a check failed or took too long"}},
                dependencies=[Depends(Policy.public("readiness probe"))])
    async def ready() -> JSONResponse:
        detail, reasons = await run_checks(checks)
        ok = all(detail.values())
        body = {"status": "ready" if ok else "not_ready", "service": service, "checks": detail}
        if reasons:
            body["reasons"] = reasons
        return JSONResponse(body, status_code=200 if ok else 503)

    # Operators only on the service port; Prometheus scrapes the operations port
    # (METRICS_PORT, see shared.runtime) where one is configured.
    @router.get("/metrics", summary="Prometheus metrics (platform operators)", include_in_schema=False,
                dependencies=[Depends(Policy("platform_operator"))])
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return router


# Set in the scope by the first RequestContextMiddleware a request meets: a service that
# serves hot routes ahead of its middleware stack wraps them in one too, and a request it
# passes on to the stack is then not counted twice.
CONTEXT_DONE = "aftersales.request_context"
_LATENCY: "weakref.WeakKeyDictionary[CollectorRegistry, Histogram]" = weakref.WeakKeyDictionary()


def _latency_histogram(metrics: CollectorRegistry) -> Histogram:
    """One histogram per registry, whichever middleware instance asks first."""
    h = _LATENCY.get(metrics)
    if h is None:
        h = _LATENCY[metrics] = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=metrics,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
    return h


class RequestContextMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on hot endpoints)."""

    def __init__(self, app, metrics: CollectorRegistry) -> None:
        self.app = app
        self.latency = _latency_histogram(metrics)
        # (method, route, status) → histogram child: ``labels()`` re-validates and locks per call.
        self._children: dict[tuple[str, str, int], object] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or CONTEXT_DONE in scope:
            await self.app(scope, receive, send)
            return
        scope[CONTEXT_DONE] = True
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-correlation-id":
                incoming = value.decode("latin-1")[:100]
                break
        token = set_correlation_id(incoming)
        cid_bytes = (current_correlation_id() or "").encode()
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", cid_bytes)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            key = (scope["method"], getattr(scope.get("route"), "path", "unmatched"), status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.latency.labels(key[0], key[1], str(status))
            child.observe(elapsed)
            reset_correlation_id(token)
