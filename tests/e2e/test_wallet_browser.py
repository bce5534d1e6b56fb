"""The wallet in Debian's Chromium (Playwright; no downloaded browser), on the whole stack:
register → claim → share two fields for 5 minutes → a bank opens the link (another browser
context, with its API key) → VALID and only those fields → the holder's access log shows the
bank → withdraw → the link says it was withdrawn. Plus the share QR read back from a screenshot
with zbar, the dynamic QR's 30-second window, elder mode and English. Screenshots of each step
go to test-artifacts/e2e/<test>/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack import BANK_ORG, Stack, artifact_dir, audit_accessibility, chromium, http_holder, phone, stack_for

from registry.qr import decode_qr

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
PASSWORD = "长城-password-2024"
CHOSEN = {"holder.name", "holder.codeMasked"}
VALIDITY = {
    "validFrom",
    "validUntil",
    "identifier",
    "typeCode",
    "issuer.code",
}  # always shared: validity, type and agency


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Shots:
    """Numbered full-page screenshots of one test; each wallet page is audited for accessibility first."""

    def __init__(self, name: str, ratio: float = 4.5, min_font_px: float = 0) -> None:
        self.folder = artifact_dir(name)
        self.count = 0
        self.ratio, self.min_font_px = ratio, min_font_px

    def __call__(self, page: Any, label: str, audit: bool = True) -> Path:
        if audit:
            audit_accessibility(page, self.ratio, self.min_font_px)
        self.count += 1
        path = self.folder / f"{self.count:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def expect_attribute(
    locator: Any, name: str, value: str, timeout_s: float = 20.0, reload: Any = None
) -> None:
    """Wait for an attribute (reloading the page in between if asked: a fresh chain event may need indexing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if locator.count() and locator.first.get_attribute(name) == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{name}={locator.first.get_attribute(name) if locator.count() else None!r}, expected {value!r}"
            )
        time.sleep(0.5)
        if reload is not None:
            reload.reload()


def signed_in_phone(browser: Any, stack: Stack, client: httpx.Client) -> Any:
    """A phone browser holding the session of a holder who signed up over HTTP."""
    context = phone(browser)
    context.add_cookies(
        [{"name": name, "value": value, "url": stack.wallet.url} for name, value in client.cookies.items()]
    )
    return context


def bank_http(stack: Stack) -> httpx.Client:
    return httpx.Client(
        headers={"Authorization": f"Bearer {stack.bank_key}", "Accept": "application/json"}, timeout=30
    )


