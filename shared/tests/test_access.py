"""Default-deny: a route without a policy is refused; policies decide who calls what;
the OpenAPI document carries the security scheme and x-policy."""
from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from shared.access import UndeclaredAccess, document, enforce, route_policies
from shared.auth import Policy, Principal, issue_token, with_policy
from shared.clock import SystemClock
from shared.errors import ApiError, install_error_handlers
from shared.masking import mask_payload, mask_text

SECRET = "k3J9x-Qw7pL2mZ8vR4tY6uN1bC5dE0fG-test"
OPS = Policy("platform_operator")
MERCHANT = Policy("merchant_main", "merchant_staff", permission="audit", scope="the merchant's orders")
CUSTOMER = Policy("storefront", customer=True)


def _app(extra: APIRouter | None = None) -> FastAPI:
    app = FastAPI()
    app.state.runtime = SimpleNamespace(settings=SimpleNamespace(token_secret=SECRET), clock=SystemClock())
    install_error_handlers(app)
    r = APIRouter(prefix="/v1")

    @r.get("/ops")
    async def ops(p: Principal = Depends(OPS)) -> dict:
        return {"who": p.subject}

    @r.get("/orders")
    async def orders(p: Principal = Depends(MERCHANT)) -> dict:
        return {"merchant": p.merchant_id}

    @r.get("/mine")
    async def mine(p: Principal = Depends(CUSTOMER)) -> dict:
        return {"customer": p.customer_id}

    async def wrapper(p=None):  # a dependency that checks a policy itself
        return p

    @r.get("/wrapped", dependencies=[Depends(with_policy(wrapper, OPS))])
    async def wrapped() -> dict:
        return {}

    @r.get("/health", dependencies=[Depends(Policy.public("probe"))])
    async def health() -> dict:
        return {"ok": True}

    app.include_router(r)
    if extra is not None:
        app.include_router(extra)
    document(app, "http://127.0.0.1:8101/v1/oauth/token")
    return app


def _h(role: str, **kw) -> dict:
    return {"Authorization": "Bearer " + issue_token(Principal(role, f"{role}-1", **kw), SECRET)}


def test_a_route_without_a_policy_is_refused_naming_it():
    stray = APIRouter()

    @stray.get("/v1/forgotten")
    async def forgotten() -> dict:
        return {}

    with pytest.raises(UndeclaredAccess) as e:
        enforce(_app(stray))
    assert "GET /v1/forgotten" in str(e.value)
    assert "/v1/ops" not in str(e.value)


def test_every_declared_route_passes_and_is_listed():
    policies = enforce(_app())
    assert policies[("GET", "/v1/ops")] is OPS
    assert policies[("GET", "/v1/wrapped")] is OPS
    assert policies[("GET", "/v1/health")].is_public


async def _get(app, path, headers=None):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path, headers=headers or {})


async def test_policy_answers_401_403_and_fails_closed():
    app = _app()
    assert (await _get(app, "/v1/ops")).status_code == 401
    assert (await _get(app, "/v1/ops", _h("merchant_main", merchant_id="m-1"))).status_code == 403
    assert (await _get(app, "/v1/ops", _h("platform_operator"))).json() == {"who": "platform_operator-1"}
    # alg=none and a tampered payload are forged tokens
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    good = _h("merchant_main", merchant_id="m-1")["Authorization"].split()[1]
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "platform_operator"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token in (f"{none}.{body}.", f"{head}.{forged_body}.{sig}"):
        r = await _get(app, "/v1/ops", {"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    # a merchant token that names no merchant sees nothing (fail closed)
    assert (await _get(app, "/v1/orders", _h("merchant_main"))).status_code == 401
    # staff need the route's permission; the main account does not
    assert (await _get(app, "/v1/orders", _h("merchant_staff", merchant_id="m-1",
                                               permissions=frozenset({"process"})))).status_code == 403
    assert (await _get(app, "/v1/orders", _h("merchant_staff", merchant_id="m-1",
                                               permissions=frozenset({"audit"})))).status_code == 200
    assert (await _get(app, "/v1/orders", _h("merchant_main", merchant_id="m-1"))).json() == {"merchant": "m-1"}
    # the storefront names its customer
    assert (await _get(app, "/v1/mine", _h("storefront"))).status_code == 422
    r = await _get(app, "/v1/mine", {**_h("storefront"), "X-Customer-Id": "c-1"})
    assert r.json() == {"customer": "c-1"}
    r = await _get(app, "/v1/mine", {**_h("storefront"), "X-Customer-Id": "c\x01"})
    assert r.status_code == 422
    assert (await _get(app, "/v1/health")).status_code == 200


async def test_account_guard_is_asked_on_every_token_check():
    app = _app()

    class Guard:
        def check(self, p: Principal) -> None:
            if p.subject == "merchant_main-1":
                raise ApiError(401, "token_revoked", "the account changed")

    app.state.runtime.account_guard = Guard()
    r = await _get(app, "/v1/orders", _h("merchant_main", merchant_id="m-1"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    assert (await _get(app, "/v1/ops", _h("platform_operator"))).status_code == 200


def test_openapi_documents_security_customer_header_and_policy():
    doc = _app().openapi()
    scheme = doc["components"]["securitySchemes"]["OAuth2ClientCredentials"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"].endswith("/v1/oauth/token")
    ops = doc["paths"]["/v1/ops"]["get"]
    assert ops["security"] == [{"OAuth2ClientCredentials": []}]
    assert ops["x-policy"] == {"public": False, "roles": ["platform_operator"]}
    assert {"401", "403", "default"} <= set(ops["responses"])
    assert all(r["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
               for code, r in ops["responses"].items() if code in ("401", "403", "422", "default"))
    assert "HTTPValidationError" not in json.dumps(doc)
    orders = doc["paths"]["/v1/orders"]["get"]["x-policy"]
    assert orders["permission"] == "audit" and orders["scope"] == "the merchant's orders"
    mine = doc["paths"]["/v1/mine"]["get"]
    assert any(p["name"] == "X-Customer-Id" and p["in"] == "header" and p["required"] for p in mine["parameters"])
    health = doc["paths"]["/v1/health"]["get"]
    assert health["security"] == [] and health["x-policy"]["public"] is True


def test_unknown_roles_in_a_policy_are_a_programming_error():
    with pytest.raises(ValueError):
        Policy("superuser")


def test_phone_numbers_are_masked_in_parked_payloads_and_free_text():
    masked = mask_payload(json.dumps({"data": {"customer_phone": "13800138000", "note": "call 13912345678"}}))
    assert "13800138000" not in masked and "138****8000" in masked
    assert "13912345678" not in masked and "139****5678" in masked
    assert mask_text("not json: 13800138000") == "not json: 138****8000"
    assert "6666-0101" not in mask_text("landline 010-6666-0101")


def test_route_policies_covers_included_routers():
    assert ("GET", "/v1/mine") in route_policies(_app())
