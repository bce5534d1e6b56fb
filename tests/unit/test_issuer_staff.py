"""Agency staff of the issuer and the console's sign-in (issue 12, point 1): roles, the role
guard, password + TOTP (wrong, replayed), throttling per account and per address, CSRF on every
POST, cookies, disabled staff. On SQLite migrated by alembic, the console alone in a FastAPI app
(`issuer.api.console.install`) with a dummy route per role set behind `require_role`."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import httpx
import pyotp
import pytest
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse

from issuer.api import console
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency
from issuer.staff import IssuerStaff, Role, SignedInStaff, parse_role
from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.problems import install as install_problems
from registry.staff_auth import address_key

AGENCY, OTHER = "11330100002493028E", "114401000075021133"
PASSWORD = "console-pass-word-1"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def code(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(self.now)

    def next_step(self) -> None:
        self.now += dt.timedelta(seconds=30)


def wrong(secret: str, clock: Clock) -> str:
    return "000000" if clock.code(secret) != "000000" else "111111"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff(tmp_path: Path, clock: Clock) -> IssuerStaff:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    with made.begin() as session:
        session.add_all([Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"),
                         Agency(code=OTHER, name="广州市市场监督管理局", region="440100")])  # fmt: skip
    return IssuerStaff(made, secrets.token_bytes(32), secrets.token_bytes(32), clock=clock)


# ─── accounts and roles ──────────────────────────────────────────────────────────────────


def test_roles_are_the_four_of_the_issue_and_nothing_else(staff: IssuerStaff) -> None:
    assert [r.value for r in Role] == ["clerk", "approver", "auditor", "admin"]
    assert parse_role(" Approver ") is Role.APPROVER
    with pytest.raises(EcertError) as refused:
        parse_role("superuser")
    assert refused.value.code is ErrorCode.STAFF_ROLE_INVALID
    with pytest.raises(EcertError) as refused:
        staff.add(AGENCY, "root", "root1", "", PASSWORD)
    assert refused.value.code is ErrorCode.STAFF_ROLE_INVALID


def test_accounts_are_checked_listed_per_agency_and_disabled(staff: IssuerStaff) -> None:
    made = staff.add(AGENCY, Role.CLERK, "WangFang", "王芳", PASSWORD)
    assert made.username == "wangfang" and made.role is Role.CLERK
    assert made.uri.startswith("otpauth://totp/") and made.secret in made.uri
    staff.add(OTHER, "auditor", "chen", "陈", PASSWORD)
    for args, code in (
        ((AGENCY, Role.ADMIN, "wangfang", "x", PASSWORD), ErrorCode.STAFF_EXISTS),
        ((AGENCY, Role.ADMIN, "王 x", "x", PASSWORD), ErrorCode.USERNAME_INVALID),
        ((AGENCY, Role.ADMIN, "li", "x", "short"), ErrorCode.PASSWORD_WEAK),
        ((AGENCY, Role.ADMIN, "li", "x", "password123"), ErrorCode.PASSWORD_COMMON),  # the wallet's rule
        (("91330100MA27XYZ12A", Role.ADMIN, "li", "x", PASSWORD), ErrorCode.AGENCY_UNKNOWN),
    ):
        with pytest.raises(EcertError) as refused:
            staff.add(*args)
        assert refused.value.code is code, args
    mine = staff.members(AGENCY)
    assert [(m.username, m.role, m.agency_name, m.disabled) for m in mine] == [
        ("wangfang", Role.CLERK, "杭州市市场监督管理局", False)
    ]
    assert len(staff.members()) == 2
    assert staff.disable(made.id).disabled
    with pytest.raises(EcertError) as missing:
        staff.disable(999)
    assert missing.value.code is ErrorCode.STAFF_NOT_FOUND


def test_totp_secret_is_sealed_at_rest(staff: IssuerStaff) -> None:
    made = staff.add(AGENCY, Role.CLERK, "sealed", "", PASSWORD)
    with staff.auth.sessions() as session:
        from issuer.models import StaffMember

        row = session.get(StaffMember, made.id)
        assert row is not None
        assert made.secret.encode() not in row.totp_secret and PASSWORD not in row.password_hash


# ─── signing in ──────────────────────────────────────────────────────────────────────────


def test_sign_in_needs_the_password_and_a_fresh_totp_code(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.APPROVER, "lisi", "李四", PASSWORD)
    for password, code in (
        (PASSWORD, wrong(made.secret, clock)),
        ("wrong-password-1", clock.code(made.secret)),
    ):
        with pytest.raises(EcertError) as refused:
            staff.sign_in("lisi", password, code, network="10.0.0.1")
        assert refused.value.code is ErrorCode.STAFF_LOGIN_FAILED
    done = staff.sign_in("LiSi", PASSWORD, clock.code(made.secret), network="10.0.0.1")
    signed = staff.resolve(done.token)
    assert signed is not None and signed.member.role is Role.APPROVER and signed.member.agency_code == AGENCY
    with pytest.raises(EcertError) as replayed:  # the same code again, even within its 30 s
        staff.sign_in("lisi", PASSWORD, clock.code(made.secret), network="10.0.0.1")
    assert replayed.value.code is ErrorCode.STAFF_LOGIN_FAILED
    clock.next_step()
    assert staff.resolve(staff.sign_in("lisi", PASSWORD, clock.code(made.secret), network="10.0.0.1").token)
    staff.sign_out(done.token)
    assert staff.resolve(done.token) is None


def test_sessions_expire_when_idle(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.AUDITOR, "idle", "", PASSWORD)
    token = staff.sign_in("idle", PASSWORD, clock.code(made.secret), network="10.0.0.1").token
    clock.now += dt.timedelta(minutes=29)
    assert staff.resolve(token)
    clock.now += dt.timedelta(minutes=31)
    assert staff.resolve(token) is None


def test_throttled_per_account(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.CLERK, "zhao", "", PASSWORD)
    for n in range(5):
        with pytest.raises(EcertError) as refused:
            staff.sign_in("zhao", PASSWORD, wrong(made.secret, clock), network=f"10.0.1.{n}")
        assert refused.value.code is ErrorCode.STAFF_LOGIN_FAILED
    with pytest.raises(EcertError) as limited:  # even the right code from a new address waits
        staff.sign_in("zhao", PASSWORD, clock.code(made.secret), network="10.0.2.1")
    assert limited.value.code is ErrorCode.RATE_LIMITED and limited.value.details["retryAfter"] > 0
    clock.now += dt.timedelta(minutes=16)
    assert staff.sign_in("zhao", PASSWORD, clock.code(made.secret), network="10.0.2.1")


def test_ipv6_addresses_are_limited_by_their_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:10.0.0.7") == "10.0.0.7" and address_key("10.0.0.7") == "10.0.0.7"


# ─── the console over HTTP ───────────────────────────────────────────────────────────────


def console_app(staff: IssuerStaff, public_url: str | None = None) -> FastAPI:
    """The console alone, and dummy pages behind the role guard (what later console pages do)."""
    app = FastAPI()
    app.state.runtime = SimpleNamespace(settings=SimpleNamespace(public_url=public_url))
    app.state.console_staff = staff
    install_problems(app)
    console.install(app)
    extra = console.console_router()

    @extra.get("/console/test/approvals", response_class=HTMLResponse)
    def approvals(signed: Annotated[SignedInStaff, Depends(console.require_role(Role.APPROVER))]) -> str:
        return f"<p>approvals for {signed.member.username}</p>"

    @extra.get("/console/test/keys", response_class=HTMLResponse)
    def keys(signed: Annotated[SignedInStaff, Depends(console.require_role(Role.ADMIN))]) -> str:
        return "<p>keys</p>"

    @extra.get("/console/test/audit", response_class=HTMLResponse)
    def audit(
        signed: Annotated[SignedInStaff, Depends(console.require_role(Role.AUDITOR, Role.ADMIN))],
    ) -> str:
        return "<p>audit</p>"

    @extra.post("/console/test/draft", response_class=HTMLResponse)
    def draft(request: Request, signed: Annotated[SignedInStaff, Depends(console.require_role(Role.CLERK))],
              note: Annotated[str, Form()] = "") -> str:  # fmt: skip
        return f"<p>drafted {note}</p>"

    app.include_router(extra)
    return app


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


class SyncASGI(httpx.BaseTransport):
    """Requests straight to the ASGI app from a synchronous client, from one client address."""

    def __init__(self, app: FastAPI, address: str) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=(address, 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            return httpx.Response(
                response.status_code, headers=response.headers, content=await response.aread()
            )

        return asyncio.run(run())


def browser(app: FastAPI, address: str = "10.0.0.1", base_url: str = "http://testserver") -> httpx.Client:
    return httpx.Client(transport=SyncASGI(app, address), base_url=base_url, follow_redirects=False)


def sign_in(client: httpx.Client, username: str, secret: str, clock: Clock, lang: str = "zh") -> Any:
    page = client.get(f"/console/login?lang={lang}")
    assert page.status_code == 200
    return client.post(f"/console/login?lang={lang}", data={
        "csrf_token": csrf_of(page.text), "username": username, "password": PASSWORD, "code": clock.code(secret)})  # fmt: skip


def test_console_sign_in_home_and_sign_out(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.AUDITOR, "wu", "吴敏", PASSWORD)
    client = browser(console_app(staff))
    assert client.get("/console").headers["location"] == "/console/login?lang=zh"
    page = client.get("/console/login")
    assert "console_pre" in page.headers["set-cookie"] and 'name="code"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    done = sign_in(client, "wu", made.secret, clock, lang="en")
    assert done.status_code == 303 and done.headers["location"] == "/console?lang=en"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http and no https public URL
    home = client.get("/console?lang=en")
    assert home.status_code == 200 and home.headers["cache-control"] == "no-store"
    for text in ("杭州市市场监督管理局", AGENCY, "吴敏", 'data-role="auditor"', "Auditor", "Sign out"):
        assert text in home.text, text
    zh = client.get("/console")
    assert "审计员" in zh.text and "退出登录" in zh.text and 'lang="zh-CN"' in zh.text
    assert client.get("/console/login").headers["location"] == "/console?lang=zh"  # signed in already
    out = client.post("/console/logout", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login?lang=zh"
    assert client.get("/console").status_code == 303
    assert staff.resolve(done.cookies.get("console_session")) is None


def test_cookies_are_secure_when_the_service_is_https(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.CLERK, "tls", "", PASSWORD)
    behind_a_proxy = browser(console_app(staff, "https://issuer.example.gov.cn"))  # TLS ends before the app
    assert "Secure" in behind_a_proxy.get("/console/login").headers["set-cookie"]
    client = browser(console_app(staff), base_url="https://testserver")
    assert "Secure" in client.get("/console/login").headers["set-cookie"]
    done = sign_in(client, "tls", made.secret, clock)
    assert done.status_code == 303 and all("Secure" in c for c in done.headers.get_list("set-cookie"))
    assert client.get("/console").status_code == 200


@pytest.mark.parametrize("role", list(Role))
def test_the_role_guard_lets_each_role_only_where_it_is_allowed(
    role: Role, staff: IssuerStaff, clock: Clock
) -> None:
    made = staff.add(AGENCY, role, f"r-{role.value}", "", PASSWORD)
    client = browser(console_app(staff))
    anonymous = {
        path: client.get(path) for path in ("/console", "/console/test/approvals", "/console/test/keys")
    }
    assert all(
        r.status_code == 303 and r.headers["location"].startswith("/console/login")
        for r in anonymous.values()
    )
    assert sign_in(client, made.username, made.secret, clock).status_code == 303
    allowed = {
        "/console": True,  # every role has a home
        "/console/test/approvals": role is Role.APPROVER,
        "/console/test/keys": role is Role.ADMIN,
        "/console/test/audit": role in (Role.AUDITOR, Role.ADMIN),
    }
    for path, ok in allowed.items():
        answer = client.get(path)
        if ok:
            assert answer.status_code == 200, (role, path)
        else:
            assert answer.status_code == 403 and 'data-problem="STAFF_ROLE_FORBIDDEN"' in answer.text, (
                role,
                path,
            )
    token = csrf_of(client.get("/console").text)
    drafted = client.post("/console/test/draft", data={"csrf_token": token, "note": "吊销"})
    assert drafted.status_code == (200 if role is Role.CLERK else 403), role


def test_every_post_needs_the_csrf_token_of_this_session(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.CLERK, "csrf", "", PASSWORD)
    client = browser(console_app(staff))
    pre_token = csrf_of(client.get("/console/login").text)
    form = {"username": "csrf", "password": PASSWORD, "code": clock.code(made.secret)}
    for data, headers in (({**form}, {}), ({**form, "csrf_token": "0" * 64}, {}),
                          ({**form, "csrf_token": pre_token}, {"Origin": "https://evil.example"})):  # fmt: skip
        refused = client.post("/console/login", data=data, headers=headers)
        assert refused.status_code == 403 and 'data-problem="CSRF_INVALID"' in refused.text
        assert "console_session" not in refused.cookies
    stranger = browser(console_app(staff))  # another browser's pre-session cookie: its token does not fit
    stranger.get("/console/login")
    assert stranger.post("/console/login", data={**form, "csrf_token": pre_token}).status_code == 403
    assert client.post("/console/login", data={**form, "csrf_token": pre_token}).status_code == 303
    home = client.get("/console")
    forged = client.post(
        "/console/test/draft", data={"csrf_token": pre_token, "note": "x"}
    )  # the pre-session one
    assert forged.status_code == 403 and 'data-problem="CSRF_INVALID"' in forged.text
    assert client.post("/console/logout", data={}).status_code == 403
    assert client.get("/console").status_code == 200  # still signed in
    ok = client.post("/console/test/draft", data={"csrf_token": csrf_of(home.text), "note": "x"})
    assert ok.status_code == 200 and "drafted x" in ok.text
    anonymous = browser(console_app(staff)).post("/console/test/draft", data={"note": "x"})
    assert anonymous.status_code == 403  # no token: refused before the role guard is asked


def test_console_sign_in_refusals_and_throttling_per_address(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.CLERK, "qian", "钱", PASSWORD)
    staff.add(AGENCY, Role.CLERK, "sun", "孙", PASSWORD)
    other = staff.add(AGENCY, Role.APPROVER, "zhou", "周", PASSWORD)
    app = console_app(staff)
    client = browser(app, "10.0.0.9")
    token = csrf_of(client.get("/console/login").text)

    def attempt(who: httpx.Client, username: str, password: str, code: str, csrf: str) -> Any:
        return who.post(
            "/console/login",
            data={"csrf_token": csrf, "username": username, "password": password, "code": code},
        )

    bad_password = attempt(client, "qian", "not-the-password", clock.code(made.secret), token)
    assert bad_password.status_code == 401 and 'data-problem="STAFF_LOGIN_FAILED"' in bad_password.text
    assert 'value="qian"' in bad_password.text  # the username is kept, the password never
    bad_code = attempt(client, "qian", PASSWORD, wrong(made.secret, clock), token)
    assert bad_code.status_code == 401
    assert attempt(client, "qian", PASSWORD, clock.code(made.secret), token).status_code == 303
    client.cookies.clear()
    token = csrf_of(client.get("/console/login").text)
    replayed = attempt(client, "qian", PASSWORD, clock.code(made.secret), token)
    assert replayed.status_code == 401 and 'data-problem="STAFF_LOGIN_FAILED"' in replayed.text

    # one address guessing across many usernames: 30 attempts in 15 minutes, then 429
    statuses = [attempt(client, f"guess{n}", PASSWORD, "123456", token).status_code for n in range(30)]
    assert statuses == [401] * 27 + [429] * 3, statuses  # 3 failures above count too
    limited = attempt(client, "sun", PASSWORD, "123456", token)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert 'data-problem="RATE_LIMITED"' in limited.text
    # another address still signs in
    elsewhere = browser(app, "10.0.0.10")
    done = attempt(
        elsewhere, "zhou", PASSWORD, clock.code(other.secret), csrf_of(elsewhere.get("/console/login").text)
    )
    assert done.status_code == 303


def test_disabled_staff_cannot_sign_in_and_their_sessions_stop(staff: IssuerStaff, clock: Clock) -> None:
    made = staff.add(AGENCY, Role.ADMIN, "zheng", "郑强", PASSWORD)
    app = console_app(staff)
    client = browser(app)
    assert sign_in(client, "zheng", made.secret, clock).status_code == 303
    assert client.get("/console/test/keys").status_code == 200
    staff.disable(made.id)
    assert client.get("/console/test/keys").headers["location"].startswith("/console/login")
    clock.next_step()
    again = browser(app)
    refused = sign_in(again, "zheng", made.secret, clock)
    assert refused.status_code == 401 and 'data-problem="STAFF_LOGIN_FAILED"' in refused.text


def test_account_changes_and_every_sign_in_are_in_the_agency_s_audit_trail(
    staff: IssuerStaff, clock: Clock
) -> None:
    made = staff.add(AGENCY, Role.CLERK, "wangwu", "王五", PASSWORD)
    with pytest.raises(EcertError):
        staff.sign_in("wangwu", "wrong-password-1", clock.code(made.secret), network="10.0.0.1")
    with pytest.raises(EcertError):  # nobody's username: in no agency's trail
        staff.sign_in("nobody", PASSWORD, clock.code(made.secret), network="10.0.0.1")
    done = staff.sign_in("wangwu", PASSWORD, clock.code(made.secret), network="10.0.0.2")
    staff.sign_out(done.token)
    staff.disable(made.id)
    trail = list(staff.audit.entries(AGENCY))
    assert [(e.actor, e.action, e.subject) for e in trail] == [
        ("system", "staff_change", "wangwu"),
        ("wangwu", "sign_in_failed", "wangwu"),
        ("wangwu", "sign_in", "wangwu"),
        ("wangwu", "sign_out", "wangwu"),
        ("system", "staff_change", "wangwu"),
    ]
    assert trail[1].details == {"code": "STAFF_LOGIN_FAILED", "network": "10.0.0.1"}
    assert list(staff.audit.entries(OTHER)) == []
    assert staff.audit.verify(AGENCY).ok
