"""Sign up, sign in, sign out, and the home page."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from starlette.datastructures import FormData

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.problems import RateLimited
from wallet.i18n import problem_text
from wallet.routes.access import unread_count
from wallet.routes.certificates import cards_with_status
from wallet.web import FormDep, PageDep, SignedInPage, http_status, redirect, safe_next, set_session_cookie

router = APIRouter(tags=["accounts"])


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/", summary="Home")
def home(p: PageDep) -> Response:
    if p.holder is None:
        return p.render("welcome.html")
    if p.elder:
        holder = SignedInPage(p.request, p.rt, p.holder, p.signed_in, p.lang, p.elder)
        return p.render("home.html", items=cards_with_status(holder), unread=unread_count(holder))
    return redirect("/certificates")


@router.get("/register", summary="Registration form")
def register_form(p: PageDep) -> Response:
    if p.holder:
        return redirect("/")
    return p.render("register.html", values={}, error=None)


@router.post("/register", summary="Register a holder")
def register(p: PageDep, form: FormDep) -> Response:
    values = {"name": _text(form, "name"), "id_number": _text(form, "id_number")}
    password, confirm = _text(form, "password"), _text(form, "password_confirm")
    try:
        if password != confirm:
            raise EcertError(
                "The two passwords differ", code=ErrorCode.PASSWORD_MISMATCH, field="password_confirm"
            )
        holder = p.rt.holders.register(
            values["name"], values["id_number"], password, ip=p.client_ip, lang=p.lang, elder=p.elder
        )
    except EcertError as exc:
        headers = (
            {"Retry-After": str(exc.details.get("retryAfter", 60))} if isinstance(exc, RateLimited) else None
        )
        error = {
            "code": exc.code,
            "field": exc.details.get("field"),
            "text": problem_text(p.lang, exc.code, exc.message),
        }
        return p.render(
            "register.html", status_code=http_status(exc), headers=headers, values=values, error=error
        )
    response = redirect("/claim?welcome=1")
    set_session_cookie(p.request, response, p.rt.logins.create(holder.id))
    return response


@router.get("/login", summary="Sign-in form")
def login_form(p: PageDep, next: str | None = Query(None, max_length=300)) -> Response:
    if p.holder:
        return redirect(safe_next(next))
    return p.render("login.html", next=safe_next(next), error=None, id_number="")


@router.post("/login", summary="Sign in")
def login(p: PageDep, form: FormDep) -> Response:
    target, id_number = safe_next(_text(form, "next")), _text(form, "id_number")
    try:
        holder = p.rt.holders.authenticate(id_number, _text(form, "password"), ip=p.client_ip)
    except EcertError as exc:
        headers = (
            {"Retry-After": str(exc.details.get("retryAfter", 60))} if isinstance(exc, RateLimited) else None
        )
        error = {"code": exc.code, "text": problem_text(p.lang, exc.code, exc.message)}
        return p.render(
            "login.html",
            status_code=http_status(exc),
            headers=headers,
            next=target,
            error=error,
            id_number=id_number,
        )
    if p.signed_in:  # a new session on every sign-in (no fixation)
        p.rt.logins.end(p.request.cookies.get("wallet_session"))
    response = redirect(target)
    set_session_cookie(p.request, response, p.rt.logins.create(holder.id))
    return response


@router.post("/logout", summary="Sign out")
def logout(p: PageDep, form: FormDep) -> Response:
    p.rt.logins.end(p.request.cookies.get("wallet_session"))
    response = redirect("/")
    set_session_cookie(p.request, response, None)
    return response
