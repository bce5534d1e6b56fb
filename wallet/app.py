"""The holder wallet: server-rendered pages (Jinja2, Chinese by default, English, elder mode)
and a small JSON API, on FastAPI. No front-end build: one stylesheet, one tiny script."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.metrics import install_metrics
from registry.problems import RateLimited, document, from_validation, problem
from registry.text_guard import RefuseBrokenText
from wallet.holders import LANGS
from wallet.i18n import problem_text
from wallet.routes import access, accounts, api, certificates, corrections, preferences, shares
from wallet.runtime import WalletRuntime
from wallet.web import (
    PRE_COOKIE,
    PREFS_COOKIE,
    SESSION_COOKIE,
    LoginRequired,
    anonymous_prefs,
    http_status,
    page,
    redirect,
)

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")  # fmt: skip
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No referrer to other sites (share links must not leak); same-origin keeps the Origin header on posts.
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), geolocation=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(runtime: WalletRuntime) -> FastAPI:
    app = FastAPI(title="ecert wallet", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RefuseBrokenText)  # inside `guard` below, so its 400 carries the pages' headers
    app.state.runtime = runtime
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
    for module in (accounts, certificates, corrections, shares, access, preferences, api):
        app.include_router(module.router)
    document(app, is_page=lambda path: not path.startswith("/api/"))  # pages answer problems as pages

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        pre = request.cookies.get(PRE_COOKIE)
        fresh_pre = None if pre and 20 <= len(pre) <= 64 else secrets.token_urlsafe(24)
        request.state.pre = pre if fresh_pre is None else fresh_pre
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages carry personal data
        secure = runtime.settings.cookie_secure
        secure = request.url.scheme == "https" if secure is None else secure
        if fresh_pre:
            response.set_cookie(
                PRE_COOKIE, fresh_pre, path="/", secure=secure, httponly=True, samesite="strict"
            )
        asked = request.query_params.get("lang")
        if asked in LANGS and SESSION_COOKIE not in request.cookies:  # ?lang= is remembered before signing in
            _, elder = anonymous_prefs(request)
            response.set_cookie(PREFS_COOKIE, f"{asked}.{int(elder)}", max_age=365 * 86400, path="/", secure=secure,
                                httponly=True, samesite="lax")  # fmt: skip
        return response

    def error_page(
        request: Request,
        status: int,
        code: ErrorCode,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        if _is_api(request):
            response = problem(request, code, message or code, status=status)
            response.headers.update(headers or {})
            return response
        try:
            p = page(request)
        except Exception:
            return Response(
                "Service unavailable / 服务暂不可用", status_code=503, media_type="text/plain; charset=utf-8"
            )
        return p.render(
            "error.html",
            status_code=status,
            headers=headers,
            code=code,
            text=problem_text(p.lang, code, message),
        )

    @app.exception_handler(EcertError)
    async def ecert_error(request: Request, exc: EcertError) -> Response:
        if isinstance(exc, LoginRequired):
            if _is_api(request):
                return problem(request, ErrorCode.AUTH_REQUIRED, "Sign in first")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={target}" if request.method == "GET" else "/login")
        headers = (
            {"Retry-After": str(exc.details.get("retryAfter", 60))} if isinstance(exc, RateLimited) else None
        )
        return error_page(request, http_status(exc), exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        error = from_validation(exc)
        if _is_api(request):  # 422 for any invalid request, JSON_INVALID too (400 on the issuer and verifier)
            return problem(request, error.code, error.message, status=422, field=error.details.get("field"))
        return error_page(request, 422, error.code, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            exc.status_code, ErrorCode.HTTP_ERROR
        )
        return error_page(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_page(request, 500, ErrorCode.INTERNAL)

    install_metrics(app)  # requests only: no holder's data is a metric
    return app
