"""The access matrix: every operation of every service's live OpenAPI document × every
kind of caller, with the answer each must get, read from the operation's ``x-policy``.

Rules (a violation names the cell):
- a signed webhook answers 401 to every caller (no signature; bearer tokens do not count);
- a public operation never answers 5xx;
- no token and every forged token (``alg=none``, wrong key, tampered payload, expired) → 401;
- a role outside ``x-policy.roles`` → 403; a staff account lacking ``x-policy.permission`` → 403;
- a merchant token naming no merchant → 401 where merchants may call (fail closed);
- the other merchant / the other customer on merchant A's / customer 1's objects → 403 or 404;
- every allowed caller → neither 401 nor 403 (a 4xx from validation or a 404 is fine);
- never a 5xx.

Requests carry a body the route's model refuses (the JSON string ``"x"``): the access
decision comes before body validation, so allowed callers get 422 and nothing changes
state, except for the ownership probes, which send a valid body (they must be refused
before the handler changes anything)."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from shared.auth import ISSUER, Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET
from tests.security.platform import CUSTOMER_1, CUSTOMER_2, MANUFACTURER, MERCHANT_A, Platform, monday

# The callers of the matrix, in the order they are reported.
PRINCIPALS = (
    "anonymous", "forged_alg_none", "forged_wrong_key", "forged_tampered", "expired",
    "storefront_no_customer", "storefront_customer_1", "storefront_customer_2",
    "merchant_a", "merchant_b", "merchant_without_id", "staff_without_permission", "staff_with_permission",
    "arbitrator", "operator",
)
UNAUTHENTICATED = {"anonymous", "forged_alg_none", "forged_wrong_key", "forged_tampered", "expired"}
ROLE_OF = {
    "storefront_no_customer": "storefront", "storefront_customer_1": "storefront",
    "storefront_customer_2": "storefront", "merchant_a": "merchant_main", "merchant_b": "merchant_main",
    "merchant_without_id": "merchant_main",
    "staff_without_permission": "merchant_staff", "staff_with_permission": "merchant_staff",
    "arbitrator": "arbitrator", "operator": "platform_operator",
}
# Path parameters naming objects that belong to merchant A (and, for orders, customer 1):
# the other merchant / the other customer must be refused on them.
OWNED_BY_MERCHANT_A = {"order_id", "staff_id", "merchant_id", "att_id"}
OWNED_BY_CUSTOMER_1 = {"order_id", "message_id"}

# The only anonymous operations, and the only signed webhook (docs/security.md: every endpoint has an owner).
PUBLIC_OPERATIONS = {("GET", "/health"), ("GET", "/ready"), ("POST", "/v1/oauth/token")}
WEBHOOK_OPERATIONS = {("POST", "/v1/sms/receipts")}


def _b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged_tokens(platform: Platform) -> dict[str, str]:
    """Tokens an attacker can make, each claiming the most powerful role."""
    now = datetime.now(timezone.utc)
    claims = {"iss": ISSUER, "sub": "attacker", "jti": "x", "iat": int(now.timestamp()),
              "exp": int((now + timedelta(minutes=10)).timestamp()), "role": "platform_operator",
              "mid": None, "perm": [], "cat": []}
    header, payload, signature = platform.tokens["storefront"].split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered["role"] = "platform_operator"  # a real storefront token promoted, signature kept
    return {
        "forged_alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "forged_wrong_key": issue_token(Principal("platform_operator", "attacker"), DEV_TOKEN_SECRET),
        "forged_tampered": f"{header}.{_b64(tampered)}.{signature}",
        "expired": issue_token(Principal("platform_operator", "sec-operator"), platform.secret,
                               now=now - timedelta(hours=2), ttl=timedelta(minutes=15)),
    }


def principal_headers(platform: Platform, permission: str | None) -> dict[str, dict]:
    """Headers of every caller; the staff pair depends on the operation's permission."""
    forged = forged_tokens(platform)
    without = "staff_auditor" if permission != "audit" else "staff_processor"
    h = {
        "anonymous": {},
        **{name: {"Authorization": f"Bearer {tok}"} for name, tok in forged.items()},
        "storefront_no_customer": platform.auth("storefront"),
        "storefront_customer_1": platform.auth("storefront", CUSTOMER_1),
        "storefront_customer_2": platform.auth("storefront", CUSTOMER_2),
        "merchant_a": platform.auth("merchant_a"),
        "merchant_b": platform.auth("merchant_b"),
        # a main-account token naming no merchant (no client has one: signed with the secret)
        "merchant_without_id": platform.sign(Principal("merchant_main", "sec-no-merchant")),
        "staff_without_permission": platform.auth(without),
        "staff_with_permission": platform.auth("staff_all"),
        "arbitrator": platform.auth("arbitrator"),
        "operator": platform.auth("operator"),
    }
    assert set(h) == set(PRINCIPALS)
    return h


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    spec: dict
    components: dict

    @property
    def policy(self) -> dict | None:
        return self.spec.get("x-policy")

    @property
    def label(self) -> str:
        return f"{self.service} {self.method} {self.path}"

    def params(self, where: str) -> list[dict]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]


