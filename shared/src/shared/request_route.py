"""``RequestRoute``: a FastAPI route whose endpoint takes the Request and answers a Response.

For the hottest routes, where FastAPI's per-request work (solving parameters and
dependencies, two exit stacks per request, a second exception wrapper around the route,
serializing the answer) costs more than the use case itself. Built on FastAPI's documented
route-class hook (``route_class_override``, "Custom Request and APIRoute class"):

- FastAPI still documents the route: its parameters (``openapi_extra``), its answer
  (``response_model``) and its policy (``shared.auth.with_policy``, seen by the start-up
  check);
- a request goes from the router to the endpoint and its Response, nothing in between.
  The endpoint reads and validates what it needs itself (a model's ``model_validate`` /
  ``model_validate_json``) and checks its policy first. An exception it raises reaches the
  app's exception handlers exactly as from any other route (the app's exception middleware
  answers it: ``shared.errors``), so the error answers are the same;
- a method the route does not take is answered by FastAPI as for any route (405).

The endpoint must not rely on FastAPI's dependencies (none are solved for it)."""
from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.types import Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)


class RequestRoute(APIRoute):
    def get_route_handler(self):
        return self.endpoint

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # 405, as any route
            return
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


# --- what such an endpoint reads, checked as FastAPI checks it -------------------------------


def json_body_openapi(model: type[BaseModel]) -> dict:
    """The ``requestBody`` of a route whose endpoint reads ``model`` itself (for the route's
    ``openapi_extra``, as FastAPI's documentation shows for a body read by hand): the model's
    JSON schema, standalone (its nested models written in place)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline({**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": inline(schema)}}}


async def read_json_body(request: Request, model: type[M], errors: list[dict]) -> M | None:
    """The request's JSON body as ``model``, read as FastAPI reads a declared body: required;
    parsed as JSON when its content type is JSON (``application/json`` or ``…+json``), left
    as bytes otherwise (so it fails the model, as FastAPI's strict content type has it).
    What is wrong goes into ``errors`` (FastAPI's error entries, ``loc`` starting with
    ``body``) and None is answered; raise ``RequestValidationError(errors)`` once every part
    of the request was read, so one answer lists every error. A body that is not JSON at all
    raises it at once, with that error alone, as FastAPI does."""
    raw = await request.body()
    if not raw:
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
        return None
    data: object = raw
    if _is_json(request.headers.get("content-type")):
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            # FastAPI's own entry, answered alone (it parses the body before it checks the rest)
            pos = e.pos if isinstance(e, json.JSONDecodeError) else e.start
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", pos), "msg": "JSON decode error",
                                           "input": {}, "ctx": {"error": str(e)}}]) from None
    try:
        # from_attributes: FastAPI validates a body so (its error for a body that is no object)
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        errors.extend({**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False))
        return None


def read_path_value(request: Request, name: str, adapter: TypeAdapter, errors: list[dict]):
    """Path parameter ``name`` validated by ``adapter``; its errors (``loc`` ``path``, name) go
    into ``errors``."""
    value = request.path_params[name]
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors.extend({**e, "loc": ("path", name, *e["loc"])} for e in exc.errors(include_url=False))
        return None


def read_header_value(request: Request, name: str, adapter: TypeAdapter, errors: list[dict]):
    """Header ``name``, required, validated by ``adapter``; its errors (``loc`` ``header``,
    name — FastAPI's entries for a declared ``Header(alias=name)``) go into ``errors``."""
    value = request.headers.get(name)
    if value is None:
        errors.append({"type": "missing", "loc": ("header", name), "msg": "Field required", "input": None})
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors.extend({**e, "loc": ("header", name, *e["loc"])} for e in exc.errors(include_url=False))
        return None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))
