"""What every page needs: the signed-in holder (from the session cookie), language and elder
mode, the CSRF token, and rendering. Routes depend on `PageDep` / `HolderDep` and, for posts,
`FormDep` (the form, after its CSRF token was checked)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.staff_auth import same_origin as origin_matches
from wallet.holders import LANGS, HolderView
from wallet.i18n import field_label, reason_text, translator
from wallet.runtime import WalletRuntime
from wallet.services import ServiceRefused
from wallet.sessions import SignedIn

SESSION_COOKIE = "wallet_session"
PRE_COOKIE = "wallet_pre"  # binds the CSRF token of the sign-in and registration forms
PREFS_COOKIE = "wallet_prefs"  # language and elder mode before signing in: "zh.0", "en.1"
CHINA = ZoneInfo("Asia/Shanghai")

templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)


class LoginRequired(EcertError):
    code = ErrorCode.LOGIN_REQUIRED


class CsrfRejected(EcertError):
    code = ErrorCode.CSRF_INVALID


def http_status(exc: EcertError) -> int:
    """A neighbour's refusal keeps the neighbour's status (a 5xx is our 502); the rest is the code's."""
    if isinstance(exc, ServiceRefused):
        return exc.status if 400 <= exc.status < 500 else 502
    return exc.code.status


def runtime(request: Request) -> WalletRuntime:
    rt: WalletRuntime = request.app.state.runtime
    return rt


def anonymous_prefs(request: Request) -> tuple[str, bool]:
    raw = request.cookies.get(PREFS_COOKIE, "")
    lang, _, elder = raw.partition(".")
    return (lang if lang in LANGS else "zh"), elder == "1"


@dataclass
class Page:
    request: Request
    rt: WalletRuntime
    holder: HolderView | None
    signed_in: SignedIn | None
    lang: str
    elder: bool

    @property
    def t(self) -> Callable[..., str]:
        return translator(self.lang)

    @property
    def csrf_binding(self) -> str | None:
        if self.signed_in:
            return f"session:{self.signed_in.token_hash}"
        pre = getattr(self.request.state, "pre", None)
        return f"pre:{pre}" if pre else None

    @property
    def csrf_token(self) -> str:
        return self.rt.csrf.token(self.csrf_binding or "")

    @property
    def client_ip(self) -> str:
        return client_address(self.request, self.rt.settings.trusted_proxies)

    def render(
        self, name: str, status_code: int = 200, headers: dict[str, str] | None = None, **values: Any
    ) -> HTMLResponse:
        html = templates.get_template(name).render(
            page=self, t=self.t, lang=self.lang, field_label=field_label, when=when,
            reason=lambda code: reason_text(self.lang, code), **values,
        )  # fmt: skip
        return HTMLResponse(html, status_code=status_code, headers=headers)


@dataclass
class SignedInPage(Page):
    """The page of a signed-in holder (`HolderDep`): its `holder` is set."""

    holder: HolderView


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The client's address: the connection's, unless it comes from a proxy named in
    `trusted_proxies`; then the `X-Forwarded-For` hop nearest to us that is not such a proxy
    (hops further left were written by the client and prove nothing)."""
    peer = request.client.host if request.client else "unknown"
    networks = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]

    def trusted(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in networks)

    if not networks or not trusted(peer):
        return peer
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",")]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a hop that is no address: nothing beyond it can be believed
    return peer


def page(request: Request) -> Page:
    rt = runtime(request)
    signed_in = rt.logins.resolve(request.cookies.get(SESSION_COOKIE))
    holder = None
    if signed_in:
        try:
            holder = rt.holders.get(signed_in.holder_id)
        except EcertError:
            signed_in = None
    lang, elder = (holder.lang, holder.elder) if holder else anonymous_prefs(request)
    asked = request.query_params.get("lang")
    return Page(request, rt, holder, signed_in, asked if asked in LANGS else lang, elder)


PageDep = Annotated[Page, Depends(page)]


def signed_in_page(p: PageDep) -> SignedInPage:
    if p.holder is None:
        raise LoginRequired("Sign in first")
    return SignedInPage(p.request, p.rt, p.holder, p.signed_in, p.lang, p.elder)


HolderDep = Annotated[SignedInPage, Depends(signed_in_page)]


def same_origin(request: Request) -> bool:
    """Browsers send Origin on posts: it must be this site (defence in depth besides the token).
    Behind a proxy that rewrites Host, set ECERT_WALLET_PUBLIC_URL to the site's own origin."""
    public: str | None = request.app.state.runtime.settings.public_url
    return origin_matches(request.headers.get("origin"), request.headers.get("host", ""), public)


async def checked_form(request: Request, p: PageDep) -> FormData:
    form = await request.form(max_files=1, max_fields=100)
    token = form.get("csrf_token")
    if not same_origin(request) or not p.rt.csrf.check(
        p.csrf_binding, token if isinstance(token, str) else None
    ):
        raise CsrfRejected(
            "This form is out of date or did not come from this site: go back, reload the page and try again"
        )
    return form


FormDep = Annotated[FormData, Depends(checked_form)]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no `//`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def set_session_cookie(request: Request, response: Response, token: str | None) -> None:
    secure = request.app.state.runtime.settings.cookie_secure
    secure = request.url.scheme == "https" if secure is None else secure
    if token is None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    else:
        response.set_cookie(SESSION_COOKIE, token, path="/", secure=secure, httponly=True, samesite="lax")


def when(moment: dt.datetime | str | None, seconds: bool = False) -> str:
    """A moment in Beijing time, as holders read it."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    local = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(CHINA)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
