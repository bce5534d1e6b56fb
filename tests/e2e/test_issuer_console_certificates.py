"""The console's certificate pages in Debian's Chromium (issue 12, points 2 and 4): a clerk (in
Chinese) and an approver (in English) sign in with password and TOTP, find a certificate by its
holder's exact name (the keyed blind index), open it — personal data masked — and unmask it with
a reason, which the audit trail records without the values. The jobs list and the issue form
(with a GB check's error beside its field) are audited too. Every page passes axe-core with 0
violations and the suite's own checks; screenshots go to
test-artifacts/e2e/issuer-console-certificates/.

No chain: certificates are stored by the real intake (`IssuerService.submit`, the runtime's data
key and blind index key) and the app is served by uvicorn in a thread of this process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn
from eth_account import Account
from sqlalchemy import select
from stack import AGENCY, artifact_dir, audit_accessibility, chromium, id_number

from issuer.api import create_app
from issuer.blind_index import blind_index_for
from issuer.models import Agency, AuditLogEntry
from issuer.runtime import IssuerRuntime
from issuer.service import IssuerService
from issuer.staff import Role, staff_accounts
from registry.chain.runner import free_port
from registry.settings import Settings
from registry.workspace import Workspace

DRIVING = "11100000000013338W002"
PASSWORD = "console-e2e-pass-2"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
HOLDERS = ["张三丰", "李大壮", "王秀英", "陈伟", "赵小红"]


@dataclass
class Site:
    url: str
    runtime: IssuerRuntime
    identifiers: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("issuer-console-certs") / ".ecert"
    runtime = IssuerRuntime.open(Workspace(Settings(home=home)))
    with runtime.sessions.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市公安局交通警察支队", region="330100"))
    signer = Account.create()
    service = IssuerService(
        runtime.sessions, runtime.settings.load_data_key(runtime.workspace.settings), chain_id=31337,
        registry_address="0x" + "11" * 20, signer_for=lambda _code: signer, processes=1,
        blind_index=blind_index_for(runtime),
    )  # fmt: skip
    records = [
        {"holder": {"name": name, "code": id_number(i)}, "number": f"3301{i:08d}", "validUntil": "2032-06-30",
         "ext": {"licenceClass": "C1", "address": f"浙江省杭州市西湖区文三路{100 + i}号", "birthDate": "1960-01-01"}}
        for i, name in enumerate(HOLDERS)
    ]  # fmt: skip
    job = service.submit(AGENCY, DRIVING, records, type_name="机动车驾驶证")
    assert not job.errors
    service.close()
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
        yield Site(f"http://127.0.0.1:{port}", runtime, job.identifiers)
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("issuer-console-certificates")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


WORDS = {
    "zh": {"username": "用户名", "password": "密码", "code": "动态验证码（验证器应用中的 6 位数字）", "submit": "登录",
           "search_link": "查询证照", "holder_name": "持证主体名称", "search": "查询", "reason": "查看明文的理由",
           "unmask": "查看明文", "jobs": "签发任务", "issue": "签发证照", "holder_code": "身份证件号码", "do_issue": "签发"},
    "en": {"username": "Username", "password": "Password", "code": "One-time code (6 digits from the authenticator app)",
           "submit": "Sign in", "search_link": "Find certificates", "holder_name": "Holder name", "search": "Search",
           "reason": "Reason to see the personal data", "unmask": "Show personal data", "jobs": "Issuing jobs"},
}  # fmt: skip


@pytest.mark.parametrize(("lang", "role", "holder"), [("zh", Role.CLERK, 1), ("en", Role.APPROVER, 3)])
def test_search_open_and_unmask_a_certificate(site: Site, browser: Any, shots: Path, lang: str, role: Role,
                                              holder: int) -> None:  # fmt: skip
    words = WORDS[lang]
    username = f"{role.value}{lang}"
    made = staff_accounts(site.runtime).add(AGENCY, role, username, f"{role.value} {lang}", PASSWORD)
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{site.url}/console/login?lang={lang}")
    page.get_by_label(words["username"], exact=True).fill(username)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_label(words["code"]).fill(pyotp.TOTP(made.secret).now())
    page.get_by_role("button", name=words["submit"]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()

    page.get_by_role("link", name=words["search_link"]).first.click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.get_by_label(words["holder_name"], exact=True).fill(HOLDERS[holder])
    page.get_by_role("button", name=words["search"], exact=True).click()
    page.wait_for_load_state()
    rows = page.locator("[data-hit]")
    assert rows.count() == 1 and rows.first.get_attribute("data-hit") == site.identifiers[holder]
    assert HOLDERS[holder] not in page.locator("[data-results]").inner_text()  # masked in the results
    assert page.locator("[data-masked-code]").inner_text().startswith("3301**")
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-search.png"), full_page=True)

    rows.first.locator("a").click()
    page.wait_for_load_state()
    main = page.locator("main").inner_text()
    assert HOLDERS[holder] not in main and id_number(holder) not in main
    assert page.locator('[data-path="holder.code"]').inner_text().startswith("3301**")
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-certificate-masked.png"), full_page=True)

    page.get_by_label(words["reason"]).fill(
        "持证人到窗口核对身份" if lang == "zh" else "holder at the counter"
    )
    page.get_by_role("button", name=words["unmask"]).click()
    page.wait_for_load_state()
    assert page.locator("[data-unmasked]").count() == 1
    assert page.locator('[data-path="holder.name"]').inner_text() == HOLDERS[holder]
    assert page.locator('[data-path="holder.code"]').inner_text() == id_number(holder)
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-certificate-unmasked.png"), full_page=True)
    with site.runtime.sessions() as session:
        entry = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "unmask", AuditLogEntry.actor == username)
        ).one()
    assert entry.subject == site.identifiers[holder]
    assert "holder.code" in json.loads(entry.details)["fields"]
    assert HOLDERS[holder] not in entry.details and id_number(holder) not in entry.details

    page.goto(f"{site.url}/console/certificates/{site.identifiers[holder]}?lang={lang}")  # masked again
    assert HOLDERS[holder] not in page.locator("main").inner_text()
    page.get_by_role("link", name=words["jobs"]).first.click()
    page.wait_for_load_state()
    assert page.locator("[data-job]").count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-jobs.png"), full_page=True)

    if role is Role.CLERK:  # the issue form: a wrong check character is shown beside its field
        page.goto(f"{site.url}/console/issue?type={DRIVING}&lang={lang}")
        audit_accessibility(page)
        page.get_by_label("姓名").fill("钱多多")
        code = id_number(9)
        page.get_by_label(words["holder_code"]).first.fill(code[:-1] + ("0" if code[-1] != "0" else "1"))
        page.get_by_role("button", name=words["do_issue"], exact=True).click()
        page.wait_for_load_state()
        error = page.locator('[data-error="holder.code"]')
        assert error.count() == 1 and "ID_CHECK_CHAR" in error.inner_text()
        audit_accessibility(page)
        page.screenshot(path=str(shots / f"{lang}-issue-form-error.png"), full_page=True)
    context.close()
