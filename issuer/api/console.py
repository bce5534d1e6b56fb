"""/console: the agency console of the issuer (issue 12), server-rendered, Chinese by default and
English with `?lang=en`. Agency staff (`issuer.staff`, `ecert issuer staff add`) sign in with a
password and a TOTP code; the home page shows their agency, themselves and their role.

For the console's other pages:

* make their router with `console_router()`: every POST on it is refused (403 `CSRF_INVALID`)
  unless it comes from this origin with the form's `csrf_token` (bound to the session, or before
  sign-in to a pre-session cookie);
* guard a route with `Depends(require_role(Role.APPROVER, …))` (or `SignedIn` for any role): no
  session → GET redirects to the sign-in page, other methods 401; another role → 403
  `STAFF_ROLE_FORBIDDEN`;
* render with `render(request, "console_x.html", signed, …)` (the template extends
  `console_base.html`); forms post to `…?lang={{ lang }}` and carry `csrf_token`.

Cookies: the session (`console_session`) and the pre-session cookie are HttpOnly, SameSite=Strict,
path /console, and Secure when the issuer's public URL (`ECERT_ISSUER_PUBLIC_URL`) or the request
is https. Sign-in is throttled per username and per client network (`registry.staff_auth`)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from issuer.console_text import CONSOLE
from issuer.staff import IssuerStaff, Role, SignedInStaff, staff_accounts
from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.staff_auth import SignIn, address_key, same_origin

__all__ = ["SignedIn", "console_router", "install", "render", "require_role", "router"]

SESSION_COOKIE = "console_session"
PRE_COOKIE = "console_pre"  # binds the sign-in form's CSRF token before there is a session
COOKIE_PATH = "/console"
STYLESHEET = Path(__file__).parents[1] / "static" / "console.css"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=select_autoescape()
)


class ConsoleRefusal(Exception):
    """A console request refused before its route ran: rendered as a page, not problem+json."""

    def __init__(self, code: ErrorCode, signed: SignedInStaff | None) -> None:
        super().__init__(code.value)
        self.code, self.signed = code, signed


# ─── who is signed in ────────────────────────────────────────────────────────────────────


def console_staff(request: Request) -> IssuerStaff:
    """The app's staff accounts, made on first use (the data key and the HMAC key are read then)."""
    state = request.app.state
    if getattr(state, "console_staff", None) is None:
        state.console_staff = staff_accounts(state.runtime)
    staff: IssuerStaff = state.console_staff
    return staff


