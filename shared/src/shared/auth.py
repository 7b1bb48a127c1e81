"""Bearer tokens every service can issue and check (HS256 JWT, ``settings.token_secret``),
and the access policy every route declares (default-deny, see ``shared.access``).

The orders service runs the OAuth2 client-credentials endpoint that issues them;
any service declares who may call a route with a ``Policy``::

    @router.get("/x")
    async def x(p: Principal = Depends(Policy("platform_operator"))): ...

401 ``unauthorized`` when the token is missing, malformed, forged, expired or revoked;
403 ``forbidden`` when the role (or the staff permission) is not among those allowed.
A route without a policy is refused at start-up (``shared.access.enforce``).
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
    version: int | None = None  # the account's version when the token was issued (revocation)

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
    if principal.version is not None:
        claims["ver"] = principal.version
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
        version=claims.get("ver") if isinstance(claims.get("ver"), int) else None,
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
            if len(customer) > 100 or not customer.isprintable():
                raise ApiError(422, "validation_error", "X-Customer-Id must be 1-100 printable characters",
                               {"field": "X-Customer-Id"})
            p = Principal(p.role, p.subject, customer_id=customer)
    return p


class Policy:
    """Who may call a route: a FastAPI dependency that answers the caller's principal.

    ``roles``: the principal kinds allowed (empty: any authenticated caller).
    ``permission``: staff sub-accounts also need this permission (``audit`` / ``process``);
    main accounts and platform roles are not restricted by it.
    ``customer``: the storefront must name the customer (``X-Customer-Id``).
    ``scope``: a short note on the ownership check the handler makes (documented in
    OpenAPI as ``x-policy.scope``: e.g. "the order's merchant").

    ``Policy.public(reason)`` marks one of the few anonymous routes (health, readiness,
    the token endpoint); it answers ``None``.

    Every token check also asks the runtime's account guard (``runtime.account_guard``,
    when present) whether the account behind the token was deactivated or changed since
    the token was issued: revocation takes effect on the next request."""

    def __init__(self, *roles: str, permission: str | None = None, customer: bool = False,
                 scope: str | None = None, public: str | None = None, webhook: str | None = None) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles in policy: {sorted(unknown)}")
        self.roles = frozenset(roles)
        self.permission = permission
        self.customer = customer
        self.scope = scope
        self.public_reason = public
        self.webhook = webhook

    @classmethod
    def public(cls, reason: str) -> "Policy":
        """One of the anonymous routes: health, readiness, the token endpoint."""
        return cls(public=reason)

    @classmethod
    def signed_webhook(cls, sender: str) -> "Policy":
        """A callback from an outside system that cannot hold a bearer token: the route
        itself verifies the request's signature and answers 401 without a valid one."""
        return cls(webhook=sender)

    @property
    def is_public(self) -> bool:
        return self.public_reason is not None

    def describe(self) -> dict:
        """The policy as documented in OpenAPI (``x-policy``) and read by the access-matrix test."""
        if self.is_public:
            return {"public": True, "reason": self.public_reason}
        if self.webhook:
            return {"public": False, "webhook": self.webhook, "auth": "signature"}
        out: dict = {"public": False, "roles": sorted(self.roles or ROLES)}
        if self.permission:
            out["permission"] = self.permission
        if self.customer:
            out["customer"] = True
        if self.scope:
            out["scope"] = self.scope
        return out

    def check(self, request: Request) -> Principal | None:
        """The principal for this request, or ApiError 401/403/422."""
        if self.is_public or self.webhook:
            return None
        rt = request.app.state.runtime
        p = principal_from_request(request, rt.settings.token_secret, rt.clock.now())
        guard = getattr(rt, "account_guard", None)
        if guard is not None and p.role != "storefront":
            guard.check(p)
        if self.roles and p.role not in self.roles:
            raise ApiError(403, "forbidden", f"role {p.role} may not call this endpoint")
        if p.is_merchant and not p.merchant_id:
            # fail closed: a merchant token that names no merchant sees nothing
            raise ApiError(401, "unauthorized", "the token names no merchant")
        if self.permission and p.role == "merchant_staff" and self.permission not in p.permissions:
            raise ApiError(403, "forbidden", f"this staff account lacks the {self.permission!r} permission")
        if self.customer and p.role == "storefront" and not p.customer_id:
            raise ApiError(422, "customer_required", "send X-Customer-Id: the customer this request acts for")
        return p

    async def __call__(self, request: Request) -> Principal | None:
        return self.check(request)

    def __repr__(self) -> str:
        return f"Policy({self.describe()})"


def require_principal(*roles: str, **kw) -> Policy:
    """Shorthand kept for the routers: ``Policy(*roles)``."""
    return Policy(*roles, **kw)


def with_policy(dependency, policy: Policy):
    """Mark a dependency, or a route's endpoint, that checks ``policy`` itself (by calling
    it), so the start-up check and the OpenAPI document see the policy without FastAPI
    solving it (twice, or at all)."""
    dependency.__policy__ = policy
    return dependency