def live_operations(platform: Platform) -> list[Operation]:
    """Every operation of every service, from its live ``/openapi.json``."""
    ops = []
    for service, base in platform.urls.items():
        doc = httpx.get(base + "/openapi.json", timeout=30).raise_for_status().json()
        for path, item in doc.get("paths", {}).items():
            for method, spec in item.items():
                if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    ops.append(Operation(service, method.upper(), path, spec, doc.get("components", {})))
    return ops


def path_values(platform: Platform) -> dict[str, str]:
    today = (datetime.now(timezone.utc) + timedelta(hours=8)).date()
    return {
        "order_id": platform.ids["order_a"], "att_id": platform.ids["att_a"], "staff_id": platform.ids["staff_auditor"],
        "merchant_id": MERCHANT_A, "manufacturer_id": MANUFACTURER, "week": monday(), "period": today.strftime("%Y-%m"),
        "rule": "auto_refund", "scope": "merchant", "scope_id": MERCHANT_A, "day": today.isoformat(),
        "key": platform.ids.get("template_key", "order_created"), "message_id": platform.ids["message_c1"],
    }


def query_values() -> dict[str, str]:
    today = (datetime.now(timezone.utc) + timedelta(hours=8)).date()
    return {"week": monday(), "from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat(),
            "date": today.isoformat(), "channel": "im", "entry_point": "product_page", "n": "1", "hours": "1",
            "start": datetime.now(timezone.utc).isoformat(), "month": today.strftime("%Y-%m")}


# ------------------------------------------------------------------ a minimal valid body for a schema
_STRING_CANDIDATES = ("x", "1", "sec-x", "2026-01-02", "13800138000", "400-000-1234", "00:00", "ABC123")


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = components.get("schemas", {})[name]
    return schema


