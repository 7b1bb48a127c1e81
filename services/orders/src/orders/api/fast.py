"""The hot POST routes served without FastAPI's per-request machinery (PostgreSQL only).

Order actions (``POST /v1/{storefront,merchant,platform}/service-orders/{id}/{action}``)
and applications (``POST /v1/storefront/service-orders``) are most of the service's
traffic, and on them the middleware stack (Starlette's error middleware, FastAPI's
telemetry and body limit), routing (two scans of every included router), the request
handler's dependency solving and response validation cost as much CPU as the order's
own rules and its one database round trip. ``OrdersFastPath`` is an ASGI layer placed
*ahead of* the service's middleware stack (``OrdersApp``). It wraps the requests it
serves in the service's request-context middleware (correlation ids, latency metrics,
as on every route), limits their bodies itself (larger ones go the full way, where the
app's body limit applies) and answers an unexpected error with a 500 JSON error body.
For these routes it does what the FastAPI endpoint does, with the same functions, in
the same order:

1. the route's own dependency (principal, ``X-Customer-Id``, If-Match): its ApiError
   is answered exactly as the app's error handler answers it;
2. the body: JSON (only ``Content-Type: application/json``), validated by the route's
   model. Anything unusual here (no or another content type, empty body, invalid JSON,
   a validation error, a bad ``Idempotency-Key``) is NOT answered here: the request
   goes on to the full app with its body replayed, so validation errors keep their
   exact shape (nothing has been changed at that point);
3. the handler (``perform`` / ``apply_for_service``) and the same JSON answer.

Every other request, and every request on SQLite, goes straight to the full app. The
routes stay declared on the routers (OpenAPI, and the full path for the fallbacks).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from orders.adapters import direct
from orders.api.common import ID_PATTERN
from shared.errors import ApiError, error_body
from shared.observability import RequestContextMiddleware
from shared.one_write import ServiceApp

log = logging.getLogger(__name__)

# Bodies above this go the full way (audit attachments: the app's body limit applies).
MAX_FAST_BODY = 64 * 1024


@dataclass(frozen=True)
class ActionRoute:
    path: str  # the route's template, e.g. /v1/merchant/service-orders/{order_id}/claim (metrics label)
    context: Callable  # the route's dependency: (request, if_match) -> (runtime, principal, version)
    model: type[BaseModel]
    run: Callable  # async (rt, p, order_id, body, version) -> dict (the answer)


@dataclass(frozen=True)
class _Route:
    path: str


# (prefix, action path) -> route; filled by the routers as they declare their action routes.
ACTIONS: dict[tuple[str, str], ActionRoute] = {}
APPLY_PATH = "/v1/storefront/service-orders"
_PREFIXES = ("/v1/storefront", "/v1/merchant", "/v1/platform")
_MIDDLE = "/service-orders/"
_ORDER_ID = re.compile(ID_PATTERN)


_FOUND = "orders.fast_route"  # the matched route, from __call__ to _serve


def register(prefix: str, path: str, route: ActionRoute) -> None:
    ACTIONS[(prefix, path)] = route


class _Fallback(Exception):
    """Not answered here: the full app answers (with the body replayed)."""


def _json_body(scope, body: bytes) -> Any:
    ctype = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            ctype = value
            break
    if ctype is None or not body or ctype.split(b";", 1)[0].strip().lower() != b"application/json":
        raise _Fallback
    try:
        return json.loads(body)
    except ValueError:
        raise _Fallback from None


def _validated(model: type[BaseModel], obj: Any) -> BaseModel:
    try:
        return model.model_validate(obj)
    except ValidationError:
        raise _Fallback from None


class OrdersFastPath:
    def __init__(self, app, runtime) -> None:
        self.app = app  # the full stack: middleware, routing, the FastAPI endpoints
        self.runtime = runtime
        self._postgres = direct.is_postgres(runtime)
        self._in_context = RequestContextMiddleware(self._serve, metrics=runtime.metrics)

    def _match(self, path: str):
        """(route, order_id) for an action path, ("apply", None), or None."""
        if path == APPLY_PATH:
            return ("apply", None) if APPLY_HANDLER else None
        for prefix in _PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if not rest.startswith(_MIDDLE):
                    return None
                order_id, sep, action = rest[len(_MIDDLE):].partition("/")
                if not sep or not _ORDER_ID.fullmatch(order_id) or "/" in action:
                    return None  # a malformed id: the full app answers its 422
                route = ACTIONS.get((prefix, action))
                return (route, order_id) if route is not None else None
        return None

    async def __call__(self, scope, receive, send) -> None:
        if not self._postgres or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = self._match(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        if length is None or not length.isdigit() or int(length) > MAX_FAST_BODY:
            await self.app(scope, receive, send)
            return
        scope[_FOUND] = found
        await self._in_context(scope, receive, send)

    async def _serve(self, scope, receive, send) -> None:
        route, order_id = scope.pop(_FOUND)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            if route == "apply":
                response = await APPLY_HANDLER(scope, body)
            else:
                scope["route"] = _Route(route.path)
                response = await self._action(scope, route, order_id, body)
        except _Fallback:
            scope.pop("route", None)
            await self.app(scope, _replay(body, receive), send)
            return
        except ApiError as exc:
            response = JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)
        except Exception:  # noqa: BLE001 - what Starlette's error middleware does for the other routes
            log.exception("unhandled error", extra={"path": scope["path"]})
            response = JSONResponse(error_body("internal_error", "the server failed to process the request"),
                                    status_code=500)
        await response(scope, receive, send)

    async def _action(self, scope, route: ActionRoute, order_id: str, body: bytes):
        request = Request(scope)
        rt, p, version = await route.context(request, request.headers.get("if-match"))
        model = _validated(route.model, _json_body(scope, body))
        return JSONResponse(await route.run(rt, p, order_id, model, version))


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


APPLY_HANDLER: Callable | None = None


def apply_handler(caller, model: type[BaseModel], run: Callable) -> None:
    """The storefront's application route: ``caller`` its dependency, ``run(rt, p, body, key)``
    -> (content, status)."""
    global APPLY_HANDLER

    async def handle(scope, body: bytes):
        request = Request(scope)
        scope["route"] = _Route(APPLY_PATH)
        rt, p = await caller(request)
        key = request.headers.get("idempotency-key")
        if key is None or not (1 <= len(key) <= 100):
            raise _Fallback
        application = _validated(model, _json_body(scope, body))
        content, status = await run(rt, p, application, key)
        return JSONResponse(content, status_code=status)

    APPLY_HANDLER = handle


class OrdersApp(ServiceApp):
    """The service's app with the hot routes served ahead of the middleware stack."""

    async def handle(self, scope, receive, send) -> None:
        scope["app"] = self  # as Starlette sets it: the routes' dependencies read request.app
        await self.state.orders_fast_path(scope, receive, send)


__all__ = ["ActionRoute", "OrdersApp", "OrdersFastPath", "apply_handler", "register"]
