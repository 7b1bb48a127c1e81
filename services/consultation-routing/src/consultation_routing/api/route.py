"""GET /v1/route — the storefront's hot path (docs/routing.md, "The question").

Who may ask, and what it records (docs/routing.md, "Who may ask"):
- the storefront (its own client-credentials token) and platform operators;
- the consultation's time is the server's clock; only the storefront's calls are
  consultations. An operator's call is a what-if (at ``at``, or now): answered, never
  published (no billable consultation, no score input); a storefront sending ``at``
  gets 403;
- ``consultation_id`` names the consultation: every call for it gets the same
  decision id, so it is billed (and scored) once.

An ordinary FastAPI route, kept cheap with FastAPI's public means (benchmarks/README.md,
"Consultation routing"): FastAPI's per-request work for declared parameters and
dependencies costs more than the decision itself, so

- the query is read by ``RouteQuery`` in one pydantic call from the parameters Starlette
  parsed, not declared as nine parameters; ``RouteQuery`` documents them (``openapi_extra``);
- the route is a ``shared.request_route.RequestRoute`` (FastAPI's documented route-class
  hook): its endpoint takes the Request and answers a Response, with nothing for FastAPI to
  solve, wrap or serialize in between;
- it checks its policy itself (``with_policy`` marks it, so the start-up check and the
  OpenAPI document see it), rather than as a dependency FastAPI solves;
- the answer is encoded by msgspec in ``AnswerJSON`` and not validated again against
  ``RouteAnswer``, which documents it (the tests check answers against it)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Literal, Mapping
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from consultation_routing.api.schemas import RouteAnswer
from consultation_routing.parts import routing_of
from consultation_routing.domain.model import Consultation
from consultation_routing.handlers.route import route_consultation
from shared.auth import Policy, Principal, with_policy
from shared.contracts.routing import CHANNELS, ENTRY_POINTS, PHASES
from shared.errors import ApiError
from shared.request_route import RequestRoute

router = APIRouter(prefix="/v1", tags=["routing"])
# The storefront authenticates; operators may ask too (what-if checks with a time).
STOREFRONT = Policy("storefront", "platform_operator")

_MAX = 100  # ids: sku, customer, orders, consultation
_MAX_AT = 64  # an ISO 8601 time with offset is ~32 characters
# How far from the server's clock an operator's what-if may look: a year either way (next
# year's holidays, last year's incidents), and far from the ends of the calendar (year 1 or
# 9999 with an offset overflows when converted to Beijing time).
WHAT_IF_RANGE = timedelta(days=366)
_CHOICES = ("channel", "entry_point", "phase")


def _id(description: str | None = None):
    return Field(None, min_length=1, max_length=_MAX, description=description)


class RouteQuery(BaseModel):
    """The query of GET /v1/route (unknown parameters are ignored, blank ones are absent)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: Literal[CHANNELS]  # type: ignore[valid-type]
    entry_point: Literal[ENTRY_POINTS]  # type: ignore[valid-type]
    phase: Literal[PHASES] = "pre_sale"  # type: ignore[valid-type]
    sku: str | None = _id()
    sales_order_id: str | None = _id("routes by its latest service order's SKU when no known SKU is given")
    service_order_id: str | None = _id("routes by its SKU when no known SKU is given")
    customer_id: str | None = _id("the customer (or send X-Customer-Id)")
    consultation_id: str | None = _id("the storefront's id of this consultation")
    at: str | None = Field(None, max_length=_MAX_AT, json_schema_extra={"format": "date-time"},
                           description="platform operators only: a what-if time (ISO 8601 with offset)")


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    """The model's fields as OpenAPI query parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        param = {"name": name, "in": "query", "required": name in required,
                 "schema": {k: v for k, v in prop.items() if k != "description"}}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def query_values(raw: bytes) -> dict[str, str]:
    """The query string's parameters, the last of a repeated one, blank ones left out: what
    ``urllib.parse.parse_qsl`` reads (as Starlette's ``QueryParams``). A query with nothing
    escaped (``%``, ``+``), the storefront's usual one, is split directly: the same result
    without unquoting each part."""
    qs = raw.decode("latin-1")
    if "%" in qs or "+" in qs:
        return {k: v for k, v in parse_qsl(qs) if v}
    out = {}
    for part in qs.split("&"):
        k, _, v = part.partition("=")
        if v:
            out[k] = v
    return out


def read_query(params: Mapping[str, str]) -> RouteQuery:
    """The query's parameters (see ``query_values``) as a ``RouteQuery``, or ApiError 422
    (``unknown_<name>`` for a channel, entry point or phase outside its values,
    ``validation_error`` otherwise). A blank parameter counts as absent."""
    try:
        return RouteQuery.model_validate(params)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = str(error["loc"][0]) if error["loc"] else "query"
        if name in _CHOICES:
            value = error.get("input") if error["type"] != "missing" else None
            allowed = {"channel": CHANNELS, "entry_point": ENTRY_POINTS, "phase": PHASES}[name]
            raise ApiError(422, f"unknown_{name}", f"{name} must be one of {', '.join(sorted(allowed))}",
                           {"field": name, "value": value if value is None or len(value) <= _MAX
                            else value[:_MAX] + "…"}) from None
        raise ApiError(422, "validation_error", f"{name}: {error['msg']}", {"field": name}) from None


def _what_if_at(raw: str, now: datetime) -> datetime:
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


def consultation_of(q: RouteQuery, now: datetime, principal: Principal) -> Consultation:
    """The consultation the query describes; ``at`` only from a platform operator."""
    if q.at is not None and principal.role != "platform_operator":
        raise ApiError(403, "what_if_operators_only",
                       "at (a what-if time) is for platform operators; a consultation takes the server's "
                       "clock: leave at out", {"field": "at"})
    customer = q.customer_id
    if principal.customer_id is not None:
        if customer is not None and customer != principal.customer_id:
            raise ApiError(422, "customer_mismatch", "customer_id differs from X-Customer-Id",
                           {"field": "customer_id"})
        customer = principal.customer_id
    return Consultation(
        channel=q.channel, entry_point=q.entry_point, phase=q.phase,
        at=now if q.at is None else _what_if_at(q.at, now),
        sku=q.sku, customer_id=customer, sales_order_id=q.sales_order_id, service_order_id=q.service_order_id,
        # qualified by the calling client: one client cannot name (and bill) another's consultations
        consultation_id=None if q.consultation_id is None else f"{principal.subject}/{q.consultation_id}",
    )


class AnswerJSON(JSONResponse):
    """The engine's answer as JSON (UTF-8, compact), encoded by msgspec (a JSONResponse, so
    the OpenAPI document shows the route's response model)."""

    encode = msgspec.json.Encoder().encode

    def render(self, content) -> bytes:
        return self.encode(content)


async def route(request: Request) -> AnswerJSON:
    started = time.perf_counter()
    principal = STOREFRONT.check(request)  # first: bad parameters without a token are 401
    rt = request.app.state.runtime
    routing = routing_of(rt)
    c = consultation_of(read_query(query_values(request.scope["query_string"])), rt.clock.now(), principal)
    answer = await route_consultation(routing, c, what_if=principal.role != "storefront")
    routing.metrics.route.observe(time.perf_counter() - started)
    return AnswerJSON(answer)


router.add_api_route(
    "/route", with_policy(route, STOREFRONT), methods=["GET"], route_class_override=RequestRoute,
    summary="Route a consultation to the manufacturer's or the platform's queue",
    description="For the storefront (its own token) and platform operators. The consultation's time is the "
                "server's clock; only the storefront's calls are recorded as consultations. Answers target, "
                "reason, queue_id (IM), hotline + extension (phone), hover_text (product page, phone), "
                "decision_id and the fallback. Without a SKU routing knows, the SKU of `service_order_id` (else "
                "of `sales_order_id`: its latest service order) decides. `consultation_id` names the consultation: "
                "every call for it answers the same decision_id and it is billed once. `at` is for platform "
                "operators only (within a year of the server's time): an operator's call is a what-if, answered and "
                "not recorded (no billable consultation, no score input; `what_if: true`); a storefront sending "
                "`at` gets 403. Unknown channel, entry point or phase (422 `unknown_<name>`), ids over 100 "
                "characters, a bad or out-of-range `at`: 422.",
    response_model=RouteAnswer,  # documents the answer; AnswerJSON is sent as it is
    response_class=AnswerJSON,
    openapi_extra={"parameters": _query_parameters(RouteQuery)},
)
