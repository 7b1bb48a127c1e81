"""GET /v1/route — the storefront's hot path.

Served by ``RouteFastPath``, a pure ASGI layer in front of the whole FastAPI
stack (``RoutingApp`` calls it before any middleware): it checks the caller's
token with the route's policy (``STOREFRONT.check``, the same function FastAPI's
dependency runs; verified tokens are cached in shared.auth), parses the query by
hand, decides from memory, hands the decision to the publisher's buffer (no I/O)
and writes the JSON answer itself, keeping the correlation-id header and a
latency histogram. Everything else passes through to FastAPI. The FastAPI route
below has the same behaviour (it calls the same code) and documents the endpoint
in OpenAPI.

Who may ask, and what it records (README "Routing rules"):
- the storefront (its own client-credentials token) and platform operators;
- the consultation's time is the server's clock; only the storefront's calls are
  consultations. An operator's call is a what-if (at ``at``, or now): answered, never
  published (no billable consultation, no score input); a storefront sending ``at``
  gets 403;
- ``consultation_id`` names the consultation: every call for it gets the same
  decision id, so it is billed (and scored) once."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import Histogram
from starlette.requests import Request as StarletteRequest

from consultation_routing.api.schemas import RouteAnswer
from consultation_routing.domain.model import Consultation
from shared.auth import Policy, Principal
from shared.contracts.routing import CHANNELS, ENTRY_POINTS, PHASES
from shared.errors import ApiError, error_body
from shared.logging import new_correlation_id
from shared.one_write import ServiceApp

router = APIRouter(prefix="/v1", tags=["routing"])
# The storefront authenticates; operators may ask too (what-if checks with a time).
STOREFRONT = Policy("storefront", "platform_operator")
PATH = "/v1/route"

_CHANNELS = frozenset(CHANNELS)
_ENTRY_POINTS = frozenset(ENTRY_POINTS)
_PHASES = frozenset(PHASES)
_MAX = 100  # ids: sku, customer, orders, consultation
_MAX_AT = 64  # an ISO 8601 time with offset is ~32 characters
# How far from the server's clock an operator's what-if may look: a year either way (next
# year's holidays, last year's incidents), and far from the ends of the calendar (year 1 or
# 9999 with an offset overflows when converted to Beijing time).
WHAT_IF_RANGE = timedelta(days=366)
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
                       {"field": name, "value": v if v is None or len(v) <= _MAX else v[:_MAX] + "…"})
    return v


def _opt(q: dict, name: str) -> str | None:
    v = q.get(name)
    if v is not None and len(v) > _MAX:
        raise ApiError(422, "validation_error", f"{name} is longer than {_MAX} characters", {"field": name})
    return v


def _what_if_at(raw: str, now: datetime) -> datetime:
    if len(raw) > _MAX_AT:
        raise ApiError(422, "validation_error", f"at is longer than {_MAX_AT} characters", {"field": "at"})
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "validation_error", "at must be an ISO 8601 time", {"field": "at"}) from None
    if at.tzinfo is None:
        raise ApiError(422, "validation_error", "at must carry a UTC offset", {"field": "at"})
    if not now - WHAT_IF_RANGE <= at <= now + WHAT_IF_RANGE:
        raise ApiError(422, "at_out_of_range", f"at must be within {WHAT_IF_RANGE.days} days of the server's "
                       f"time ({now.isoformat()})", {"field": "at"})
    return at


def consultation_from_query(q: dict, now: datetime, principal: Principal) -> Consultation:
    """The consultation the query describes; ``at`` only from a platform operator."""
    raw_at = q.get("at")
    if raw_at is not None and principal.role != "platform_operator":
        raise ApiError(403, "what_if_operators_only",
                       "at (a what-if time) is for platform operators; a consultation takes the server's "
                       "clock: leave at out", {"field": "at"})
    customer = _opt(q, "customer_id")
    if principal.customer_id is not None:
        if customer is not None and customer != principal.customer_id:
            raise ApiError(422, "customer_mismatch", "customer_id differs from X-Customer-Id",
                           {"field": "customer_id"})
        customer = principal.customer_id
    named = _opt(q, "consultation_id")
    c = Consultation(
        channel=_choice(q, "channel", _CHANNELS), entry_point=_choice(q, "entry_point", _ENTRY_POINTS),
        phase=_choice(q, "phase", _PHASES, "pre_sale"),
        at=now if raw_at is None else _what_if_at(raw_at, now),
        sku=_opt(q, "sku"), customer_id=customer, sales_order_id=_opt(q, "sales_order_id"),
        service_order_id=_opt(q, "service_order_id"),
        # qualified by the calling client: one client cannot name (and bill) another's consultations
        consultation_id=None if named is None else f"{principal.subject}/{named}",
    )
    return c


async def answer_query(state, q: dict, principal: Principal) -> bytes:
    """Decide and, for the storefront, buffer the events; raises ApiError (422/403) only
    for bad input. Consultations come from the storefront: an operator's call (with or
    without ``at``) is a what-if, answered only — no event, so no billable consultation
    and no score input. A billable decision is answered once it is durable (journaled
    and fsynced, see publisher.py)."""
    routing = state.routing
    c = routing.engine.resolve(consultation_from_query(q, state.runtime.clock.now(), principal))
    answer = routing.engine.route(c)
    what_if = answer["what_if"] = principal.role != "storefront"
    if not what_if:
        durable = routing.publisher.offer(c, answer)
        if durable is not None:
            await durable
    return _JSON.encode(answer).encode()


def _error_body(exc: ApiError) -> bytes:
    return json.dumps(error_body(exc.code, exc.message, exc.details), ensure_ascii=False).encode()


class RouteFastPath:
    """Pure ASGI: serves GET /v1/route without the FastAPI request machinery."""

    def __init__(self, app, owner) -> None:
        self.app = app  # the rest of the stack
        self.owner = owner  # the FastAPI app: the policy reads its runtime (secret, clock, account guard)
        self.state = owner.state
        self.latency = Histogram(
            "routing_route_seconds", "GET /v1/route latency inside the service",
            registry=self.state.runtime.metrics,
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
        scope["app"] = self.owner  # what Starlette sets before its middleware: the policy reads it
        try:
            # the route's own policy, the same check FastAPI's dependency makes: 401 / 403
            principal = STOREFRONT.check(StarletteRequest(scope))
            status, body = 200, await answer_query(self.state, parse_query(scope["query_string"].decode("latin-1")),
                                             principal)
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


_Id = dict(min_length=1, max_length=_MAX)


@router.get(
    "/route",
    summary="Route a consultation to the manufacturer's or the platform's queue",
    description="For the storefront (its own token) and platform operators. The consultation's time is the "
                "server's clock; only the storefront's calls are recorded as consultations. Answers target, "
                "reason, queue_id (IM), hotline + extension (phone), hover_text (product page, phone), "
                "decision_id and the fallback. Without a SKU routing knows, the SKU of `service_order_id` (else "
                "of `sales_order_id`: its latest service order) decides. `consultation_id` names the consultation: every call for it "
                "answers the same decision_id and it is billed once. `at` is for platform operators only "
                "(within a year of the server's time): an operator's call is a what-if, answered and not "
                "recorded (no billable consultation, no score input; `what_if: true`); a storefront sending "
                "`at` gets 403. Unknown channel, entry point or phase, ids over 100 characters, a bad or "
                "out-of-range `at`: 422. Served by RouteFastPath; this route documents it and behaves the same.",
    response_model=RouteAnswer,  # documents the answer; the Response below is sent as is
)
async def route(
    request: Request,
    channel: Literal["phone", "im"] = Query(),
    entry_point: Literal[ENTRY_POINTS] = Query(),  # type: ignore[valid-type]
    phase: Literal["pre_sale", "after_sale"] = Query("pre_sale"),
    sku: str | None = Query(None, **_Id),
    sales_order_id: str | None = Query(None, **_Id, description="routes by its latest service order's SKU "
                                       "when no known SKU is given"),
    service_order_id: str | None = Query(None, **_Id, description="routes by its SKU when no known SKU is given"),
    customer_id: str | None = Query(None, **_Id, description="the customer (or send X-Customer-Id)"),
    consultation_id: str | None = Query(None, **_Id, description="the storefront's id of this consultation"),
    at: datetime | None = Query(None, description="platform operators only: a what-if time (ISO 8601 with offset)"),
    principal: Principal = Depends(STOREFRONT),
) -> Response:
    body = await answer_query(request.app.state, parse_query(request.scope["query_string"].decode("latin-1")), principal)
    return Response(body, media_type="application/json")
