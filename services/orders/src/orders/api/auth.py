"""OAuth2 client-credentials token endpoint (RFC 6749 §4.4)."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from orders.adapters.attempt_limits import TooManyAttempts
from orders.handlers.accounts import issue_for_client
from shared.auth import Policy
from shared.errors import ApiError, error_body
from orders.api.common import get_runtime
from orders.api.responses import TokenOut
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/oauth", tags=["auth"])


@router.post("/token", summary="Exchange client credentials for a short-lived bearer token", response_model=TokenOut,
             dependencies=[Depends(Policy.public("OAuth2 client-credentials token endpoint"))],
             responses={
                 401: {"description": "unknown client, wrong secret or disabled account (`invalid_client`)",
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
                 429: {"description": "too many failed attempts for this client id or source address "
                                      "(`too_many_attempts`); retry after `Retry-After` seconds",
                       "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}})
async def token(request: Request, rt: Runtime = Depends(get_runtime)) -> dict:
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            form = {k: str(v) for k, v in json.loads(raw or b"{}").items()}
        except (ValueError, AttributeError):
            raise ApiError(422, "invalid_request", "the body is not a JSON object") from None
    else:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            form.setdefault("client_id", cid)
            form.setdefault("client_secret", secret)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(401, "invalid_client", "malformed Basic credentials") from None
    if form.get("grant_type") != "client_credentials":
        raise ApiError(422, "unsupported_grant_type", "grant_type must be client_credentials")
    if not form.get("client_id") or not form.get("client_secret"):
        raise ApiError(401, "invalid_client", "client_id and client_secret are required")
    # The ASGI client address: behind a proxy, the server must take it from the proxy's
    # header (uvicorn --proxy-headers with FORWARDED_ALLOW_IPS naming the proxy).
    address = request.client.host if request.client else "unknown"
    try:
        return await issue_for_client(rt, form["client_id"], form["client_secret"], address)
    except TooManyAttempts as exc:
        return JSONResponse(error_body("too_many_attempts", str(exc), {"retry_after_s": exc.retry_after_s}),
                            status_code=429, headers={"Retry-After": str(exc.retry_after_s)})