def test_register_claim_share_verify_log_and_withdraw(stack: Stack, browser: Any) -> None:
    shot, person = Shots("flow"), stack.person()
    holder = phone(browser)
    page = holder.new_page()
    page.goto(stack.wallet.url + "/")
    shot(page, "welcome")

    page.get_by_role("link", name="注册").click()
    page.get_by_label("姓名").fill(person.name)
    page.get_by_label("公民身份号码").fill(person.id_number)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)
    shot(page, "register")
    page.get_by_role("button", name="注册并登录").click()
    page.wait_for_url(re.compile(r"/claim\?welcome=1$"))
    cookie = next(c for c in holder.cookies() if c["name"] == "wallet_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_label("领取码", exact=True).fill(stack.claim_code(person.identifier))
    shot(page, "claim")
    page.get_by_role("button", name="领取", exact=True).click()
    page.wait_for_url(re.compile(r"/certificates/[0-9a-f]{32}\?claimed=1$"))
    expect_attribute(page.locator("section.state"), "data-verdict", "VALID", reload=page)
    assert page.locator('.face-fields [data-path="holder.codeMasked"] dd').inner_text().startswith("3301")
    shot(page, "certificate")

    page.get_by_role("link", name="分享此证照").click()
    page.keyboard.press("Tab")  # the first stop is the skip link, then the page in reading order
    assert page.evaluate("document.activeElement.className") == "skip"
    masked, full = (
        page.locator('input[data-path="holder.codeMasked"]'),
        page.locator('input[data-path="holder.code"]'),
    )
    assert masked.is_checked() and not full.is_checked()  # the masked twin by default
    for box in page.locator('input[name="fields"]').all():
        box.uncheck()
    for path in CHOSEN:
        page.locator(f'input[data-path="{path}"]').check()
    page.get_by_label("用途").fill("银行开户")
    page.get_by_label("有效时长").select_option("5")
    shot(page, "share-form")
    page.get_by_role("button", name="生成分享").click()
    page.wait_for_url(re.compile(r"/shares/[0-9a-f]{32}$"))
    share_page = page.url
    assert page.locator("section.share-state").get_attribute("data-state") == "active"
    link = page.locator("#share-url").input_value()
    shot(page, "share-created")

    # The QR on the share screen, read back from a screenshot with zbar, is the same link.
    qr_png = page.locator("#share-qr").screenshot(path=str(shot.folder / "share-qr.png"))
    assert decode_qr(qr_png) == [link]

    bank = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                               extra_http_headers={"Authorization": f"Bearer {stack.bank_key}"})  # fmt: skip
    bank_page = bank.new_page()
    bank_page.goto(decode_qr(qr_png)[0])
    assert bank_page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    shown = {cell.get_attribute("data-path") for cell in bank_page.locator("dd[data-path]").all()}
    assert shown == CHOSEN | VALIDITY, (
        shown
    )  # the two chosen fields (and the validity period, type and agency, always)
    assert person.id_number not in bank_page.content()
    shot(bank_page, "bank-sees-valid", audit=False)

    page.goto(stack.wallet.url + "/access-log")
    entry = page.locator(f'li.entry[data-organisation="{BANK_ORG}"]')
    assert entry.count() == 1
    assert entry.locator(".purpose").inner_text() == "银行开户"
    assert entry.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert {c.get_attribute("data-path") for c in entry.locator(".fields .chip").all()} == CHOSEN | VALIDITY
    shot(page, "access-log")

    page.goto(share_page)
    page.get_by_role("button", name="撤回分享").click()
    page.wait_for_url(re.compile(r"\?withdrawn=1$"))
    assert page.locator("section.share-state").get_attribute("data-state") == "withdrawn"
    shot(page, "withdrawn")

    bank_page.reload()
    assert bank_page.locator("[data-problem]").get_attribute("data-problem") == "SHARE_WITHDRAWN"
    assert bank_page.locator("dd[data-path]").count() == 0
    shot(bank_page, "bank-sees-withdrawn", audit=False)
    bank.close()
    holder.close()


def _next_code(page: Any, shown: str) -> str:
    """The code the page shows once its script has loaded the next window's image."""
    deadline = time.monotonic() + 45
    while True:
        time.sleep(1)
        [current] = decode_qr(page.locator("#dynamic-qr").screenshot())
        if current != shown:
            return current
        assert time.monotonic() < deadline, "the dynamic QR did not change within 45 s"


def test_dynamic_qr_changes_every_window_and_an_old_code_is_refused(stack: Stack, browser: Any) -> None:
    shot, person = Shots("dynamic-qr"), stack.person()
    client = http_holder(stack, person)
    context = signed_in_phone(browser, stack, client)
    page = context.new_page()
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}/share")
    page.locator("#mode-dynamic").check()
    page.get_by_label("用途").fill("路面检查")
    page.get_by_role("button", name="生成分享").click()
    page.wait_for_url(re.compile(r"/shares/[0-9a-f]{32}/dynamic$"))
    page.wait_for_function("document.getElementById('dynamic-qr').complete")
    shot(page, "dynamic-qr")
    [first] = decode_qr(page.locator("#dynamic-qr").screenshot())
    base, _ = first.split("?c=")
    with bank_http(stack) as bank:
        opened = bank.get(first)
        if opened.status_code == 404:  # the 30 s window turned between the screenshot and the check
            first = _next_code(page, first)
            opened = bank.get(first)
        assert opened.json()["verdict"] == "VALID", opened.text  # the current window's code opens
        bare = bank.get(base)
        assert (bare.status_code, bare.json()["code"]) == (404, "SHARE_CODE_EXPIRED")  # no code, no share
        current = _next_code(page, first)
        shot(page, "dynamic-qr-refreshed")
        old = bank.get(first)
        assert (old.status_code, old.json()["code"]) == (404, "SHARE_CODE_EXPIRED")
        assert "fields" not in old.text and person.name not in old.text
        assert current.split("?c=")[0] == base and bank.get(current).json()["verdict"] == "VALID"
    context.close()


