"""Correction requests from the holder's wallet (issue 12, point 9) in Debian's Chromium on the
whole stack: the holder flags a wrong field of a claimed certificate with a message → the
request shows its 24-hour deadline → the agency answers by a renewal → the wallet keeps version
2, linked to version 1, and marks version 1 replaced; a refusal shows the agency's reason; with
the issuer down the holder is told so, the draft is kept and nothing answers 500. Chinese,
English and elder mode; every wallet page audited (axe-core, 0 violations, and the suite's own
checks); screenshots to test-artifacts/e2e/<test>/."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from stack import AGENCY, ECERT, Stack, chromium, http_holder, stack_for
from test_wallet_browser import Shots, signed_in_phone

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
ADDRESS = "ext.address"
STAFF_PASSWORD = "agency-clerk-pass-1"


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def holder_page(browser: Any, stack: Stack, *, lang: str = "zh", elder: bool = False) -> tuple[Any, Any, str]:
    """A phone signed in as a fresh holder with a claimed certificate; its page and the card id."""
    client = http_holder(stack, stack.person())
    context = signed_in_phone(browser, stack, client)
    page = context.new_page()
    page.goto(f"{stack.wallet.url}/settings")
    if lang == "en":
        page.locator('[data-action="toggle-lang"]').click()
        page.wait_for_load_state()
    if elder:
        page.locator('[data-action="toggle-elder"]').click()
        page.wait_for_load_state()
    return context, page, client.card_id  # type: ignore[attr-defined]


class Agency:
    """The issuing agency's clerk, answering in the issuer's console (/console/corrections) in a
    second browser context: signed in with a password and a TOTP code (`ecert issuer staff add`)."""

    def __init__(self, browser: Any, stack: Stack, shot: Shots) -> None:
        username = f"clerk{secrets.token_hex(4)}"  # one per test: a TOTP code is accepted once
        done = subprocess.run(
            [*ECERT, "issuer", "staff", "add", "--agency", AGENCY, "--role", "clerk", "--username", username,
             "--name", "王芳", "--password-stdin"],
            env=stack.env, input=STAFF_PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        secret = done.stdout.strip().splitlines()[-2]
        self.stack, self.shot = stack, shot
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        self.page = self.context.new_page()
        self.page.goto(f"{stack.issuer.url}/console/login")
        self.page.locator("#username").fill(username)
        self.page.locator("#password").fill(STAFF_PASSWORD)
        self.page.locator("#totp").fill(pyotp.TOTP(secret).now())
        self.page.locator("#totp").press("Enter")
        self.page.wait_for_load_state()
        assert "/console/login" not in self.page.url, self.page.content()[:2000]

    def open(self, request_id: str) -> Any:
        self.page.goto(f"{self.stack.issuer.url}/console/corrections/{request_id}")
        assert self.page.locator("[data-request-id]").inner_text() == request_id
        assert self.page.locator("[data-status]").get_attribute("data-status") == "open"
        return self.page

    def renew(self, request_id: str, value: str, note: str) -> str:
        """Fix by a renewal with the corrected value; the new version's identifier."""
        page = self.open(request_id)
        page.locator("#f-value").fill(value)
        page.locator("#f-note").fill(note)
        self.shot(page, "agency-fixes", audit=False)
        page.locator("form[data-fix] button[type=submit]").click()
        page.wait_for_url(re.compile(r"answered=fixed"))
        assert page.locator("[data-status]").get_attribute("data-status") == "fixed"
        self.shot(page, "agency-fixed", audit=False)
        return str(page.locator("[data-new-identifier]").inner_text())

    def refuse(self, request_id: str, reason: str) -> None:
        page = self.open(request_id)
        page.locator("#f-reason").fill(reason)
        page.locator("form[data-refuse] button[type=submit]").click()
        page.wait_for_url(re.compile(r"answered=refused"))
        assert page.locator("[data-status]").get_attribute("data-status") == "refused"
        self.shot(page, "agency-refused", audit=False)

    def close(self) -> None:
        self.context.close()


def expect_state(page: Any, item: Any, state: str, *, wait_for_new_version: bool = False) -> None:
    """Reload the list until the request is in `state` (a renewal is anchored before its package is
    handed out: until then the request is fixed with the new version pending)."""
    deadline = time.monotonic() + 90
    while True:
        if item.get_attribute("data-state") == state and (
            not wait_for_new_version or item.locator("[data-new-version]").count()
        ):
            return
        assert time.monotonic() < deadline, f"still {item.get_attribute('data-state')!r}, expected {state!r}"
        time.sleep(1)
        page.reload()


def send_request(page: Any, stack: Stack, card_id: str, target: str, message: str, shot: Shots) -> str:
    """From the certificate's page: the action, the form (standard mode), sent; the request id."""
    page.goto(f"{stack.wallet.url}/certificates/{card_id}")
    shot(page, "certificate")
    page.locator('[data-action="correction"]').click()
    page.wait_for_url(re.compile(rf"/certificates/{card_id}/correction$"))
    page.locator(f'input[name="target"][data-target="{target}"]').check()
    page.locator("#message").fill(message)
    shot(page, "form")
    page.locator('[data-action="send-correction"]').click()
    page.wait_for_url(re.compile(r"/corrections/[A-Za-z0-9_-]+\?sent=1$"))
    return str(page.url.split("/corrections/")[1].split("?")[0])


def test_a_wrong_field_is_flagged_then_fixed_by_a_renewal_linked_to_the_old_version(
    stack: Stack, browser: Any
) -> None:
    shot = Shots("corrections-fixed")
    context, page, card_id = holder_page(browser, stack)
    request_id = send_request(page, stack, card_id, ADDRESS, "门牌号应为文三路 200 号，不是 100 号。", shot)
    state = page.locator("section.correction-state")
    assert state.get_attribute("data-state") == "open"
    assert page.locator(".due").inner_text().startswith("还剩 24 小时")  # the default deadline: 24 hours
    assert page.locator("[data-message]").inner_text() == "门牌号应为文三路 200 号，不是 100 号。"
    shot(page, "sent")

    page.goto(f"{stack.wallet.url}/corrections")
    item = page.locator(f'li[data-correction="{request_id}"]')
    assert item.get_attribute("data-state") == "open" and "住所" in item.inner_text()
    shot(page, "list-open")

    agency = Agency(browser, stack, shot)
    new_identifier = agency.renew(request_id, "浙江省杭州市西湖区文三路200号", "已按登记信息更正住所")
    agency.close()
    page.goto(f"{stack.wallet.url}/corrections")  # opening the list asks the issuer again
    item = page.locator(f'li[data-correction="{request_id}"]')
    expect_state(page, item, "fixed", wait_for_new_version=True)
    new_card = item.locator("[data-new-version]").get_attribute("data-new-version")
    assert "第 1 版已被第 2 版替代" in item.inner_text()
    shot(page, "list-fixed")

    item.locator("[data-new-version]").click()
    page.wait_for_url(re.compile(rf"/certificates/{new_card}$"))
    assert page.locator("p.version").inner_text().startswith("第 2 版，替代第 1 版")
    assert (
        page.locator(f'.face-fields [data-path="{ADDRESS}"] dd').inner_text()
        == "浙江省杭州市西湖区文三路200号"
    )
    assert page.locator('.face-fields [data-path="identifier"] dd').inner_text() == new_identifier
    shot(page, "version-2")

    page.locator("p.version a").click()  # to version 1: marked replaced, linked to version 2
    page.wait_for_url(re.compile(rf"/certificates/{card_id}$"))
    assert page.locator(".version-replaced").get_attribute("data-replaced-by") == new_card
    shot(page, "version-1-replaced")

    page.goto(f"{stack.wallet.url}/certificates")
    assert (
        page.locator(f'li[data-certificate="{card_id}"] .replaced').get_attribute("data-replaced-by")
        == new_card
    )
    assert page.locator(f'li[data-certificate="{new_card}"] .replaced').count() == 0
    shot(page, "certificates")
    context.close()


