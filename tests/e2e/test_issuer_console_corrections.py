"""The console's correction queue (issue 12, point 9) in Debian's Chromium, on a real anvil chain:
holders' requests come in over HTTP (`POST /v1/corrections`, one of them 30 hours ago through the
service's injected clock, so overdue); a clerk sees it marked overdue in words, unmasks the
certificate with a reason, fixes it by renewal (version + 1, anchored by the worker, the renewed
package then given to the holder's token) and refuses another with a reason; an auditor reads
but cannot answer (403 page). Both answers are in the audit trail and `ecert audit verify`
passes; the dashboard's corrections panel equals counts made from the table. axe-core finds no
violation on the queue and the request pages; screenshots go to
test-artifacts/e2e/issuer-corrections/."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from pydantic import SecretStr
from service_process import ECERT, wait_for
from sqlalchemy import text
from stack import artifact_dir, audit_accessibility, chromium, csrf_of

from issuer.api import create_app
from issuer.audit import AuditLog
from issuer.corrections import CorrectionRequests
from issuer.dashboard import Scope, build
from issuer.runtime import IssuerRuntime
from issuer.serve import Background, register_agencies
from registry.certificate.presentation import Presentation
from registry.chain.runner import free_port
from registry.settings import Settings
from registry.workspace import Workspace

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"
HOLDER = "11010519491231002X"
PASSWORD = "corrections-e2e-pass-1"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


class Clock:
    """The correction service's clock: real time, shifted while a test makes an older request."""

    def __init__(self) -> None:
        self.shift = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.shift


@dataclass
class Console:
    url: str
    env: dict[str, str]
    runtime: IssuerRuntime
    clock: Clock
    packages: list[dict[str, Any]]

    def add(self, username: str, name: str, role: str) -> str:
        done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY, "--role", role, "--username",
                               username, "--name", name, "--password-stdin"], env=self.env, input=PASSWORD + "\n",
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-2]

    def ask(self, package: dict[str, Any], kind: str, field: str | None, message: str) -> dict[str, Any]:
        body = {"package": package, "holderCode": HOLDER, "kind": kind, "field": field, "message": message}
        answer = httpx.post(f"{self.url}/v1/corrections", json=body, timeout=30)
        assert answer.status_code == 201, answer.text
        made: dict[str, Any] = answer.json()
        return made