def signed_in(request: Request) -> SignedInStaff | None:
    """The staff member signed in at this browser, looked up once per request."""
    if not hasattr(request.state, "console_signed"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.console_signed = console_staff(request).resolve(token) if token else None
    found: SignedInStaff | None = request.state.console_signed
    return found


def require_role(*roles: Role) -> Callable[[Request], SignedInStaff]:
    """A dependency: the signed-in staff member, if their role is one of `roles` (any role if none)."""
    allowed = frozenset(roles or Role)

    def dependency(request: Request) -> SignedInStaff:
        signed = signed_in(request)
        if signed is None:
            raise ConsoleRefusal(ErrorCode.LOGIN_REQUIRED, None)
        if signed.member.role not in allowed:
            raise ConsoleRefusal(ErrorCode.STAFF_ROLE_FORBIDDEN, signed)
        return signed

    dependency.__name__ = "require_" + "_or_".join(sorted(r.value for r in allowed))
    return dependency


SignedIn = Annotated[SignedInStaff, Depends(require_role())]


# ─── CSRF ────────────────────────────────────────────────────────────────────────────────


def _binding(request: Request, signed: SignedInStaff | None) -> str | None:
    if signed:
        return f"session:{signed.token_hash}"
    pre = getattr(request.state, "console_pre", None) or request.cookies.get(PRE_COOKIE)
    return f"pre:{pre}" if pre else None


async def csrf_guard(request: Request) -> None:
    """Every POST: from this origin, with the form's `csrf_token` bound to this browser."""
    if request.method != "POST":
        return
    form = await request.form()  # parsed once: the route's Form parameters read the same
    given = form.get("csrf_token")
    token = given if isinstance(given, str) and len(given) <= 100 else None
    signed = await run_in_threadpool(signed_in, request)  # a database read: off the event loop
    if not same_origin(request.headers.get("origin"), request.headers.get("host", "")) or not console_staff(
        request
    ).csrf_ok(_binding(request, signed), token):
        raise ConsoleRefusal(ErrorCode.CSRF_INVALID, signed)


def console_router(**options: Any) -> APIRouter:
    """A router for console pages: CSRF checked on every POST, kept out of the API's OpenAPI."""
    return APIRouter(dependencies=[Depends(csrf_guard)], include_in_schema=False, **options)


router = console_router(tags=["console"])


# ─── pages ───────────────────────────────────────────────────────────────────────────────


def beijing_time(moment: dt.datetime | None) -> str:
    """A time as the console shows it: China Standard Time (UTC+8), to the minute."""
    if moment is None:
        return ""
    return moment.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")


def lang_of(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _secure(request: Request) -> bool:
    public_url = getattr(request.app.state.runtime.settings, "public_url", None)
    return bool(public_url and str(public_url).startswith("https://")) or request.url.scheme == "https"


def _cookie(response: Response, request: Request, name: str, value: str | None) -> None:
    secure = _secure(request)
    if value is None:
        response.delete_cookie(name, path=COOKIE_PATH, secure=secure, httponly=True, samesite="strict")
    else:
        response.set_cookie(name, value, path=COOKIE_PATH, secure=secure, httponly=True, samesite="strict")


def render(request: Request, template: str, signed: SignedInStaff | None, status: int = 200,
           **context: Any) -> HTMLResponse:  # fmt: skip
    """A console page in the request's language, with the CSRF token its forms carry."""
    lang = lang_of(request)
    new_pre = None
    if signed is None and not request.cookies.get(PRE_COOKIE):
        new_pre = request.state.console_pre = secrets.token_urlsafe(24)
    html = _templates.get_template(template).render(
        t=CONSOLE[lang], lang=lang, staff=signed.member if signed else None,
        csrf=console_staff(request).csrf_token(_binding(request, signed) or ""), **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store", "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff"})  # fmt: skip
    if new_pre:
        _cookie(response, request, PRE_COOKIE, new_pre)
    return response


def _sign_in_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, "console_login.html", None, status, **context)


def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    lang = lang_of(request)
    if exc.code is ErrorCode.LOGIN_REQUIRED and request.method in ("GET", "HEAD"):
        return RedirectResponse(f"/console/login?lang={lang}", status_code=303)
    if exc.signed is None:
        return _sign_in_page(request, exc.code.status, problem=exc.code.value)
    return render(request, "console_refused.html", exc.signed, exc.code.status, problem=exc.code.value)


def install(app: FastAPI) -> None:
    """The console's routes and its refusals (pages, not problem+json)."""
    app.include_router(router)
    app.add_exception_handler(ConsoleRefusal, _refused)


@router.get("/console", response_class=HTMLResponse)
def home(request: Request, signed: SignedIn) -> HTMLResponse:
    """The console's home: the agency, the staff member and what their role may do."""
    return render(request, "console_home.html", signed)


@router.get("/console/login", response_model=None)
def sign_in_form(request: Request) -> Response:
    if signed_in(request) is not None:
        return RedirectResponse(f"/console?lang={lang_of(request)}", status_code=303)
    return _sign_in_page(request)


def attempt_sign_in(staff: IssuerStaff, username: str, password: str, code: str, network: str) -> SignIn:
    """The one place a console sign-in succeeds or fails (`IssuerStaff.sign_in` audits both)."""
    return staff.sign_in(username, password, code, network=network)


@router.post("/console/login", response_model=None)
def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    host = request.client.host if request.client else "unknown"
    try:
        done = attempt_sign_in(console_staff(request), username, password, code, address_key(host))
    except EcertError as exc:
        status = exc.code.status if 400 <= exc.code.status < 600 else 400
        page = _sign_in_page(request, status, problem=exc.code.value, username=username)
        if exc.code is ErrorCode.RATE_LIMITED and "retryAfter" in exc.details:
            page.headers["Retry-After"] = str(exc.details["retryAfter"])
        return page
    response = RedirectResponse(f"/console?lang={lang_of(request)}", status_code=303)
    _cookie(response, request, SESSION_COOKIE, done.token)
    _cookie(response, request, PRE_COOKIE, None)
    return response


@router.post("/console/logout", response_model=None)
def sign_out(request: Request, signed: SignedIn) -> Response:
    console_staff(request).sign_out(request.cookies.get(SESSION_COOKIE))  # audited
    response = RedirectResponse(f"/console/login?lang={lang_of(request)}", status_code=303)
    _cookie(response, request, SESSION_COOKIE, None)
    return response


@router.get("/console/static/console.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip
