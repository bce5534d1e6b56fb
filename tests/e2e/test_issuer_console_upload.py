"""The console's upload (issue 12, point 3) on the whole stack in Debian's Chromium: a clerk
uploads a 2,000-row CSV made here (two rows bad) and watches the job page's `<progress>` climb to
its maximum without the page reloading (its local script polls the job's JSON); the refused rows
are listed by data row and downloaded as CSV; the page works in zh and en, without script too
(it reloads itself), and every page passes axe-core with 0 violations. Screenshots go to
test-artifacts/e2e/issuer-upload/."""

from __future__ import annotations

import csv
import io
import subprocess
import time
from typing import Any

import pyotp
import pytest
from stack import AGENCY, ECERT, TYPE, Stack, artifact_dir, audit_accessibility, chromium, stack_for

from registry.certificate.identifiers import id_number_check_char

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
PASSWORD = "upload-e2e-pass-1"
ROWS = 2000
BAD = (500, 1500)  # data rows with a wrong check character
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
WORDS = {
    "zh": {"user": "用户名", "password": "密码", "totp": "动态验证码", "signin": "登录", "file": "数据文件（CSV、JSONL 或 JSON）",
           "submit": "上传并签发", "done": "已处理 {n} / {n} （已完成）", "download": "下载全部被拒绝的行（CSV）"},
    "en": {"user": "Username", "password": "Password", "totp": "One-time code", "signin": "Sign in",
           "file": "Records file (CSV, JSONL or JSON)", "submit": "Upload and issue", "done": "Processed {n} / {n} (done)",
           "download": "Download every refused row (CSV)"},
}  # fmt: skip


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Any:
    with chromium() as launched:
        yield launched


def id_number(serial: int) -> str:
    """A valid 公民身份号码 (杭州市上城区, born on a day of 1970–1975 given by `serial`)."""
    birth = time.strftime("%Y%m%d", time.gmtime(serial * 86400))
    body = f"330102{birth}{serial % 1000:03d}"
    return body + id_number_check_char(body)


def records_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["holder.name", "holder.code", "number", "validUntil", "ext.type", "ext.address"])
    for row in range(1, rows + 1):
        code = id_number(row)
        if row in BAD:
            code = code[:-1] + ("1" if code[-1] != "1" else "2")
        writer.writerow([f"上传户{row}", code, f"3301027000{row:05d}", "2045-12-31", "个体工商户",
                         f"浙江省杭州市上城区解放路{row}号"])  # fmt: skip
    return out.getvalue().encode()


def add_clerk(stack: Stack, username: str) -> str:
    done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY, "--role", "clerk", "--username",
                           username, "--name", "王上传", "--password-stdin"], env=stack.env, input=PASSWORD + "\n",
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-2]


def sign_in(page: Any, url: str, username: str, secret: str, lang: str) -> None:
    words = WORDS[lang]
    page.goto(f"{url}/console/login?lang={lang}")
    page.get_by_label(words["user"], exact=True).fill(username)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_label(words["totp"]).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name=words["signin"]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_upload_2000_rows_and_watch_the_progress(stack: Stack, browser: Any, lang: str) -> None:
    shots = artifact_dir(f"issuer-upload-{lang}")
    words = WORDS[lang]
    secret = add_clerk(stack, f"upload-{lang}")
    context = browser.new_context(**DESKTOP, accept_downloads=True)
    page = context.new_page()
    sign_in(page, stack.issuer.url, f"upload-{lang}", secret, lang)
    page.goto(f"{stack.issuer.url}/console/jobs?lang={lang}")
    page.locator("[data-upload-link]").click()
    page.wait_for_load_state()
    audit_accessibility(page)
    page.screenshot(path=str(shots / "upload-form.png"), full_page=True)

    page.locator("#f-type").select_option(TYPE)
    page.get_by_label(words["file"]).set_input_files(
        {"name": "records.csv", "mimeType": "text/csv", "buffer": records_csv(ROWS)}
    )
    page.get_by_role("button", name=words["submit"]).click()
    page.wait_for_url("**/console/jobs/*")
    bar = page.locator("progress[data-progress]")
    assert bar.get_attribute("max") == str(ROWS)
    first = int(bar.get_attribute("value") or 0)
    page.evaluate("() => { window.sameDocument = true; }")
    audit_accessibility(page)
    page.screenshot(path=str(shots / "job-in-progress.png"), full_page=True)
    assert first < ROWS, "the job was done before its page showed: nothing left to watch"
    seen = [first]
    deadline = time.monotonic() + 120
    while seen[-1] < ROWS:
        assert time.monotonic() < deadline, f"the progress stopped at {seen[-1]}"
        page.wait_for_timeout(100)
        seen.append(int(page.evaluate("() => document.querySelector('progress[data-progress]').value")))
    assert seen == sorted(seen)  # it only climbs
    assert page.evaluate("() => window.sameDocument === true")  # the script moved it, not a reload
    status = page.locator("[data-status-text]")
    assert status.get_attribute("aria-live") == "polite"
    page.wait_for_function("(text) => document.querySelector('[data-status-text]').textContent.includes(text)",
                           arg=words["done"].format(n=f"{ROWS:,}"))  # fmt: skip
    assert page.locator('[data-count="confirmed"]').inner_text() == f"{ROWS - len(BAD):,}"
    assert [int(r) for r in page.locator("[data-error-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.errorRow)")] == list(BAD)  # fmt: skip
    audit_accessibility(page)
    page.screenshot(path=str(shots / "job-done.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name=words["download"]).click()
    body = download.value.path().read_text("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][0].startswith("row") and ("1 = " in table[0][0])
    assert [(int(r[0]), r[1], r[2]) for r in table[1:]] == [(n, "holder.code", "ID_CHECK_CHAR") for n in BAD]

    job_url, session = page.url, context.storage_state()
    context.close()

    # without script: the same session; the page says how far the job is, by the server
    plain = browser.new_context(**DESKTOP, java_script_enabled=False, storage_state=session)
    page = plain.new_page()
    page.goto(job_url)
    assert page.locator("progress[data-progress]").get_attribute("value") == str(ROWS)
    assert words["done"].format(n=f"{ROWS:,}") in page.locator("[data-status-text]").inner_text()
    page.screenshot(path=str(shots / "job-without-script.png"), full_page=True)
    plain.close()