def _ecert(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"ecert {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("issuer-corrections")
    chain_port, password = free_port(), secrets.token_hex(12)
    env = {**os.environ, "ECERT_HOME": str(root / ".ecert"), "ECERT_CHAIN_PORT": str(chain_port),
           "ECERT_RPC_URL": f"http://127.0.0.1:{chain_port}", "ECERT_KEYSTORE_PASSWORD": password,
           "ECERT_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200"}  # fmt: skip
    _ecert(env, "chain", "up")
    try:
        _ecert(env, "deploy")
        _ecert(env, "authority", "add", "--region", "330000", "--name", "浙江省数据局")
        _ecert(env, "agency", "add", "--region", "330100", "--code", AGENCY, "--name", "杭州市市场监督管理局",
               "--types", TYPE)  # fmt: skip
        settings = Settings(home=root / ".ecert", rpc_url=env["ECERT_RPC_URL"], keystore_scrypt_n=1024,
                            keystore_password=SecretStr(password))  # fmt: skip
        runtime = IssuerRuntime.open(Workspace(settings))
        runtime.settings.batch_window_s = 0.1
        register_agencies(runtime)
        clock = Clock()
        runtime.__dict__["corrections"] = CorrectionRequests(  # the seam: the service's clock
            runtime.sessions, runtime.service, runtime.settings.load_data_key(settings),
            runtime.settings.correction_hours_for, audit=AuditLog(runtime.sessions), clock=clock,
        )  # fmt: skip
        background = Background(runtime)
        background.start()
        records = [{"holder": {"name": f"王{n}明", "code": HOLDER}, "validUntil": "2040-12-31",
                    "ext": {"legalRepresentative": "王明", "address": f"杭州市西湖区文三路{n}号"}} for n in range(3)]  # fmt: skip
        job = runtime.service.submit(AGENCY, TYPE, records, type_name="营业执照")
        wait_for(lambda: runtime.service.job(AGENCY, job.id).done, timeout_s=120)
        packages = [runtime.service.package(AGENCY, i).to_json() for i in job.identifiers]
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
            yield Console(f"http://127.0.0.1:{port}", env, runtime, clock, packages)
        finally:
            server.should_exit = True
            thread.join(10)
            background.close()
            runtime.close()
    finally:
        subprocess.run([*ECERT, "chain", "down"], env=env, capture_output=True, timeout=60, check=False)


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


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("issuer-corrections")  # emptied once: every test of the module adds its own


def test_a_clerk_fixes_one_by_renewal_and_refuses_another(
    console: Console, browser: Any, shots: Path
) -> None:
    console.clock.shift = -dt.timedelta(hours=30)  # made 30 hours ago: due 24 hours later, 6 hours overdue
    late = console.ask(console.packages[0], "field", "ext.address", "门牌号应为 88 号")
    console.clock.shift = dt.timedelta()
    renewal = console.ask(console.packages[1], "renewal", None, "请换发新证")
    waiting = console.ask(console.packages[2], "field", "holder.name", "名称有误")
    clerk_secret = console.add("zhanghua", "张华", "clerk")

    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    sign_in(page, console.url, "zhanghua", clerk_secret, "zh")
    page.goto(f"{console.url}/console/certificates?lang=zh")
    page.locator("[data-corrections-link]").click()
    page.wait_for_load_state()
    rows = page.locator("[data-corrections=open] tbody tr")
    assert [r.get_attribute("data-request") for r in rows.all()] == [late["id"], renewal["id"], waiting["id"]]
    overdue = page.locator(f'[data-request="{late["id"]}"]')
    assert overdue.get_attribute("data-overdue") is not None
    assert (
        "已逾期 6 小时" in overdue.locator('[data-deadline="overdue"]').inner_text()
    )  # in words, not colour alone
    assert page.locator("[data-overdue]").count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-queue.png"), full_page=True)

    overdue.get_by_role("link").click()
    page.wait_for_load_state()
    assert page.locator("[data-message]").inner_text() == "门牌号应为 88 号"
    assert page.locator('[data-path="ext.address"][data-masked]').count() == 1
    audit_accessibility(page)
    page.get_by_label("查看明文的理由").fill("核对持证人更正申请")
    page.get_by_role("button", name="查看明文").click()
    page.wait_for_load_state()
    assert page.locator("[data-unmasked]").count() == 1
    field = page.locator("#f-value")
    assert field.input_value() == "杭州市西湖区文三路0号"  # prefilled with the current value
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-request.png"), full_page=True)
    field.fill("杭州市西湖区文三路88号")
    page.get_by_label("答复说明（选填，持证人可见）").fill("已更正门牌号")
    page.get_by_role("button", name="换发新版本").click()
    page.wait_for_load_state()
    assert page.locator('[data-answered="fixed"]').count() == 1, page.locator("main").inner_text()
    new = page.locator("[data-new-identifier]").inner_text()
    assert new.split(".")[-2] == "002"
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-fixed.png"), full_page=True)

    page.goto(f"{console.url}/console/corrections/{renewal['id']}?lang=zh")
    page.get_by_role("button", name="不予更正").click()  # the browser asks for the required reason first
    assert page.locator('[data-answered="refused"]').count() == 0
    page.get_by_label("理由（必填，持证人可见）").fill("证照在有效期内，到期前三个月再申请换证")
    page.get_by_role("button", name="不予更正").click()
    page.wait_for_load_state()
    assert page.locator('[data-answered="refused"]').count() == 1
    assert page.locator("[data-reason]").inner_text() == "证照在有效期内，到期前三个月再申请换证"
    audit_accessibility(page)
    page.goto(f"{console.url}/console/corrections?status=answered&lang=zh")
    answered = {
        r.get_attribute("data-request") for r in page.locator("[data-corrections=answered] tbody tr").all()
    }
    assert answered == {late["id"], renewal["id"]}
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-answered.png"), full_page=True)
    context.close()

    def renewed() -> dict[str, Any] | None:  # the holder's wallet asks with its token
        answer = httpx.get(
            f"{console.url}/v1/corrections/{late['id']}", headers={"X-Correction-Token": late["token"]}
        ).json()
        return answer if answer["package"] else None

    answer = wait_for(renewed, timeout_s=120)
    assert (answer["status"], answer["newIdentifier"], answer["reason"]) == ("fixed", new, "已更正门牌号")
    values = Presentation.from_json(answer["package"]).values()
    assert (
        values["previousIdentifier"] == late["identifier"]
        and values["ext.address"] == "杭州市西湖区文三路88号"
    )
    refused = httpx.get(
        f"{console.url}/v1/corrections/{renewal['id']}", headers={"X-Correction-Token": renewal["token"]}
    )
    assert refused.json()["status"] == "refused" and refused.json()["package"] is None

    actions = [(e.action, e.subject) for e in AuditLog(console.runtime.sessions).entries(AGENCY)]
    assert ("correction_fix", late["identifier"]) in actions and (
        "correction_refuse",
        renewal["identifier"],
    ) in actions
    assert ("unmask", late["identifier"]) in actions
    _ecert(console.env, "audit", "verify", "--no-chain")  # exit status 0: every agency's log holds


def test_an_auditor_reads_but_cannot_answer(console: Console, browser: Any, shots: Path) -> None:
    waiting = console.ask(console.packages[2], "renewal", None, "请换证")
    auditor_secret = console.add("zhaomin", "赵敏", "auditor")
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    sign_in(page, console.url, "zhaomin", auditor_secret, "en")
    page.goto(f"{console.url}/console/corrections/{waiting['id']}?lang=en")
    assert (
        page.locator("[data-read-only]").count() == 1
        and page.locator("[data-fix], [data-refuse]").count() == 0
    )
    assert page.locator("[data-message-hidden]").count() == 1 and page.locator("[data-unmask]").count() == 0
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-auditor.png"), full_page=True)
    csrf = csrf_of(page.content())
    refused = page.request.post(f"{console.url}/console/corrections/{waiting['id']}/refuse?lang=en",
                                form={"csrf_token": csrf, "reason": "no"}, headers={"Origin": console.url})  # fmt: skip
    assert refused.status == 403 and "STAFF_ROLE_FORBIDDEN" in refused.text()
    context.close()
    assert console.runtime.corrections.get(AGENCY, waiting["id"]).status == "open"


def test_the_dashboard_panel_counts_what_the_table_holds(console: Console) -> None:
    now = dt.datetime.now(dt.UTC)
    with console.runtime.sessions() as session:
        due = [d if isinstance(d, dt.datetime) else dt.datetime.fromisoformat(d) for d in session.scalars(
            text("SELECT due_at FROM correction_requests WHERE status = 'open' AND agency_code = :a"), {"a": AGENCY})]  # fmt: skip
        scope = Scope.for_agency(session, AGENCY)
    due = [d if d.tzinfo else d.replace(tzinfo=dt.UTC) for d in due]
    figures = build(console.runtime.sessions, scope, now.date(), now.date())
    panel = figures.panels["corrections"]
    later = now + dt.timedelta(hours=24)
    assert panel.available and panel.rows == [
        ["overdue", sum(d < now for d in due)], ["due_24h", sum(now <= d < later for d in due)],
        ["later", sum(d >= later for d in due)],
    ]  # fmt: skip
    assert sum(n for _bucket, n in panel.rows) == len(due) >= 1
