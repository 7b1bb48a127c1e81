"""Bearer tokens every service can issue and check (HS256 JWT, ``settings.token_secret``).

The orders service runs the OAuth2 client-credentials endpoint that issues them;
any service verifies them with ``require_principal(*roles)``::

    @router.get("/x")
    async def x(p: Principal = Depends(require_principal("platform_operator"))): ...

401 ``unauthorized`` when the token is missing, malformed, forged or expired;
403 ``forbidden`` when the role is not among those allowed.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import jwt
from fastapi import Request

from shared.errors import ApiError

ROLES = ("storefront", "merchant_main", "merchant_staff", "platform_operator", "arbitrator")
ALGORITHM = "HS256"
ISSUER = "aftersales-platform"
DEFAULT_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    role: str
    subject: str  # the client id the token was issued to
    merchant_id: str | None = None
    customer_id: str | None = None  # storefront: set per request from X-Customer-Id
    permissions: frozenset[str] = field(default_factory=frozenset)  # staff: audit / process
    categories: frozenset[str] = field(default_factory=frozenset)  # staff: after-sales categories

    @property
    def is_merchant(self) -> bool:
        return self.role in ("merchant_main", "merchant_staff")

    @property
    def is_platform(self) -> bool:
        return self.role in ("platform_operator", "arbitrator")


def issue_token(principal: Principal, secret: str, *, now: datetime | None = None,
                ttl: timedelta = DEFAULT_TTL) -> str:
    now = now or datetime.now(timezone.utc)
    claims = {
        "iss": ISSUER,
        "sub": principal.subject,
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "role": principal.role,
        "mid": principal.merchant_id,
        "perm": sorted(principal.permissions),
        "cat": sorted(principal.categories),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# Tokens whose signature and claims were already checked: (secret, token) → (exp, principal).
# The signature check is a pure function of the token and the secret, so re-doing it on
# every request of a client that reuses its token is wasted work; the expiry is still
# checked against the clock on every use. Bounded: cleared when full.
_VERIFIED: dict[tuple[str, str], tuple[float, Principal]] = {}
_VERIFIED_MAX = 10_000


def verify_token(token: str, secret: str, *, now: datetime | None = None) -> Principal:
    """The principal a valid token stands for; ApiError 401 otherwise.

    ``now`` is the service's clock (a virtual clock in demos and tests), so tokens
    issued and checked on the same clock agree; by default the system time."""
    current = (now or datetime.now(timezone.utc)).timestamp()
    hit = _VERIFIED.get((secret, token))
    if hit is not None:
        if hit[0] <= current:
            raise ApiError(401, "unauthorized", "the token has expired")
        return hit[1]
    p, exp = _verify_uncached(token, secret, current)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(secret, token)] = (exp, p)
    return p


def _verify_uncached(token: str, secret: str, current: float) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"], "verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise ApiError(401, "unauthorized", "the token is invalid") from None
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= current:
        raise ApiError(401, "unauthorized", "the token has expired")
    role = claims.get("role")
    if role not in ROLES:
        raise ApiError(401, "unauthorized", "the token names no known role")
    return Principal(
        role=role,
        subject=str(claims["sub"]),
        merchant_id=claims.get("mid"),
        permissions=frozenset(claims.get("perm") or ()),
        categories=frozenset(claims.get("cat") or ()),
    ), float(claims["exp"])


def principal_from_request(request: Request, secret: str, now: datetime | None = None) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>' (POST /v1/oauth/token)")
    p = verify_token(token.strip(), secret, now=now)
    if p.role == "storefront":
        # The storefront back end acts for one customer per request.
        customer = request.headers.get("x-customer-id", "").strip()
        if customer:
            p = Principal(p.role, p.subject, customer_id=customer)
    return p


def require_principal(*roles: str):
    """FastAPI dependency factory: the caller's principal, restricted to ``roles`` (all when empty).

    The secret is read from ``request.app.state.runtime.settings.token_secret`` and the
    time from the runtime's clock."""

    async def dependency(request: Request) -> Principal:
        rt = request.app.state.runtime
        p = principal_from_request(request, rt.settings.token_secret, rt.clock.now())
        if roles and p.role not in roles:
            raise ApiError(403, "forbidden", f"role {p.role} may not call this endpoint")
        return p

    return dependency
