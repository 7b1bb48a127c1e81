"""The pages' own script and style, and plotly.js from the installed ``plotly`` package
(``plotly.offline.get_plotlyjs``): the console works where CDNs are blocked."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path as FilePath

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from shared.auth import Policy
from shared.errors import ApiError

STATIC = FilePath(__file__).resolve().parent.parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

router = APIRouter(tags=["console"])


@lru_cache(maxsize=8)
def _asset(name: str) -> tuple[bytes, str]:
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        body = get_plotlyjs().encode()
    else:
        path = STATIC / name
        if path.suffix not in TYPES or path.parent != STATIC or not path.is_file():
            raise ApiError(404, "not_found", f"no asset {name}")
        body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get("/static/{name}", response_class=Response, summary="The console's script, style and plotly.js",
            dependencies=[Depends(Policy.public("static assets of the console pages"))])
async def asset(request: Request, name: str = Path(pattern=r"^[a-z.]{1,40}\.(js|css)$")) -> Response:
    body, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=TYPES[FilePath(name).suffix], headers=headers)
