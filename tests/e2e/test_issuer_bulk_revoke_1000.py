"""Issue 12's acceptance test at full size, on the whole stack (chain, issuer with its outbox,
verifier) in Debian's Chromium, as each role: a clerk proposes to revoke 1,000 certificates by
uploading a CSV at /console/status/new and cannot approve it; an auditor reads it and can change
nothing; an approver approves it; the issuer's outbox sends `revokeCertificates` (decoded here
from the chain's own transactions) until the proposal is confirmed; then the verifier, asked over
real HTTP (`POST /v1/verifications`), reports every one of the 1,000 revoked with the reason
(07 吊销). axe-core finds 0 violations on every page; screenshots go to
test-artifacts/e2e/issuer-bulk-revoke/, the steps' durations to timings.json there."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyotp
import pytest
from stack import AGENCY, ECERT, TYPE, Stack, artifact_dir, audit_accessibility, chromium, stack_for

from registry.certificate.identifiers import id_number_check_char
from registry.chain.client import ChainClient
from registry.deploy import Deployment

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
PASSWORD = "revoke-e2e-pass-1"
COUNT = 1000
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
SIGN_IN = {
    "zh": ("用户名", "密码", "动态验证码", "登录"),
    "en": ("Username", "Password", "One-time code", "Sign in"),
}


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def id_number(serial: int) -> str:
    """A valid 公民身份号码 (杭州市拱墅区, born on a day of 1972–1974 given by `serial`)."""
    birth = time.strftime("%Y%m%d", time.gmtime((800 + serial) * 86400))
    body = f"330105{birth}{serial % 1000:03d}"
    return body + id_number_check_char(body)


def issue(stack: Stack) -> list[str]:
    """1,000 business licences in one batch through the API; their identifiers once on chain."""
    records = [{"holder": {"name": f"吊销户{i}", "code": id_number(i)}, "validUntil": "2045-12-31",
                "number": f"3301058000{i:05d}", "ext": {"type": "个体工商户", "address": f"浙江省杭州市拱墅区湖墅南路{i}号"}}
               for i in range(COUNT)]  # fmt: skip
    with stack.issuer_client() as api:
        made = api.post("/v1/batches", json={"typeCode": TYPE, "typeName": "营业执照", "records": records})
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        state = until(lambda: api.get(f"/v1/jobs/{job_id}").json(), lambda s: s["done"], 120, "issuing")
    assert not state["errors"] and state["counts"]["confirmed"] == COUNT, state
    with stack.issuer_db() as db:
        ids = [r[0] for r in db.execute("SELECT identifier FROM certificates WHERE job_id = ? ORDER BY position",
                                        (job_id,))]  # fmt: skip
    assert len(ids) == COUNT
    return ids


def until(read: Callable[[], Any], ok: Callable[[Any], bool], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"{what} did not finish: {value}"
        time.sleep(0.25)


def add_staff(stack: Stack, username: str, name: str, role: str) -> str:
    done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY, "--role", role, "--username",
                           username, "--name", name, "--password-stdin"], env=stack.env, input=PASSWORD + "\n",
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-2]


def signed_in(browser: Any, url: str, username: str, secret: str, lang: str) -> tuple[Any, Any]:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    words = SIGN_IN[lang]
    page.goto(f"{url}/console/login?lang={lang}")
    page.get_by_label(words[0], exact=True).fill(username)
    page.get_by_label(words[1], exact=True).fill(PASSWORD)
    page.get_by_label(words[2]).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name=words[3]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()
    return context, page


def refused_post(page: Any, url: str) -> int:
    """A POST from the page's own session, with its CSRF token and origin: only the role is wrong."""
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    origin = re.match(r"https?://[^/]+", url)
    assert origin
    answer = page.request.post(url, form={"csrf_token": token}, headers={"Origin": origin.group(0)})
    return int(answer.status)


