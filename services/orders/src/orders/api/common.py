"""Small pieces the routers share: the caller dependencies, bounded parameters (every
query and path parameter is bounded: out of range is a 422 ``validation_error``, never a
database error), and the download header of attachment names."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field, TypeAdapter

from shared.auth import require_principal, with_policy
from shared.errors import ApiError
from shared.request_route import RequestRoute, json_body_openapi, read_json_body, read_path_value
from shared.runtime import Runtime

# (the storefront's routes: ``api/storefront.py::for_customer``)
merchant = require_principal("merchant_main", "merchant_staff")
operator = require_principal("platform_operator")
arbitrator = require_principal("arbitrator")
platform = require_principal("platform_operator", "arbitrator")


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    try:
        return int(if_match.strip('"W/ '))
    except ValueError:
        raise ApiError(422, "bad_if_match", "If-Match must be the order version number") from None


# --- order actions: POST .../service-orders/{order_id}/<action> ---------------------------------

IF_MATCH_DESCRIPTION = "expected order version (optimistic concurrency)"


def add_action_route(router: APIRouter, path: str, principal, model, run, **documented) -> None:
    """``POST {path}`` (with ``{order_id}``): an order action, the route the storefront's and
    back offices' traffic is mostly made of. A ``shared.request_route.RequestRoute``: the
    request goes from the router to this endpoint, which does in one place what FastAPI's
    dependency solving and body validation did for it, in the same order and with the same
    answers — the caller (``principal``, its policy: role, permission, ``X-Customer-Id``), If-Match,
    then the order id and the JSON body (every invalid part in one 422 ``validation_error``).
    ``run(rt, p, order_id, body, version)`` performs the action and answers the JSON-ready
    dict; ``documented``: the route's summary, name, response model."""

    async def endpoint(request: Request) -> JSONResponse:
        p = principal.check(request)
        version = _version(request.headers.get("if-match"))
        errors: list[dict] = []
        order_id = read_path_value(request, "order_id", _ORDER_ID, errors)
        body = await read_json_body(request, model, errors)
        if errors:
            raise RequestValidationError(errors)
        return JSONResponse(await run(request.app.state.runtime, p, order_id, body, version))

    router.add_api_route(
        path, with_policy(endpoint, principal), methods=["POST"], route_class_override=RequestRoute,
        response_class=JSONResponse,
        openapi_extra={"parameters": [ORDER_ID_PARAMETER, IF_MATCH_PARAMETER], "requestBody": json_body_openapi(model)},
        **documented)


MAX_LIMIT = 200
MAX_OFFSET = 1_000_000  # deeper pages are refused, not handed to the database

# Ids (orders, attachments, merchants, staff, client ids): what the service ever creates.
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# Free filter text: no control characters (C0, DEL, C1), which no stored value holds and
# PostgreSQL refuses (NUL) with an error.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)

OrderId = Annotated[str, Path(description="service order id", pattern=ID_PATTERN, max_length=64)]
_ORDER_ID = TypeAdapter(Annotated[str, Field(pattern=ID_PATTERN, max_length=64)])
ORDER_ID_PARAMETER = {"name": "order_id", "in": "path", "required": True, "description": "service order id",
                      "schema": {"type": "string", "maxLength": 64, "pattern": ID_PATTERN,
                                 "description": "service order id", "title": "Order Id"}}
IF_MATCH_PARAMETER = {"name": "If-Match", "in": "header", "required": False, "description": IF_MATCH_DESCRIPTION,
                      "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": IF_MATCH_DESCRIPTION,
                                 "title": "If-Match"}}
AttachmentId = Annotated[str, Path(description="attachment id", pattern=ID_PATTERN, max_length=64)]
MerchantId = Annotated[str, Path(description="merchant id", pattern=ID_PATTERN, max_length=64)]
StaffId = Annotated[str, Path(description="staff id (<merchant>.<login>)", pattern=ID_PATTERN, max_length=64)]


def text_filter(description: str, max_length: int = 64):
    """An optional exact-match filter of at most ``max_length`` printable characters."""
    return Annotated[str | None, Query(description=description, min_length=1, max_length=max_length,
                                       pattern=TEXT_PATTERN)]


def _instant(v: datetime | None) -> datetime | None:
    if v is None:
        return v
    if v.tzinfo is None:
        raise ValueError("needs a timezone offset (e.g. 2026-03-02T10:00:00+08:00)")
    if not (EARLIEST <= v < LATEST):
        raise ValueError("must be from 2000-01-01 to 2099-12-31")
    return v


def instant_filter(description: str):
    """An optional instant with its offset, 2000-01-01 ≤ t < 2100-01-01."""
    return Annotated[datetime | None, Query(description=description), AfterValidator(_instant)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page(limit: int = Query(20, ge=1, le=MAX_LIMIT, description="page size"),
               offset: int = Query(0, ge=0, le=MAX_OFFSET, description="items to skip")) -> Page:
    """The pagination every list takes (``Depends(page)``)."""
    return Page(limit, offset)


def content_disposition(filename: str) -> str:
    """``attachment`` with the name as stored, for any name (RFC 6266 / RFC 8187): an ASCII
    fallback in ``filename`` (quotes, backslashes, control and non-ASCII characters replaced)
    and the exact name, UTF-8 percent-encoded, in ``filename*``. Nothing of the name can end
    the header or add a parameter."""
    fallback = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\' else "_"
        for ch in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(ch)  # é → e; 发 → _
    ).strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def get_runtime(request: Request) -> Runtime:
    """The service runtime (async, so FastAPI does not hop to a worker thread per request)."""
    return request.app.state.runtime