def minimal(schema: dict, components: dict, depth: int = 0) -> Any:
    """A small instance of ``schema`` (required properties only), good enough for the
    ownership probes to pass validation on most routes."""
    schema = _resolve(schema, components)
    if depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, components).get("type") != "null"] or schema[key]
            return minimal(options[0], components, depth + 1)
    if "default" in schema and schema.get("type") not in ("object",):
        return schema["default"]
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal(props[k], components, depth + 1) for k in schema.get("required", []) if k in props}
    if t == "array":
        item = minimal(schema.get("items", {}), components, depth + 1)
        return [item] * max(schema.get("minItems", 0), 0)
    if t == "integer":
        return int(max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1))
    if t == "number":
        return float(max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1))
    if t == "boolean":
        return False
    if t == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return datetime.now(timezone.utc).isoformat()
        if fmt == "date":
            return "2026-01-02"
        lo, pattern = schema.get("minLength", 1), schema.get("pattern")
        for cand in _STRING_CANDIDATES:
            v = cand * max(1, -(-lo // len(cand)))
            if pattern is None or re.search(pattern, v):
                return v[: schema.get("maxLength", len(v))] if len(v) >= lo else v
        return "x" * lo
    return None


def body_schema(op: Operation) -> dict | None:
    content = op.spec.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    return media.get("schema") if media else None


# --------------------------------------------------------------------------------- the matrix
@dataclass
class Cell:
    op: Operation
    principal: str
    status: int
    expected: str
    ok: bool
    detail: str = ""


def expected_for(op: Operation, principal: str) -> tuple[str, Any]:
    """(description, predicate on (status, body text)) for one cell."""
    policy = op.policy or {}
    not_5xx = ("not 5xx", lambda s, _t: s < 500)
    if policy.get("webhook"):
        return "401 (unsigned webhook)", lambda s, _t: s == 401
    if policy.get("public"):
        return not_5xx
    if principal in UNAUTHENTICATED:
        return "401", lambda s, _t: s == 401
    role = ROLE_OF[principal]
    if role not in policy.get("roles", ()):
        return "403 (role not in x-policy.roles)", lambda s, _t: s == 403
    if principal == "merchant_without_id":
        return "401 (a merchant token must name its merchant: fail closed)", lambda s, _t: s == 401
    if principal == "staff_without_permission" and policy.get("permission"):
        return f"403 (lacks {policy['permission']!r})", lambda s, _t: s == 403
    if is_foreign(op, principal):
        return "403/404 (not the owner)", lambda s, _t: s in (403, 404)
    if principal == "merchant_b" and any(p["name"] == "merchant_id" for p in op.params("query")):
        order = _ORDER_A[0]
        return ("refused, or 2xx without merchant A's data",
                lambda s, t: s < 500 and s != 401 and not (s < 300 and order in t))
    return "neither 401 nor 403, not 5xx", lambda s, _t: s not in (401, 403) and s < 500


_ORDER_A: list[str] = [""]  # merchant A's order id, set by run()


def is_foreign(op: Operation, principal: str) -> bool:
    names = {p["name"] for p in op.params("path")}
    if principal == "merchant_b":
        return bool(names & OWNED_BY_MERCHANT_A)
    if principal == "storefront_customer_2":
        return bool(names & OWNED_BY_CUSTOMER_1)
    return False


def request_for(op: Operation, principal: str, headers: dict, platform: Platform,
                pvalues: dict, qvalues: dict, valid_body: bool | None = None) -> dict:
    """The request of one cell; the body is valid for the ownership probes (or ``valid_body``)."""
    path = op.path
    if "{att_id}" in path:  # merchant A's attachment is on its rejected order
        pvalues = {**pvalues, "order_id": platform.ids["order_rejected"]}
    for p in op.params("path"):
        path = path.replace("{" + p["name"] + "}", str(pvalues.get(p["name"], "sec-unknown")))
    params = {p["name"]: qvalues.get(p["name"], "x") for p in op.params("query") if p.get("required")}
    if principal == "merchant_b" and any(p["name"] == "merchant_id" for p in op.params("query")):
        params["merchant_id"] = MERCHANT_A  # the other merchant asks for merchant A's figures
    h = dict(headers)
    for p in op.params("header"):
        if p.get("required") and p["name"].lower() not in ("x-customer-id",):
            h.setdefault(p["name"], "sec-probe-" + principal)
    kw: dict = {"method": op.method, "url": platform.url(op.service, path), "params": params, "headers": h}
    if (op.method, op.path) == ("POST", "/v1/oauth/token"):
        return kw  # no credentials at all: a failed attempt would count against this source's limit
    schema = body_schema(op)
    if schema is not None:
        valid = is_foreign(op, principal) if valid_body is None else valid_body
        kw["json"] = minimal(schema, op.components) if valid else "x"
    elif op.method in ("POST", "PUT", "PATCH"):
        kw["content"] = b"x"
        h.setdefault("content-type", "text/plain")
    return kw


def run(platform: Platform, ops: list[Operation]) -> list[Cell]:
    _ORDER_A[0] = platform.ids["order_a"]
    pvalues, qvalues = path_values(platform), query_values()
    cells = []
    with httpx.Client(timeout=30) as client:
        for op in ops:
            headers = principal_headers(platform, (op.policy or {}).get("permission"))
            for principal in PRINCIPALS:
                expected, good = expected_for(op, principal)
                r = client.request(**request_for(op, principal, headers[principal], platform, pvalues, qvalues))
                ok = good(r.status_code, r.text)
                cells.append(Cell(op, principal, r.status_code, expected, ok, "" if ok else r.text[:200]))
    return cells
