"""``shared.runtime.add_routes``: a service's routers join the app's own route list instead
of being included (FastAPI scans an included router's routes twice per request). The app
documents and answers exactly as with ``include_router``; a router setting what only an
inclusion applies (dependencies, responses...) is refused rather than silently dropped."""
from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header
from pydantic import BaseModel

from shared.errors import install_error_handlers
from shared.runtime import add_routes


class Item(BaseModel):
    name: str


def _router() -> APIRouter:
    router = APIRouter(prefix="/v1/things", tags=["things"])

    @router.get("/{thing_id}", summary="One thing")
    async def one(thing_id: int, x_trace: str | None = Header(None)) -> dict:
        return {"id": thing_id, "trace": x_trace}

    @router.post("", status_code=201, response_model=Item)
    async def create(item: Item) -> Item:
        return item

    return router


def _app(flat: bool) -> FastAPI:
    app = FastAPI(title="t")
    install_error_handlers(app)
    router = _router()
    if flat:
        add_routes(app, router)
    else:
        app.include_router(router)
    return app


async def _answers(app: FastAPI) -> list:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        out = []
        for method, path, kw in [("GET", "/v1/things/7", {"headers": {"x-trace": "a"}}), ("GET", "/v1/things/x", {}),
                                 ("POST", "/v1/things", {"json": {"name": "n"}}), ("POST", "/v1/things", {"json": {}}),
                                 ("DELETE", "/v1/things/7", {}), ("GET", "/v1/nothing", {})]:
            r = await c.request(method, path, **kw)
            out.append((method, path, r.status_code, r.json()))
        return out


async def test_the_app_documents_and_answers_as_with_include_router():
    included, flat = _app(False), _app(True)
    assert flat.openapi() == included.openapi()
    assert await _answers(flat) == await _answers(included)


@pytest.mark.parametrize("kw", [{"dependencies": [Depends(lambda: None)]}, {"responses": {418: {"description": "x"}}},
                                {"deprecated": True}, {"include_in_schema": False}])
def test_a_router_setting_what_only_an_inclusion_applies_is_refused(kw):
    with pytest.raises(ValueError, match="include it instead"):
        add_routes(FastAPI(), APIRouter(prefix="/x", **kw))
