"""The console's pages: who may open each (a session ``Policy`` next to every path), one
page builder per page, the HTML around it.

Every page is served whole (``GET /overview``) and as its live part
(``GET /overview?part=live``), which the page fetches every ``refresh_s`` to redraw its
figures, charts and tables without a reload. Long tables export as CSV from the same
builder (``GET /overview/export/oldest.csv``)."""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path as FilePath
from typing import Callable
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from console.adapters.platform import PlatformGateway, ServiceRefused, ServiceUnavailable, SignInRefused
from console.adapters.sessions import Session, SessionStore
from console.domain import access
from console.domain.i18n import DEFAULT_LANG, LANGS, Words
from console.handlers import pages, signin
from console.handlers.views import Page
from shared.auth import Policy, with_policy
from shared.errors import ApiError
from shared.runtime import Runtime

TEMPLATES = Jinja2Templates(directory=str(FilePath(__file__).resolve().parent.parent / "templates"))
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_signin"  # the sign-in form's CSRF token (double submit)
LANG_COOKIE = "console_lang"
MAX_FORM = 16 * 1024
EXPORT_LIMIT = 50_000
# Pages are documents of this console only: no framing, no scripts or connections elsewhere.
# plotly.js draws SVG with inline styles, hence style-src 'unsafe-inline' (no inline script).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the pages need beside the runtime (``app.state.console``)."""

    gateway: PlatformGateway
    sessions: SessionStore
    wall_clock: Callable[[], datetime]  # sign-in sessions last wall-clock time, whatever the platform clock


class SignInRequired(Exception):
    """No live session: pages redirect to the sign-in form, live parts answer 401."""


class NotAllowed(Exception):
    """A session whose role may not open this page: 403."""


@dataclass
class Caller:
    session: Session
    rt: Runtime
    console: Console
    words: Words
    lang: str


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


def session_policy(*roles: str) -> Callable:
    """The dependency of a console route: the session cookie's caller, if their role is
    among ``roles`` (documented as the route's ``Policy``)."""
    policy = Policy(*roles, scope="a console session (sign-in cookie); pages per role: docs/console.md")

    async def caller(request: Request) -> Caller:
        rt: Runtime = request.app.state.runtime
        console: Console = request.app.state.console
        session = await signin.current(console.sessions, rt.account_guard, request.cookies.get(SESSION_COOKIE),
                                       console.wall_clock())
        if session is None:
            raise SignInRequired()
        if session.role not in policy.roles:
            raise NotAllowed()
        lang = lang_of(request)
        return Caller(session, rt, console, Words(lang), lang)

    return with_policy(caller, policy)


def _ctx(c: Caller, limit: int = pages.LIST_LIMIT) -> pages.Ctx:
    return pages.Ctx(c.rt.sessions, c.console.gateway, c.words, c.session.role, c.rt.clock.now(), limit)


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    lang = context.get("lang") or lang_of(request)
    context.setdefault("w", Words(lang))
    context.setdefault("lang", lang)
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _page_response(request: Request, c: Caller, page: Page, part: str | None, status: int = 200,
                   **extra) -> HTMLResponse:
    rt = c.rt
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("part", "done")]
    context = dict(page=page, lang=c.lang, w=c.words, session=c.session, nav=access.pages_for(c.session.role),
                   refresh_ms=int(rt.settings.refresh_s * 1000), now=rt.clock.now(),
                   export_query=("?" + urlencode(kept)) if kept else "", **extra)
    return render(request, "live.html" if part == "live" else "page.html", status, **context)


PART = Query(None, pattern="^live$", description="'live': only the part the page refreshes by itself")


# ------------------------------------------------------------------------------------------ pages
router = APIRouter(tags=["console"])

BUILDERS: dict[str, Callable] = {
    "overview": pages.overview,
    "deadlines": pages.deadlines,
    "arbitration": pages.arbitration,
    "routing": pages.routing,
    "notifications": pages.notifications,
    "platform": pages.platform,
}


def _add_page(name: str) -> None:
    who = session_policy(*sorted(access.PAGES[name]))
    build = BUILDERS[name]

    async def show(request: Request, part: str | None = PART, c: Caller = Depends(who)) -> HTMLResponse:
        return _page_response(request, c, await build(_ctx(c)), part)

    async def export(table: str = Path(pattern=r"^[a-z_]{1,40}$"), c: Caller = Depends(who)) -> Response:
        return _csv(await build(_ctx(c, EXPORT_LIMIT)), table)

    router.add_api_route(f"/{name}", show, methods=["GET"], response_class=HTMLResponse, name=f"page_{name}",
                         summary=f"The {name} page")
    router.add_api_route(f"/{name}/export/{{table}}.csv", export, methods=["GET"], response_class=Response,
                         name=f"export_{name}", summary=f"A table of the {name} page as CSV")


def _csv(page: Page, table_id: str) -> Response:
    t = page.table(table_id)
    if t is None:
        raise ApiError(404, "table_not_found", f"no table {table_id} on this page")
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return Response(("\ufeff" + t.to_csv()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{page.name}-{t.id}-{stamp}.csv"',
                             "Cache-Control": "no-store"})


