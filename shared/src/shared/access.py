"""Default-deny: every route of every service declares its access ``Policy``.

``enforce(app)`` walks the app's routes and raises ``UndeclaredAccess`` naming each route
that has no policy; the shared runtime calls it when a service starts, so a route added
without a policy cannot be served (and the access-matrix tests fail on it). The few
anonymous routes say so explicitly with ``Policy.public(reason)``.

``document(app)`` installs the OpenAPI post-processing (FastAPI's documented
``app.openapi`` hook): the OAuth2 client-credentials security scheme on every protected
operation (Swagger UI's *Authorize* works), the ``X-Customer-Id`` header where the
storefront acts for a customer, the 401/403 answers, and ``x-policy`` (the roles,
permission and ownership scope) so clients and tests read who may call what from the
live document.
"""
from __future__ import annotations

from typing import Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.auth import ROLES, Policy

SCHEME = "OAuth2ClientCredentials"
# FastAPI's own documentation routes and the docs pages' assets (shared.api_docs): static,
# and public so operators can read the API (and press Authorize) before they have a token.
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets/{path}"})


class UndeclaredAccess(RuntimeError):
    """A route has no access policy: the service refuses to start."""


def _policies(dependant: Dependant) -> Iterator[Policy]:
    call = dependant.call
    if isinstance(call, Policy):
        yield call
    else:
        marked = getattr(call, "__policy__", None)
        if isinstance(marked, Policy):
            yield marked
    for sub in dependant.dependencies:
        yield from _policies(sub)


def _all_policies(ctx) -> list[Policy]:
    dependant = getattr(ctx, "dependant", None) or ctx.original_route.dependant
    return list(_policies(dependant))


def api_routes(app: FastAPI) -> Iterator[tuple[object, str, frozenset[str]]]:
    """(route context, path, methods) for every API route, through included routers."""
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            yield ctx, ctx.path_format or ctx.original_route.path_format, frozenset(ctx.methods or ())


def policy_of(ctx) -> Policy | None:
    """The route's policy: the first one found (a route declares exactly one)."""
    found = _all_policies(ctx)
    return found[0] if found else None


def route_policies(app: FastAPI) -> dict[tuple[str, str], Policy | None]:
    """(method, path) → policy for every API route of the app."""
    out: dict[tuple[str, str], Policy | None] = {}
    for ctx, path, methods in api_routes(app):
        p = policy_of(ctx)
        for method in sorted(methods):
            out[(method, path)] = p
    return out


def enforce(app: FastAPI) -> dict[tuple[str, str], Policy]:
    """Raise UndeclaredAccess unless every route declares its policy (and only one)."""
    missing: list[str] = []
    conflicting: list[str] = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        where = f"{','.join(sorted(ctx.methods or ()))} {ctx.path_format or getattr(route, 'path', route)}"
        if isinstance(route, APIRoute):
            found = _all_policies(ctx)
            if not found:
                missing.append(where)
            elif len({repr(p) for p in found}) > 1:
                conflicting.append(f"{where}: {found}")
        elif ctx.path_format not in DOC_PATHS:
            missing.append(f"{where} ({type(route).__name__}, not an API route)")
    if missing or conflicting:
        raise UndeclaredAccess(
            "default-deny: routes without an access policy: " + ("; ".join(missing) or "none")
            + ("" if not conflicting else " | routes with several different policies: " + "; ".join(conflicting))
        )
    return {k: v for k, v in route_policies(app).items() if v is not None}


def document(app: FastAPI, token_url: str) -> None:
    """Add security, the customer header and ``x-policy`` to the app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema and app.openapi_schema.get("x-access-documented"):
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "oauth2",
            "description": "Bearer tokens from the OAuth2 client-credentials endpoint of the orders service "
                           "(POST /v1/oauth/token, form fields grant_type=client_credentials, client_id, "
                           "client_secret). Tokens are short-lived; send them as 'Authorization: Bearer <token>'.",
            "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": {}}},
        }
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        components.setdefault("schemas", {})["ErrorBody"] = {
            "type": "object", "title": "ErrorBody", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}},
        }
        for ctx, path, methods in api_routes(app):
            policy = policy_of(ctx)
            path_item = schema.get("paths", {}).get(path)
            if policy is None or path_item is None:
                continue
            for method in methods:
                op = path_item.get(method.lower())
                if op is None:
                    continue
                op["x-policy"] = policy.describe()
                responses = op.setdefault("responses", {})
                # Every error has the one shape of shared.errors (422 included, not FastAPI's
                # default validation schema); "default" covers the statuses an operation does
                # not list one by one (404, 409, 429, 503...).
                # (a route that reads its request itself, shared.request_route, documents its
                # parameters and body by hand: FastAPI does not add its 422 then)
                if "422" in responses or op.get("requestBody") or op.get("parameters"):
                    responses["422"] = {"description": "Invalid request (the fields are named in details)",
                                        "content": error_ref}
                responses.setdefault("default", {"description": "Error", "content": error_ref})
                if "{" in path:
                    responses.setdefault("404", {"description": "Not found, or not visible to the caller",
                                                 "content": error_ref})
                if policy.is_public or policy.webhook:
                    op["security"] = []
                    if policy.webhook:
                        responses.setdefault(
                            "401", {"description": "Missing, invalid, stale or replayed signature", "content": error_ref})
                    continue
                op["security"] = [{SCHEME: []}]
                responses.setdefault("401", {"description": "No, or an invalid, expired or revoked token",
                                             "content": error_ref})
                responses.setdefault("403", {"description": "The caller's role or permission does not allow this",
                                             "content": error_ref})
                if policy.customer or "storefront" in (policy.roles or ROLES):
                    params = op.setdefault("parameters", [])
                    if not any(p.get("name", "").lower() == "x-customer-id" for p in params):
                        params.append({
                            "name": "X-Customer-Id", "in": "header", "required": bool(policy.customer),
                            "description": "The customer this storefront request acts for. The storefront is a "
                                           "trusted client: the platform takes its word for the customer id.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                        })
        # FastAPI's validation-error schemas are no longer referenced: our 422 is ErrorBody
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        schema["x-access-documented"] = True
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point