def test_a_clerk_proposes_1000_revocations_an_approver_approves_the_verifier_agrees(
    stack: Stack, browser: Any
) -> None:
    shots = artifact_dir("issuer-bulk-revoke")
    timings: dict[str, float] = {}
    started = mark = time.monotonic()

    def lap(label: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[label] = round(now - mark, 2)
        mark = now

    with ThreadPoolExecutor(4) as pool:  # the staff accounts are made while the certificates anchor
        issued = pool.submit(issue, stack)
        made = {role: pool.submit(add_staff, stack, f"bulk-{role}", name, role)
                for role, name in (("clerk", "周经办"), ("approver", "吴审批"), ("auditor", "郑审计"))}  # fmt: skip
        ids, secrets = issued.result(), {role: future.result() for role, future in made.items()}
    lap("issue 1,000 + staff")
    url = stack.issuer.url

    # the clerk uploads the CSV and proposes; they cannot approve it
    context, page = signed_in(browser, url, "bulk-clerk", secrets["clerk"], "zh")
    page.locator("[data-status-link]").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.locator("[data-propose-link]").click()
    page.wait_for_load_state()
    page.get_by_label("原因（GB 状态代码）").select_option("7")
    page.get_by_label("CSV 文件").set_input_files(
        {
            "name": "revoke.csv",
            "mimeType": "text/csv",
            "buffer": ("identifier\r\n" + "\r\n".join(ids) + "\r\n").encode(),
        }
    )
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-clerk-propose.png"), full_page=True)
    page.get_by_role("button", name="提交审批").click()
    page.wait_for_load_state()
    assert page.locator('[data-state="proposed"]').count() == 1, page.locator("main").inner_text()
    proposal_id = page.locator("[data-proposal-id]").inner_text()
    proposal_url = f"{url}/console/status/{proposal_id}"
    assert (
        f"{COUNT:,}" in page.locator("main").inner_text() or str(COUNT) in page.locator("main").inner_text()
    )
    assert page.get_by_role("button", name="批准").count() == 0
    audit_accessibility(page)
    page.screenshot(path=str(shots / "zh-clerk-proposed.png"), full_page=True)
    assert refused_post(page, f"{proposal_url}/approve?lang=zh") == 403  # not their own
    context.close()
    lap("clerk proposes (Chromium)")

    # the auditor reads it and can change nothing
    context, page = signed_in(browser, url, "bulk-auditor", secrets["auditor"], "en")
    page.goto(f"{proposal_url}?lang=en")
    assert page.locator('[data-state="proposed"]').count() == 1
    assert page.get_by_role("button", name="Approve").count() == 0
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-auditor-reads.png"), full_page=True)
    for action in ("approve", "reject"):
        assert refused_post(page, f"{proposal_url}/{action}?lang=en") == 403
    page.goto(f"{url}/console/status/new?lang=en")
    assert page.locator('[data-problem="STAFF_ROLE_FORBIDDEN"]').count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-auditor-refused.png"), full_page=True)
    context.close()

    # the approver approves
    context, page = signed_in(browser, url, "bulk-approver", secrets["approver"], "en")
    page.goto(f"{url}/console/status?lang=en")
    row = page.locator(f'[data-pending-row="{proposal_id}"]')
    assert "周经办 (bulk-clerk)" in row.inner_text()
    audit_accessibility(page)
    row.get_by_role("link").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    # approved, or already further: the outbox may send (and confirm) between the POST and the page
    approved = '[data-state="approved"], [data-state="sent"], [data-state="confirmed"]'
    assert page.locator(approved).count() == 1, page.locator("main").inner_text()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-approver-approved.png"), full_page=True)
    lap("auditor + approver (Chromium)")

    # the outbox sends revokeCertificates until every transaction is confirmed
    def proposal_state() -> str:
        with sqlite3.connect(stack.home / "issuer" / "issuer.sqlite") as db:
            return str(
                db.execute("SELECT state FROM status_proposals WHERE id = ?", (int(proposal_id),)).fetchone()[
                    0
                ]
            )

    until(proposal_state, lambda s: s in ("confirmed", "failed"), 120, "the outbox")
    assert proposal_state() == "confirmed"
    with sqlite3.connect(stack.home / "issuer" / "issuer.sqlite") as db:
        chunks = db.execute("SELECT tx_hash, count, state FROM status_proposal_chunks WHERE proposal_id = ?",
                            (int(proposal_id),)).fetchall()  # fmt: skip
    assert sum(c[1] for c in chunks) == COUNT and {c[2] for c in chunks} == {"confirmed"}
    registry = Deployment.load(stack.home / "deployment.json").registry(
        ChainClient.connect(stack.env["ECERT_RPC_URL"])
    )
    w3 = registry.contract.w3
    for tx_hash, _, _ in chunks:
        function, arguments = registry.contract.decode_function_input(
            w3.eth.get_transaction(tx_hash)["input"]
        )
        assert (
            function.fn_name == "revokeCertificates"
            and w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
        )
        assert arguments  # root, the word and reason, the mask
    page.reload()
    assert page.locator('[data-state="confirmed"]').count() == 1, page.locator("main").inner_text()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "en-confirmed.png"), full_page=True)
    context.close()
    lap("outbox: revokeCertificates confirmed")

    # the verifier, over HTTP: every one of the 1,000 revoked, with the reason
    local = threading.local()

    def verify(identifier: str) -> dict[str, Any]:
        if not hasattr(local, "issuer"):  # one connection each to the issuer and the verifier per thread
            local.issuer = httpx.Client(
                base_url=url, timeout=60, headers={"Authorization": f"Bearer {stack.issuer_key}"}
            )
            local.verifier = httpx.Client(base_url=stack.verifier.url, timeout=60,
                                          headers={"Authorization": f"Bearer {stack.bank_key}"})  # fmt: skip
            clients.extend((local.issuer, local.verifier))
        package = local.issuer.get(f"/v1/certificates/{identifier}/package")
        assert package.status_code == 200, package.text
        answer = local.verifier.post(
            "/v1/verifications", json={"package": package.json(), "purpose": "吊销核对"}
        )
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        return report

    clients: list[httpx.Client] = []
    try:
        with ThreadPoolExecutor(16) as pool:
            reports = list(pool.map(verify, ids))
    finally:
        for client in clients:
            client.close()
    statuses = [next(c for c in r["checks"] if c["kind"] == "status") for r in reports]
    revoked = [r for r, s in zip(reports, statuses, strict=True)
               if r["verdict"] == "INVALID" and r["reason"] == "CERT_REVOKED" and s["code"] == "CERT_REVOKED"
               and s["evidence"].get("reason") == "07"]  # fmt: skip
    assert len(revoked) == COUNT, [(r["verdict"], r["reason"]) for r in reports if r not in revoked][:5]
    sample = statuses[COUNT // 2]
    assert sample["evidence"]["reasonZh"] == "吊销" and "revoked" in sample["evidence"]["reasonEn"].lower()
    assert "原因 07 吊销" in sample["message"] and "reason 07" in sample["message"]
    lap("verifier: 1,000 verifications")
    timings["total"] = round(time.monotonic() - started, 2)
    (shots / "timings.json").write_text(json.dumps(timings, indent=1))
    print("bulk revoke timings (s):", timings)