def test_elder_mode_is_large_high_contrast_one_task_per_screen_and_remembered(
    stack: Stack, browser: Any
) -> None:
    shot, person = Shots("elder-mode", ratio=7, min_font_px=22), stack.person()
    client = http_holder(stack, person)
    context = signed_in_phone(browser, stack, client)
    page = context.new_page()
    page.goto(stack.wallet.url + "/certificates")
    page.get_by_role("button", name="长辈模式").click()
    page.goto(stack.wallet.url + "/")
    assert "elder" in page.locator("body").get_attribute("class")
    assert page.locator("header nav").count() == 0  # no menu bar: one task per screen from the tiles
    style = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.fontSize, s.color, s.backgroundColor]; }"
    )
    assert float(style[0].removesuffix("px")) >= 22 and style[1:] == ["rgb(0, 0, 0)", "rgb(255, 255, 255)"]
    shot(page, "home-tiles")
    page.get_by_role("link", name="我的证照").click()
    assert page.locator('[data-verdict="VALID"], [data-verdict="ERROR"]').count() >= 1
    shot(page, "certificates")
    page.locator(".card-link").first.click()
    shot(page, "certificate")
    page.get_by_role("link", name="返回首页").click()
    page.wait_for_url(stack.wallet.url + "/")
    context.close()

    again = phone(browser)  # another phone: sign in, and elder mode is still on
    page = again.new_page()
    page.goto(stack.wallet.url + "/login")
    page.get_by_label("公民身份号码").fill(person.id_number)
    page.get_by_label("密码").fill("e2e-password-1")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(stack.wallet.url + "/")
    assert "elder" in page.locator("body").get_attribute("class")
    shot(page, "remembered-after-sign-in")
    again.close()


def test_english_pages_and_the_choice_is_remembered(stack: Stack, browser: Any) -> None:
    shot, person = Shots("english"), stack.person()
    anonymous = phone(browser)
    page = anonymous.new_page()
    page.goto(stack.wallet.url + "/?lang=en")
    assert (
        page.locator("html").get_attribute("lang") == "en"
        and page.get_by_role("link", name="Register").count() == 1
    )
    shot(page, "welcome")
    anonymous.close()

    client = http_holder(stack, person)
    context = signed_in_phone(browser, stack, client)
    page = context.new_page()
    page.goto(stack.wallet.url + "/certificates")
    page.get_by_role("button", name="English").click()
    page.wait_for_url(stack.wallet.url + "/certificates")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="My certificates").count() == 1
    shot(page, "certificates")
    page.locator(".card-link").first.click()
    assert (
        page.locator("article.face").get_attribute("lang") == "zh-CN"
    )  # the face stays Chinese, labels added
    assert "Holder" in page.locator(".face-fields").inner_text()
    shot(page, "certificate")
    page.get_by_role("link", name="Share this certificate").click()
    shot(page, "share-form")
    page.get_by_role("button", name="Create share").click()
    assert page.get_by_role("heading", name="Share created").count() == 1
    shot(page, "share-created")
    page.get_by_role("button", name="Sign out").click()
    page.goto(stack.wallet.url + "/login")
    page.get_by_label("公民身份号码").fill(person.id_number)
    page.get_by_label("密码").fill("e2e-password-1")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(stack.wallet.url + "/certificates")
    assert page.locator("html").get_attribute("lang") == "en"  # remembered for the holder
    shot(page, "remembered-after-sign-in")
    context.close()
