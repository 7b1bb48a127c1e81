"""Small pieces the routers share: the caller dependencies, bounded parameters (every
query and path parameter is bounded: out of range is a 422 ``validation_error``, never a
database error), and the download header of attachment names."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import quote

from fastapi import Header, Path, Query, Request
from pydantic import AfterValidator

from shared.auth import Principal, require_principal, with_policy
from shared.errors import ApiError
from shared.runtime import Runtime

storefront = require_principal("storefront")
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


def action_context(principal, *, customer: bool = False):
    """ONE dependency for an order action: (runtime, principal, If-Match version).

    The same checks, in the same order, as separate ``get_runtime`` / principal /
    If-Match dependencies would make, but FastAPI resolves one dependant per request instead of
    four or five (each costs a sub-solve, a scratch response and cache-key work on the
    hottest endpoints). ``principal`` is a ``require_principal(...)`` dependency;
    ``customer``: the storefront acts for a customer, ``X-Customer-Id`` is required."""

    async def dependency(request: Request,
                         if_match: str | None = Header(default=None, alias="If-Match",
                                                       description="expected order version (optimistic concurrency)"),
                         ) -> tuple[Runtime, Principal, int | None]:
        p = await principal(request)
        if customer and not p.customer_id:
            raise ApiError(422, "customer_required", "send X-Customer-Id: the customer this request acts for")
        return request.app.state.runtime, p, _version(if_match)

    return with_policy(dependency, principal)


def caller_context(principal, *, customer: bool = False):
    """Like ``action_context`` without If-Match: (runtime, principal)."""

    async def dependency(request: Request) -> tuple[Runtime, Principal]:
        p = await principal(request)
        if customer and not p.customer_id:
            raise ApiError(422, "customer_required", "send X-Customer-Id: the customer this request acts for")
        return request.app.state.runtime, p

    return with_policy(dependency, principal)


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
