"""Small pieces the routers share."""
from __future__ import annotations

from fastapi import Header, Request

from shared.auth import require_principal
from shared.errors import ApiError
from shared.runtime import Runtime

storefront = require_principal("storefront")
merchant = require_principal("merchant_main", "merchant_staff")
operator = require_principal("platform_operator")
arbitrator = require_principal("arbitrator")
platform = require_principal("platform_operator", "arbitrator")


async def if_match(if_match: str | None = Header(default=None, alias="If-Match",
                                           description="expected order version (optimistic concurrency)")) -> int | None:
    if if_match is None:
        return None
    try:
        return int(if_match.strip('"W/ '))
    except ValueError:
        raise ApiError(422, "bad_if_match", "If-Match must be the order version number") from None


def page(limit: int, offset: int) -> None:
    if not (1 <= limit <= 200) or offset < 0:
        raise ApiError(422, "bad_pagination", "limit must be 1..200 and offset >= 0")


async def get_runtime(request: Request) -> Runtime:
    """The service runtime (async, so FastAPI does not hop to a worker thread per request)."""
    return request.app.state.runtime
