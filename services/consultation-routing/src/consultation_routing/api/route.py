"""GET /v1/route — the storefront's hot path.

Served by ``RouteFastPath``, a pure ASGI layer in front of the whole FastAPI
stack (``RoutingApp`` calls it before any middleware): it parses the query by
hand, decides from memory, hands the decision to the publisher's buffer (no I/O)
and writes the JSON answer itself, keeping the correlation-id header and a
latency histogram. Everything else passes through to FastAPI. The FastAPI route below has the same behaviour (it calls the same
code) and documents the endpoint in OpenAPI.

Open to the storefront without a token: it is read-only and must answer on
every page render."""
from __future__ import annotations

import json
import time
from datetime import datetime
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import Histogram

from consultation_routing.domain.model import Consultation
from shared.contracts.routing import CHANNELS, ENTRY_POINTS, PHASES
from shared.auth import Policy
from shared.errors import ApiError
from shared.logging import new_correlation_id
from shared.one_write import ServiceApp

router = APIRouter(prefix="/v1", tags=["routing"])
# The storefront authenticates; operators may ask too (what-if checks with a time).
STOREFRONT = Policy("storefront", "platform_operator")
PATH = "/v1/route"

_CHANNELS = frozenset(CHANNELS)
_ENTRY_POINTS = frozenset(ENTRY_POINTS)
_PHASES = frozenset(PHASES)
_MAX = 100
_JSON = json.JSONEncoder(ensure_ascii=False)  # one encoder, not one per answer as json.dumps(ensure_ascii=False)


def parse_query(raw: str) -> dict[str, str]:
    """``dict(parse_qsl(raw))`` (blank values dropped, the last repeat wins), without
    percent-decoding the common case of a query that has nothing to decode."""
    q: dict[str, str] = {}
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        if not value:
            continue
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        q[name] = value
    return q


def _choice(q: dict, name: str, allowed: frozenset[str], default: str | None = None) -> str:
    v = q.get(name, default)
    if v not in allowed:
        raise ApiError(422, f"unknown_{name}", f"{name} must be one of {', '.join(sorted(allowed))}",
                       {"field": name, "value": v})
    return v


def _opt(q: dict, name: str) -> str | None:
    v = q.get(name) or None
    if v is not None and len(v) > _MAX:
        raise ApiError(422, "validation_error", f"{name} is longer than {_MAX} characters", {"field": name})
    return v


def _at(q: dict, now: datetime) -> datetime:
    raw = q.get("at")
    if not raw:
        return now
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "validation_error", "at must be an ISO 8601 time", {"field": "at"}) from None
    if at.tzinfo is None:
        raise ApiError(422, "validation_error", "at must carry a UTC offset", {"field": "at"})
    return at


def consultation_from_query(q: dict, now: datetime) -> Consultation:
    return Consultation(
        channel=_choice(q, "channel", _CHANNELS), entry_point=_choice(q, "entry_point", _ENTRY_POINTS),
        phase=_choice(q, "phase", _PHASES, "pre_sale"), at=_at(q, now),
        sku=_opt(q, "sku"), customer_id=_opt(q, "customer_id"), sales_order_id=_opt(q, "sales_order_id"),
        service_order_id=_opt(q, "service_order_id"),
    )


def answer_query(state, q: dict) -> bytes:
    """Decide and buffer the event; raises ApiError (422) only for bad input."""
    routing = state.routing
    c = consultation_from_query(q, state.runtime.clock.now())
    answer = routing.engine.route(c)
    routing.publisher.offer(c, answer)
    return _JSON.encode(answer).encode()


def _error_body(exc: ApiError) -> bytes:
    return json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
                      ensure_ascii=False).encode()


class RouteFastPath:
    """Pure ASGI: serves GET /v1/route without the FastAPI request machinery."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state
        self.latency = Histogram(
            "routing_route_seconds", "GET /v1/route latency inside the service",
            registry=state.runtime.metrics,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        cid = None
        for name, value in scope["headers"]:
            if name == b"x-correlation-id":
                cid = value[:100]
                break
        if cid is None:
            cid = new_correlation_id().encode()
        try:
            status, body = 200, answer_query(self.state, parse_query(scope["query_string"].decode("latin-1")))
        except ApiError as exc:
            status, body = exc.status, _error_body(exc)
        start_msg = {"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-correlation-id", cid)]}
        body_msg = {"type": "http.response.body", "body": body}
        # Under uvicorn, ServiceApp joins these two into one write (shared.one_write).
        await send(start_msg)
        await send(body_msg)
        self.latency.observe(time.perf_counter() - start)


class RoutingApp(ServiceApp):
    """The service's FastAPI app with GET /v1/route answered ahead of every middleware
    (Starlette's error middleware, FastAPI's telemetry and body limit, the request
    context middleware), which would cost the hot path more than the decision itself.
    The fast path catches every error itself, so those layers add nothing to it."""

    async def handle(self, scope, receive, send) -> None:
        await self.state.route_fast_path(scope, receive, send)


@router.get(
    "/route",
    summary="Route a consultation to the manufacturer's or the platform's queue",
    description="Query: channel (phone|im), entry_point, phase (pre_sale|after_sale, default pre_sale), "
                "sku, sales_order_id, service_order_id, customer_id, at (ISO time, default now). "
                "Answers target, reason, queue_id (IM), hotline + extension (phone), hover_text "
                "(product page, phone), decision_id and the fallback. Unknown channel, entry point or "
                "phase: 422. Served by RouteFastPath; this route documents it and behaves the same.",
)
async def route(request: Request, _p=Depends(STOREFRONT)) -> Response:
    body = answer_query(request.app.state, dict(request.query_params))
    return Response(body, media_type="application/json")
