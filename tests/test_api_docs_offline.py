"""/docs and /redoc work without the Internet on every service: their pages name no other
host, and every script, stylesheet and icon they load is served by the service itself
(shared/api_docs.py, assets from the installed package fastapi-offline)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from tests.helpers import SERVICES


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _loaded(html: str) -> list[str]:
    p = _Urls()
    p.feed(html)
    return p.urls


@pytest.mark.parametrize("service", list(SERVICES))
async def test_docs_pages_load_their_assets_from_the_service(service, tmp_path):
    create_app, settings_cls = SERVICES[service]
    app = create_app(settings_cls(environment="test", data_dir=str(tmp_path), log_json=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
        for page, expected in (("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}), ("/redoc", {"redoc.standalone.js"})):
            r = await c.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
            # no other host anywhere in the page: no CDN, no Google Fonts, no validator badge
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I), (page, r.text)
            urls = _loaded(r.text)
            assert expected <= {u.rsplit("/", 1)[-1] for u in urls}, (page, urls)
            for url in urls:
                assert url.startswith("/docs/assets/"), url
                asset = await c.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
            if page == "/docs":
                assert '"validatorUrl": null' in r.text and "oauth2RedirectUrl" in r.text
        assert (await c.get("/docs/oauth2-redirect")).status_code == 200
        assert (await c.get("/docs/assets/no-such-file.js")).status_code == 404
        paths = app.openapi()["paths"]
        assert not any(p.startswith("/docs") or p == "/redoc" for p in paths)
