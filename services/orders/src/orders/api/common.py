"""Small pieces the routers share."""
from __future__ import annotations

from fastapi import Header, Request

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


def page(limit: int, offset: int) -> None:
    if not (1 <= limit <= 200) or offset < 0:
        raise ApiError(422, "bad_pagination", "limit must be 1..200 and offset >= 0")


async def get_runtime(request: Request) -> Runtime:
    """The service runtime (async, so FastAPI does not hop to a worker thread per request)."""
    return request.app.state.runtime
