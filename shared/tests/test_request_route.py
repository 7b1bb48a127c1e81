"""``shared.request_route``: a route whose endpoint reads its own path value and JSON body
answers bad input exactly as FastAPI answers it for a route declaring the same parameter and
body model (same status, same error body), and good input the same way too."""
from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.errors import install_error_handlers
from shared.request_route import RequestRoute, json_body_openapi, read_json_body, read_path_value

PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=10)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=5)
    count: int
    parts: list[Part] = []


ID = TypeAdapter(Annotated[str, Field(pattern=PATTERN, max_length=64)])


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/declared/{item_id}")
    async def declared(item_id: Annotated[str, Path(pattern=PATTERN, max_length=64)], body: Body) -> JSONResponse:
        return JSONResponse({"id": item_id, **body.model_dump(mode="json")})

    async def by_hand(request: Request) -> JSONResponse:
        errors: list[dict] = []
        item_id = read_path_value(request, "item_id", ID, errors)
        body = await read_json_body(request, Body, errors)
        if errors:
            raise RequestValidationError(errors)
        return JSONResponse({"id": item_id, **body.model_dump(mode="json")})

    router = APIRouter()
    router.add_api_route("/by-hand/{item_id}", by_hand, methods=["POST"], route_class_override=RequestRoute,
                         openapi_extra={"requestBody": json_body_openapi(Body)})
    app.include_router(router)
    return app


JSON = {"content-type": "application/json"}
CASES = [
    ("ok", b'{"count": 1, "parts": [{"name": "a"}]}', JSON),
    ("ok", b'{"count": 1}', {"content-type": "application/merge-patch+json; charset=utf-8"}),
    ("ok", b"", JSON),
    ("ok", b"{not json", JSON),
    ("ok", b"\xff\xfe", JSON),
    ("ok", b"[1, 2]", JSON),
    ("ok", b'"text"', JSON),
    ("ok", b"{}", JSON),
    ("ok", b'{"count": "x", "note": "toolong", "extra": 1}', JSON),
    ("ok", b'{"count": 1, "parts": [{"name": ""}, {"other": 1}]}', JSON),
    ("ok", b'{"count": 1}', {}),
    ("ok", b'{"count": 1}', {"content-type": "text/plain"}),
    ("bad id!", b'{"count": 1}', JSON),
    ("x" * 65, b"{bad", JSON),
    ("bad id!", b"", JSON),
]


@pytest.mark.parametrize("item_id,body,headers", CASES)
async def test_answers_as_fastapi_answers_a_declared_route(item_id, body, headers):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        declared = await client.post(f"/declared/{item_id}", content=body, headers=headers)
        by_hand = await client.post(f"/by-hand/{item_id}", content=body, headers=headers)
    assert (by_hand.status_code, by_hand.json()) == (declared.status_code, declared.json())


def test_the_body_is_documented_standalone():
    doc = _app().openapi()
    body = doc["paths"]["/by-hand/{item_id}"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True and schema["required"] == ["count"]
    assert schema["properties"]["parts"]["items"]["properties"]["name"]["maxLength"] == 10  # nested, in place
    assert "$ref" not in str(schema)
