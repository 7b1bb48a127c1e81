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

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send


class RequestRoute(APIRoute):
    def get_route_handler(self):
        return self.endpoint

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # 405, as any route
            return
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
