"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work without the Internet.

FastAPI's own pages load their JavaScript and CSS from a public CDN: blank in an air-gapped
data centre or where CDNs are blocked. Every service serves them instead from the assets the
package ``fastapi-offline`` ships (Swagger UI and ReDoc bundles, kept current by its
maintainer), mounted at ``/docs/assets``, following FastAPI's documented recipe "Self-hosting
JavaScript and CSS for docs" (``get_swagger_ui_html`` / ``get_redoc_html`` with local URLs,
no Google Fonts). The pages are FastAPI's, so Swagger UI's *Authorize* (OAuth2 client
credentials) works as before. The app is created with ``docs_url=None, redoc_url=None``.
"""
from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
ASSETS = "/docs/assets"
# the files fastapi-offline ships (its package data): name under ASSETS
SWAGGER_JS, SWAGGER_CSS = "swagger-ui-bundle.js", "swagger-ui.css"
REDOC_JS, FAVICON = "redoc.standalone.js", "favicon.png"


def assets_directory() -> str:
    return str(files("fastapi_offline") / "static")


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc with local assets (``app`` was made
    with ``docs_url=None, redoc_url=None``). Plain Starlette routes like FastAPI's own doc
    routes: public, static, outside the OpenAPI document (shared.access.DOC_PATHS)."""
    app.mount(ASSETS, StaticFiles(directory=assets_directory()), name="docs-assets")

    def url(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=url(request, app.openapi_url), title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=url(request, OAUTH2_REDIRECT),
            swagger_js_url=url(request, f"{ASSETS}/{SWAGGER_JS}"),
            swagger_css_url=url(request, f"{ASSETS}/{SWAGGER_CSS}"),
            swagger_favicon_url=url(request, f"{ASSETS}/{FAVICON}"),
            init_oauth=app.swagger_ui_init_oauth,
            # no validator badge: Swagger UI would fetch it from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})})

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=url(request, app.openapi_url), title=f"{app.title} - ReDoc",
            redoc_js_url=url(request, f"{ASSETS}/{REDOC_JS}"),
            redoc_favicon_url=url(request, f"{ASSETS}/{FAVICON}"), with_google_fonts=False)

    app.add_route(DOCS, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC, redoc, include_in_schema=False)


__all__ = ["ASSETS", "DOCS", "REDOC", "assets_directory", "install_api_docs"]