def test_a_refusal_shows_the_agencys_reason_in_english(stack: Stack, browser: Any) -> None:
    shot = Shots("corrections-refused-en")
    context, page, card_id = holder_page(browser, stack, lang="en")
    request_id = send_request(page, stack, card_id, "holder.name", "My name is misspelt.", shot)
    assert page.locator(".due").inner_text().startswith("due in 24 h")
    shot(page, "sent")
    agency = Agency(browser, stack, shot)
    agency.refuse(request_id, "The name matches the registration record.")
    agency.close()
    page.goto(f"{stack.wallet.url}/corrections")
    item = page.locator(f'li[data-correction="{request_id}"]')
    expect_state(page, item, "refused")
    assert item.locator("[data-reason]").inner_text() == "Reason: The name matches the registration record."
    shot(page, "list-refused")
    page.goto(f"{stack.wallet.url}/corrections/{request_id}")
    assert page.locator("section.correction-state").get_attribute("data-state") == "refused"
    assert page.locator("dd[data-reason]").inner_text() == "The name matches the registration record."
    shot(page, "refused")
    context.close()


def test_elder_mode_asks_one_thing_per_screen_and_the_issuer_down_loses_nothing(
    stack: Stack, browser: Any
) -> None:
    shot = Shots("corrections-elder-issuer-down", ratio=7, min_font_px=22)
    context, page, card_id = holder_page(browser, stack, elder=True)
    page.goto(f"{stack.wallet.url}/")
    shot(page, "home")
    page.locator('a.tile[href="/corrections"]').click()
    page.wait_for_url(re.compile(r"/corrections$"))
    assert page.locator(".empty").count() == 1
    shot(page, "no-requests")

    page.goto(f"{stack.wallet.url}/certificates/{card_id}/correction")
    assert page.locator("textarea").count() == 0  # first screen: only what is wrong
    shot(page, "pick")
    page.locator('a.tile[data-target="renewal"]').click()
    page.wait_for_url(re.compile(r"\?target=renewal$"))
    assert page.locator(".chosen").get_attribute("data-target") == "renewal"
    draft = "经营场所已搬迁，请换发营业执照。"
    page.locator("#message").fill(draft)
    shot(page, "message")

    stack.issuer.stop()
    try:
        page.locator('[data-action="send-correction"]').click()
        page.wait_for_load_state()
        assert page.locator("#form-error").get_attribute("data-code") == "ISSUER_UNAVAILABLE"
        assert page.locator('[data-draft="kept"]').count() == 1
        assert page.locator("#message").input_value() == draft  # the draft is kept
        assert page.locator('input[name="target"]').input_value() == "renewal"
        shot(page, "issuer-down-draft-kept")
        page.goto(f"{stack.wallet.url}/corrections")
        assert page.locator("h1").count() == 1  # not an error page
    finally:
        stack.issuer.start()
    page.goto(f"{stack.wallet.url}/certificates/{card_id}/correction?target=renewal")
    page.locator("#message").fill(draft)
    page.locator('[data-action="send-correction"]').click()
    page.wait_for_url(re.compile(r"/corrections/[A-Za-z0-9_-]+\?sent=1$"))
    request_id = page.url.split("/corrections/")[1].split("?")[0]
    assert page.locator("section.correction-state").get_attribute("data-state") == "open"
    shot(page, "sent")

    stack.issuer.stop()
    try:  # the list says the issuer cannot be asked and shows the last known state
        response = page.goto(f"{stack.wallet.url}/corrections")
        assert response is not None and response.status == 200
        assert page.locator('[data-notice="ISSUER_UNAVAILABLE"]').count() == 1
        assert page.locator(f'li[data-correction="{request_id}"]').get_attribute("data-state") == "open"
        shot(page, "issuer-down-last-known")
        response = page.goto(f"{stack.wallet.url}/corrections/{request_id}")
        assert response is not None and response.status == 200
    finally:
        stack.issuer.start()
    context.close()