for _name in BUILDERS:
    _add_page(_name)

merchants_reader = session_policy(*sorted(access.PAGES["merchants"]))
arbitration_reader = session_policy(*sorted(access.PAGES["arbitration"]))
decider = session_policy(*sorted(access.DECIDERS))
any_console_role = session_policy(*sorted(access.CONSOLE_ROLES))
WEEK = Query(None, ge=date(2000, 1, 3), le=date(2100, 12, 27), description="a Monday (Beijing)")
MERCHANT_ID = Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f/]+$")
ORDER_ID = Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]+$")


def _monday(week: date | None) -> date | None:
    if week is not None and week.weekday() != 0:
        raise ApiError(422, "invalid_week", f"week must be a Monday, got {week.isoformat()}")
    return week


@router.get("/merchants", response_class=HTMLResponse, summary="Merchants: scorecards, ranking, flags, penalties, "
                                                              "billing, composite index")
async def merchants_page(request: Request, week: date | None = WEEK, part: str | None = PART,
                         c: Caller = Depends(merchants_reader)) -> HTMLResponse:
    return _page_response(request, c, await pages.merchants(_ctx(c), _monday(week)), part)


@router.get("/merchants/export/{table}.csv", response_class=Response, summary="A merchants table as CSV")
async def merchants_export(table: str = Path(pattern=r"^[a-z_]{1,40}$"), week: date | None = WEEK,
                           c: Caller = Depends(merchants_reader)) -> Response:
    return _csv(await pages.merchants(_ctx(c, EXPORT_LIMIT), _monday(week)), table)


@router.get("/merchants/{merchant_id}", response_class=HTMLResponse, summary="One merchant's drill-down")
async def merchant_page(request: Request, merchant_id: str = MERCHANT_ID, part: str | None = PART,
                        c: Caller = Depends(merchants_reader)) -> HTMLResponse:
    return _page_response(request, c, await pages.merchant(_ctx(c), merchant_id), part)


@router.get("/merchants/{merchant_id}/export/{table}.csv", response_class=Response,
            summary="A table of a merchant's drill-down as CSV")
async def merchant_export(merchant_id: str = MERCHANT_ID, table: str = Path(pattern=r"^[a-z_]{1,40}$"),
                          c: Caller = Depends(merchants_reader)) -> Response:
    return _csv(await pages.merchant(_ctx(c, EXPORT_LIMIT), merchant_id), table)


def _token_valid(c: Caller) -> bool:
    # the person's own token (from the sign-in) decides; the services check it on their clock
    return c.session.token_expires_at - timedelta(seconds=30) > c.rt.clock.now()


@router.get("/orders/{order_id}", response_class=HTMLResponse,
            summary="One order: full timeline, timers, messages; the arbitrator's decision")
async def order_page(request: Request, order_id: str = ORDER_ID, part: str | None = PART,
                     done: str | None = Query(None, max_length=40, pattern=r"^[a-z_]+$"),
                     c: Caller = Depends(arbitration_reader)) -> HTMLResponse:
    page = await pages.order(_ctx(c), order_id, _token_valid(c))
    return _page_response(request, c, page, part, done=done, order_id=order_id, refused=None)


@router.get("/orders/{order_id}/export/{table}.csv", response_class=Response, summary="A table of an order as CSV")
async def order_export(order_id: str = ORDER_ID, table: str = Path(pattern=r"^[a-z_]{1,40}$"),
                       c: Caller = Depends(arbitration_reader)) -> Response:
    return _csv(await pages.order(_ctx(c, EXPORT_LIMIT), order_id, _token_valid(c)), table)


async def read_form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise ApiError(413, "too_large", f"forms are limited to {MAX_FORM} bytes")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported_media_type", "send an HTML form (application/x-www-form-urlencoded)")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, "invalid_form", "the form is not valid UTF-8 form data") from None
    return {k: v[0][:4000] for k, v in fields.items()}


