"""The issuer's agency console `/console` in Debian's Chromium (issue 12, point 1): staff added
with `ecert issuer staff add` (password on standard input, TOTP secret printed once) sign in with
password and TOTP in Chinese and in English, see their agency, name and role, and sign out; a
member disabled with `ecert issuer staff disable` is signed out at once. Every page is audited
(axe-core, 0 violations, and the suite's own checks); screenshots go to
test-artifacts/e2e/issuer-console/.

No chain is needed: the agency is in the issuer's database already, and the app (`create_app`)
is served by uvicorn in a thread of this process, as `ecert serve issuer` serves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn
from stack import AGENCY, artifact_dir, audit_accessibility, chromium

from issuer.api import create_app
from issuer.models import Agency
from issuer.runtime import IssuerRuntime
from registry.chain.runner import free_port
from registry.settings import Settings
from registry.workspace import Workspace

ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
AGENCY_NAME = "杭州市市场监督管理局"
PASSWORD = "console-e2e-pass-1"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


@dataclass
class Console:
    url: str
    env: dict[str, str]

    def ecert(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*ECERT, *args], env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        return done.stdout

    def add(self, username: str, name: str, role: str) -> str:
        """`ecert issuer staff add`: the TOTP secret it prints once (and the URI holding it)."""
        out = self.ecert("issuer", "staff", "add", "--agency", AGENCY, "--role", role, "--username", username,
                         "--name", name, "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        secret, uri = out.strip().splitlines()[-2:]
        assert uri.startswith("otpauth://totp/") and secret in uri
        return secret


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("issuer-console") / ".ecert"
    env = {**os.environ, "ECERT_HOME": str(home), "COLUMNS": "200"}
    runtime = IssuerRuntime.open(Workspace(Settings(home=home)))
    with runtime.sessions.begin() as session:
        session.add(Agency(code=AGENCY, name=AGENCY_NAME, region="330100"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", proxy_headers=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the issuer did not start"
        time.sleep(0.02)
    try:
        yield Console(f"http://127.0.0.1:{port}", env)
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("issuer-console")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


WORDS = {
    "zh": {"username": "用户名", "password": "密码", "code": "动态验证码（验证器应用中的 6 位数字）", "submit": "登录",
           "out": "退出登录", "home": "控制台首页"},
    "en": {"username": "Username", "password": "Password", "code": "One-time code (6 digits from the authenticator app)",
           "submit": "Sign in", "out": "Sign out", "home": "Console home"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("lang", "username", "name", "role", "role_word"),
    [("zh", "wangfang", "王芳", "clerk", "经办人"), ("en", "chenwei", "陈伟", "approver", "Approver")],
)
def test_sign_in_to_the_console(
    console: Console,
    browser: Any,
    shots: Path,
    lang: str,
    username: str,
    name: str,
    role: str,
    role_word: str,
) -> None:
    secret = console.add(username, name, role)
    words = WORDS[lang]
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{console.url}/console?lang={lang}")
    assert page.url.endswith(f"/console/login?lang={lang}")
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-sign-in.png"), full_page=True)

    page.get_by_label(words["username"], exact=True).fill(username)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_label(words["code"]).fill("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.get_by_role("button", name=words["submit"]).click()
    page.wait_for_load_state()
    assert page.locator('[data-problem="STAFF_LOGIN_FAILED"]').count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-sign-in-refused.png"), full_page=True)

    page.get_by_label(words["password"], exact=True).fill(PASSWORD)  # the username was kept
    page.get_by_label(words["code"]).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name=words["submit"]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == words["home"]
    assert page.locator("[data-agency]").inner_text() == AGENCY_NAME
    assert page.locator("[data-staff-name]").inner_text() == name
    assert page.locator(f'[data-role="{role}"]').inner_text() == role_word
    cookie = next(c for c in context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-home.png"), full_page=True)

    if lang == "zh":
        page.get_by_role("button", name=words["out"]).click()
        page.wait_for_load_state()
        assert page.url.endswith("/console/login?lang=zh")
    else:  # disabled by an administrator: the open session ends at once
        [member] = [
            m
            for m in json.loads(console.ecert("issuer", "staff", "list", "--json"))
            if m["username"] == username
        ]
        assert member == {"id": member["id"], "username": username, "name": name, "role": role, "agency": AGENCY,
                          "disabled": False}  # fmt: skip
        console.ecert("issuer", "staff", "disable", "--id", str(member["id"]))
        page.reload()
        assert page.url.endswith(f"/console/login?lang={lang}")
    page.goto(f"{console.url}/console?lang={lang}")
    assert "/console/login" in page.url
    context.close()
