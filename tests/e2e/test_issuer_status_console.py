"""The console's status change pages (issue 12, point 5) in Debian's Chromium: a clerk uploads a
CSV with a bad row (the rows come back on the page), then a clean one; an approver, in English,
sees it pending, approves it, and looks up a certificate's changes. Every page is audited
(axe-core, 0 violations, and the suite's own checks); screenshots go to
test-artifacts/e2e/issuer-status/. No chain: the certificates are rows as anchoring leaves them,
and the outbox's chain side is tests/integration/test_status_outbox.py."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
import uvicorn
from sqlalchemy import insert
from stack import AGENCY, artifact_dir, audit_accessibility, chromium

from issuer.api import create_app
from issuer.models import Agency, Batch, Certificate, Job
from issuer.runtime import IssuerRuntime
from registry.chain.runner import free_port
from registry.settings import Settings
from registry.workspace import Workspace

ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
PASSWORD = "status-e2e-pass-1"
TYPE = "11100000000013338W001"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


@dataclass
class Console:
    url: str
    env: dict[str, str]
    identifiers: list[str]

    def add(self, username: str, name: str, role: str) -> str:
        done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY, "--role", role, "--username",
                               username, "--name", name, "--password-stdin"], env=self.env, input=PASSWORD + "\n",
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-2]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("issuer-status") / ".ecert"
    env = {**os.environ, "ECERT_HOME": str(home), "COLUMNS": "200"}
    runtime = IssuerRuntime.open(Workspace(Settings(home=home)))
    ids = [f"1.2.156.3005.2.{TYPE}.{AGENCY}.{i:06d}" for i in range(40)]
    with runtime.sessions.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
        job = Job(
            id=secrets.token_hex(8), agency_code=AGENCY, type_code=TYPE, request_hash="0" * 64, total=40
        )
        batch = Batch(
            agency_code=AGENCY, type_code=TYPE, root=secrets.token_bytes(32), count=40, state="confirmed"
        )
        session.add_all([job, batch])
        session.flush()
        session.execute(insert(Certificate), [
            {"identifier": x, "agency_code": AGENCY, "type_code": TYPE, "job_id": job.id, "position": i + 1,
             "state": "confirmed", "sealed_fields": b"", "digest": secrets.token_bytes(32), "batch_id": batch.id,
             "batch_index": i, "status": "active"} for i, x in enumerate(ids)])  # fmt: skip
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
        yield Console(f"http://127.0.0.1:{port}", env, ids)
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def sign_in(page: Any, url: str, username: str, secret: str, lang: str) -> None:
    words = {
        "zh": ("用户名", "密码", "动态验证码", "登录"),
        "en": ("Username", "Password", "One-time code", "Sign in"),
    }[lang]
    page.goto(f"{url}/console/login?lang={lang}")
    page.get_by_label(words[0], exact=True).fill(username)
    page.get_by_label(words[1], exact=True).fill(PASSWORD)
    page.get_by_label(words[2]).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name=words[3]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()


def test_propose_by_csv_then_approve_in_the_browser(console: Console, browser: Any) -> None:
    shots = artifact_dir("issuer-status")
    clerk_secret = console.add("zhanghua", "张华", "clerk")
    approver_secret = console.add("lina", "李娜", "approver")

    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    sign_in(page, console.url, "zhanghua", clerk_secret, "zh")
    page.locator("[data-status-link]").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.locator("[data-propose-link]").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-propose-form.png"), full_page=True)
    bad = "identifier\r\n" + "\r\n".join([*console.identifiers[:20], "没有这个证照"]) + "\r\n"
    page.get_by_label("原因（GB 状态代码）").select_option("7")
    page.get_by_label("CSV 文件").set_input_files(
        {"name": "ids.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    page.get_by_role("button", name="提交审批").click()
    page.wait_for_load_state()
    assert page.locator('[data-problem="PROPOSAL_INVALID_ROWS"]').count() == 1
    assert page.locator('[data-error-row="22"]').count() == 1  # line 22 of the file (line 1: the header)
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-propose-errors.png"), full_page=True)
    good = "identifier\r\n" + "\r\n".join(console.identifiers[:20]) + "\r\n"
    page.get_by_label("原因（GB 状态代码）").select_option("7")
    page.get_by_label("CSV 文件").set_input_files(
        {"name": "ids.csv", "mimeType": "text/csv", "buffer": good.encode()}
    )
    page.get_by_role("button", name="提交审批").click()
    page.wait_for_load_state()
    assert page.locator('[data-state="proposed"]').count() == 1, page.locator("main").inner_text()
    proposal_id = page.locator("[data-proposal-id]").inner_text()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-proposal.png"), full_page=True)
    context.close()

    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    sign_in(page, console.url, "lina", approver_secret, "en")
    page.goto(f"{console.url}/console/status?lang=en")
    row = page.locator(f'[data-pending-row="{proposal_id}"]')
    assert "张华 (zhanghua)" in row.inner_text() and "07 revoked as a penalty" in row.inner_text()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-pending.png"), full_page=True)
    row.get_by_role("link").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert page.locator('[data-state="approved"]').count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-approved.png"), full_page=True)
    page.locator(".ids a").first.click()
    page.wait_for_load_state()
    assert page.locator(f'[data-change="{proposal_id}"]').count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-certificate-changes.png"), full_page=True)
    context.close()