def _same_origin(request: Request) -> bool:
    """The browser's Origin names this console's host (the scheme is left out: behind a TLS
    proxy the console sees http while the browser says https)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # browsers send Origin with every POST; "null" is an opaque (hostile) one
    return urlsplit(origin).netloc == request.headers.get("host", "")


def check_csrf(request: Request, expected: str, form: dict[str, str]) -> None:
    """A console form posted from a console page: the session's token in the form (and, when
    the browser says where the form comes from, this origin)."""
    if not _same_origin(request) or not hmac.compare_digest(form.get("csrf_token", ""), expected):
        raise ApiError(403, "csrf_failed", "the form did not come from this console (reload the page and try again)")


@router.post("/orders/{order_id}/decision", response_class=HTMLResponse,
             summary="The arbitrator's binding decision (made by the orders service with the arbitrator's token)")
async def decide(request: Request, order_id: str = ORDER_ID, c: Caller = Depends(decider)) -> Response:
    form = await read_form(request)
    check_csrf(request, c.session.csrf, form)
    if not _token_valid(c):
        return RedirectResponse(f"/login?next={quote(f'/orders/{order_id}')}&why=reauth", status_code=303)
    try:
        await pages.decide(_ctx(c), c.session.token, order_id, form)
    except ServiceRefused as exc:
        if exc.status == 401:
            return RedirectResponse(f"/login?next={quote(f'/orders/{order_id}')}&why=reauth", status_code=303)
        page = await pages.order(_ctx(c), order_id, _token_valid(c))
        return _page_response(request, c, page, None, exc.status if exc.status < 500 else 502, done=None,
                              order_id=order_id,
                              refused=c.words("order.refused", message=exc.message))
    except ServiceUnavailable as exc:
        raise ApiError(503, "service_unavailable", f"{exc.service}: {exc.message}") from None
    return RedirectResponse(f"/orders/{quote(order_id, safe='')}?done=decided", status_code=303)


@router.post("/logout", summary="Sign out (ends the session)")
async def logout(request: Request, c: Caller = Depends(any_console_role)) -> Response:
    form = await read_form(request)
    check_csrf(request, c.session.csrf, form)
    await c.console.sessions.end(c.session.id_hash)
    response = RedirectResponse("/login?why=signed_out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", summary="The first page the caller may see", response_class=Response)
async def home(c: Caller = Depends(any_console_role)) -> Response:
    return RedirectResponse(f"/{access.pages_for(c.session.role)[0]}", status_code=303)


# ------------------------------------------------------------------------------------------ signing in
public = APIRouter(tags=["console"])


def _safe_next(value: str | None) -> str:
    """Only a path of this console (never another site: ``//host`` or a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    return value


@public.get("/login", response_class=HTMLResponse, summary="The sign-in form",
            dependencies=[Depends(Policy.public("the console's sign-in form"))])
async def login_form(request: Request, next: str | None = Query(None, max_length=500),
                     why: str | None = Query(None, pattern=r"^[a-z_]{1,20}$")) -> HTMLResponse:
    return _login(request, _safe_next(next), {"signed_out": "login.signed_out", "reauth": "order.reauth",
                                               "ended": "login.session_ended"}.get(why or ""), 200)


def _login(request: Request, next_path: str, message_key: str | None, status: int, client_id: str = "",
           **values) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    w = Words(lang_of(request))
    response = render(request, "login.html", status, next=next_path, client_id=client_id, csrf=token,
                      message=w(message_key, **values) if message_key else None, error=status >= 400)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/login",
                        secure=request.app.state.runtime.settings.cookie_secure)
    return response


@public.post("/login", response_class=HTMLResponse, summary="Sign in with operator or arbitrator credentials",
             dependencies=[Depends(Policy.public("the console's sign-in (checked by the orders token endpoint)"))])
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    client_id = form.get("client_id", "").strip()[:64]
    if not expected or not _same_origin(request) or not hmac.compare_digest(form.get("csrf_token", ""), expected):
        return _login(request, next_path, "login.expired_form", 403, client_id)
    secret = form.get("client_secret", "")
    if not client_id or not secret or len(secret) > 256:
        return _login(request, next_path, "login.invalid", 401, client_id)
    rt: Runtime = request.app.state.runtime
    console: Console = request.app.state.console
    try:
        cookie, _session = await signin.sign_in(
            console.gateway, console.sessions, rt.account_guard, secret=rt.settings.token_secret,
            client_id=client_id, client_secret=secret, platform_now=rt.clock.now(), wall_now=console.wall_clock(),
            ttl=timedelta(seconds=rt.settings.session_ttl_s))
    except SignInRefused as exc:
        key, status = {"throttled": ("login.throttled", 429), "unavailable": ("login.unavailable", 503),
                       "not_staff": ("login.not_staff", 403)}.get(exc.reason, ("login.invalid", 401))
        return _login(request, next_path, key, status, client_id, s=exc.retry_after_s or 0)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=rt.settings.session_ttl_s, httponly=True,
                        samesite="strict", path="/", secure=rt.settings.cookie_secure)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@public.get("/lang/{lang}", response_class=Response, summary="Switch the console's language (zh / en)",
            dependencies=[Depends(Policy.public("a display preference (cookie)"))])
async def switch_lang(request: Request, lang: str = Path(pattern="^(zh|en)$"),
                      next: str | None = Query(None, max_length=500)) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/",
                        secure=request.app.state.runtime.settings.cookie_secure)
    return response


def install(app) -> None:
    """Sign-in redirects and the forbidden page for the console's routes."""

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.query_params.get("part") == "live":
            # the page's own refresh: it sends the person to the sign-in form itself
            return Response(status_code=401, headers={"X-Console-Sign-In": "/login?why=ended"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        to = f"/login?next={quote(target)}" if request.method == "GET" else "/login?why=ended"
        response = RedirectResponse(to, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, _exc: NotAllowed) -> Response:
        return render(request, "forbidden.html", 403)
