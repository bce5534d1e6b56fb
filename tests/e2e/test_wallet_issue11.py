"""Issue 11, points 8, 9, 10 and the wallet part of 13, in Debian's Chromium on the whole stack:
one tap from the home screen opens a full-screen dynamic code (countdown, time watermark) in
standard and elder mode; share presets pick the fields a purpose needs and keep technical ones
behind "more"; no raw `ext.` key on any wallet page; a revoked certificate offers no share and
says why and whom to ask; elder mode's access log fits a 390 px phone; every tap target is at
least 44 × 44 px; a share for identified organisations only shows anonymous visitors a sign-in
prompt while a bank's API key verifies it; the home screen counts new looks until the log is
opened. Screenshots go to test-artifacts/e2e/wallet-11/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack import Stack, artifact_dir, audit_accessibility, chromium, csrf_of, http_holder, phone, stack_for

from registry.qr import decode_qr

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
TECHNICAL = ("identifier", "typeCode", "issuer.code", "issuer.region", "holder.codeType")
# What a tap target is, and the measure of each visible one (the skip link is off-screen until focused).
TARGETS_JS = """() => Array.from(document.querySelectorAll(
    'a, button, input[type=submit], input[type=checkbox], input[type=radio], summary'))
  .filter(el => el.getClientRects().length && !el.classList.contains('skip'))
  .map(el => { const r = el.getBoundingClientRect();
               return {what: el.tagName + ' ' + (el.textContent.trim() || el.id || el.name).slice(0, 30), w: r.width, h: r.height}; })"""
OPEN_DETAILS_JS = "() => document.querySelectorAll('details').forEach(d => d.open = true)"


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def folder() -> Path:
    return artifact_dir("wallet-11")


class Shots:
    """Screenshots named `<test>-<nn>-<label>.png` in one folder; each page audited first."""

    def __init__(self, folder: Path, prefix: str, ratio: float = 4.5, min_font_px: float = 0) -> None:
        self.folder, self.prefix, self.count = folder, prefix, 0
        self.ratio, self.min_font_px = ratio, min_font_px

    def __call__(self, page: Any, label: str, audit: bool = True) -> None:
        if audit:
            audit_accessibility(page, self.ratio, self.min_font_px)
        self.count += 1
        page.screenshot(path=str(self.folder / f"{self.prefix}-{self.count:02d}-{label}.png"), full_page=True)


def signed_in(browser: Any, stack: Stack, client: httpx.Client) -> Any:
    context = phone(browser)
    context.add_cookies(
        [{"name": name, "value": value, "url": stack.wallet.url} for name, value in client.cookies.items()]
    )
    return context


def assert_tap_targets(page: Any) -> None:
    small = [t for t in page.evaluate(TARGETS_JS) if t["w"] < 43.5 or t["h"] < 43.5]
    assert not small, f"{page.url}: tap targets under 44 × 44 px: {small[:6]}"


def assert_no_raw_ext(page: Any) -> None:
    page.evaluate(OPEN_DETAILS_JS)
    text = page.locator("body").inner_text()
    assert "ext." not in text, f"{page.url}: a raw ext.* key is shown"


def assert_full_screen_dynamic_code(page: Any) -> None:
    page.wait_for_url(re.compile(r"/shares/[0-9a-f]{32}/dynamic$"))
    page.wait_for_function("document.getElementById('dynamic-qr').complete")
    assert not page.locator("header.top").is_visible() and not page.locator("footer").is_visible()
    box = page.locator("#show-screen").bounding_box()
    viewport = page.viewport_size
    assert box["width"] >= viewport["width"] - 1 and box["height"] >= viewport["height"] - 1, box
    left = int(page.locator("#dynamic-countdown").inner_text())
    assert 1 <= left <= 30
    stamp = page.locator("#dynamic-watermark").get_attribute("data-time")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp or ""), stamp
    assert stamp in page.locator("#dynamic-clock").inner_text()  # the visible clock and the watermark agree
    deadline = time.monotonic() + 5  # the time ticks, and the countdown with it
    while page.locator("#dynamic-watermark").get_attribute("data-time") == stamp:
        assert time.monotonic() < deadline, "the watermark's time does not tick"
        time.sleep(0.2)
    [link] = decode_qr(page.locator("#dynamic-qr").screenshot())
    assert "/s/" in link and "?c=" in link


def test_one_tap_from_home_opens_the_full_screen_dynamic_code(
    stack: Stack, browser: Any, folder: Path
) -> None:
    shot = Shots(folder, "one-tap-standard")
    client = http_holder(stack, stack.person())
    context = signed_in(browser, stack, client)
    page = context.new_page()
    page.goto(stack.wallet.url + "/")
    page.wait_for_url(stack.wallet.url + "/certificates")  # the standard home screen
    shot(page, "home")
    assert_tap_targets(page)
    page.locator(f'button[data-show="{client.card_id}"]').click()  # one tap
    assert_full_screen_dynamic_code(page)
    shot(page, "dynamic-full-screen")
    assert_tap_targets(page)
    assert_no_raw_ext(page)

    for path in ("/certificates", f"/certificates/{client.card_id}", f"/certificates/{client.card_id}/share",
                 "/shares", "/access-log", "/settings"):  # fmt: skip
        page.goto(stack.wallet.url + path)
        assert_tap_targets(page)
        assert_no_raw_ext(page)
    page.goto(stack.wallet.url + "/certificates?lang=en")
    assert_no_raw_ext(page)
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}/share?lang=en")
    assert_no_raw_ext(page)

    # Presets: each purpose picks its fields; technical ones stay behind "more" and are never picked.
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}/share?preset=bank")
    checked = {box.get_attribute("data-path") for box in page.locator('input[name="fields"]:checked').all()}
    assert {"name", "number", "holder.name", "holder.code", "ext.type", "ext.address", "ext.scope"} <= checked
    assert "holder.codeMasked" not in checked and not checked & set(TECHNICAL), checked
    assert page.locator("#purpose").input_value() == "银行开户"
    for path in TECHNICAL:
        box = page.locator(f'details.more input[data-path="{path}"]')
        assert box.count() == 1 and not box.is_visible(), path  # behind "more", closed
    assert page.locator('details.more input[data-path="holder.name"]').count() == 0
    shot(page, "preset-bank")
    page.locator("details.more summary").click()
    assert page.locator('details.more input[data-path="typeCode"]').is_visible()
    shot(page, "preset-bank-more")

    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}/share?preset=rent")
    checked = {box.get_attribute("data-path") for box in page.locator('input[name="fields"]:checked').all()}
    assert {"holder.name", "holder.codeMasked", "ext.type", "ext.scope"} <= checked
    assert not checked & {"holder.code", "number", "ext.address", *TECHNICAL}, checked
    page.locator('a[data-preset="job"]').click()
    assert page.locator('a[data-preset="job"]').get_attribute("aria-current") == "true"
    assert page.locator("#purpose").input_value() == "求职入职"
    page.get_by_role("button", name="生成分享").click()
    page.wait_for_url(re.compile(r"/shares/[0-9a-f]{32}$"))
    shot(page, "preset-job-shared")
    context.close()


def test_elder_one_tap_identified_only_share_unread_badge_and_access_log_at_390_px(
    stack: Stack, browser: Any, folder: Path
) -> None:
    shot = Shots(folder, "elder", ratio=7, min_font_px=22)
    person = stack.person()
    client = http_holder(stack, person)
    context = signed_in(browser, stack, client)
    page = context.new_page()
    page.goto(stack.wallet.url + "/certificates")
    page.locator('button[data-action="toggle-elder"]').click()
    page.goto(stack.wallet.url + "/")
    assert "elder" in (page.locator("body").get_attribute("class") or "")
    assert page.locator("[data-unread]").count() == 0  # nobody has looked yet
    shot(page, "home")
    assert_tap_targets(page)
    page.locator(f'button[data-show="{client.card_id}"]').click()  # one tap
    assert_full_screen_dynamic_code(page)
    shot(page, "dynamic-full-screen")
    assert_tap_targets(page)

    # A share for identified organisations only (made with the form, over HTTP).
    token = csrf_of(client.get(f"/certificates/{client.card_id}/share").text)
    made = client.post(f"/certificates/{client.card_id}/share", data={
        "csrf_token": token, "fields": ["holder.name", "ext.scope"], "purpose": "租房", "expiry": "60",
        "mode": "link", "identified_only": "1"})  # fmt: skip
    assert made.status_code == 303, made.text
    share_page = client.get(made.headers["location"]).text
    link = re.search(r'id="share-url"[^>]*value="([^"]+)"', share_page)
    assert link, "no share link on the share page"
    url = link.group(1)

    anonymous = phone(browser)
    visitor = anonymous.new_page()
    answer = visitor.goto(url)
    assert answer is not None and answer.status == 401
    assert visitor.locator("[data-signin]").count() == 1
    assert visitor.locator("[data-problem]").get_attribute("data-problem") == "SHARE_IDENTIFIED_ONLY"
    assert visitor.locator("dd[data-path]").count() == 0 and person.name not in visitor.content()
    Shots(folder, "identified-only")(visitor, "anonymous-sees-sign-in", audit=False)
    anonymous.close()
    plain = httpx.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert (plain.status_code, plain.json()["code"]) == (401, "SHARE_IDENTIFIED_ONLY")
    assert person.name not in plain.text
    with httpx.Client(headers={"Authorization": f"Bearer {stack.bank_key}", "Accept": "application/json"},
                      timeout=30) as bank:  # fmt: skip
        for _ in range(2):  # an organisation with its API key verifies it (two looks)
            seen = bank.get(url)
            assert seen.status_code == 200 and seen.json()["verdict"] == "VALID", seen.text

    page.goto(stack.wallet.url + "/")
    badge = page.locator(".tile [data-unread]")
    assert badge.count() == 1 and badge.get_attribute("data-unread") == "2", page.content()
    shot(page, "home-unread-badge")

    page.locator('a.tile[href="/access-log"]').click()
    page.wait_for_url(stack.wallet.url + "/access-log")
    assert page.locator("li.entry").count() >= 2
    layout = page.evaluate("""() => ({
        page: document.documentElement.scrollWidth, viewport: window.innerWidth,
        wide: Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
              .map(e => e.tagName + '.' + e.className).slice(0, 5),
        dates: Array.from(document.querySelectorAll('.log time')).map(t => ({lines: t.getClientRects().length,
              fits: t.scrollWidth <= t.getBoundingClientRect().width + 0.5, text: t.textContent})),
    })""")  # fmt: skip
    assert layout["page"] <= layout["viewport"] == 390 and not layout["wide"], layout
    assert layout["dates"] and all(d["lines"] == 1 and d["fits"] for d in layout["dates"]), layout["dates"]
    shot(page, "access-log-390px")
    assert_tap_targets(page)
    assert_no_raw_ext(page)

    page.goto(stack.wallet.url + "/")
    assert page.locator("[data-unread]").count() == 0  # seen: the badge is gone
    shot(page, "home-badge-cleared")
    context.close()


def test_a_revoked_certificate_offers_no_share_and_says_why_and_whom_to_ask(
    stack: Stack, browser: Any, folder: Path
) -> None:
    shot = Shots(folder, "revoked")
    person = stack.person()
    client = http_holder(stack, person)
    token = csrf_of(client.get(f"/certificates/{client.card_id}/share").text)
    with stack.issuer_client() as issuer:
        changed = issuer.post(
            f"/v1/certificates/{person.identifier}/status", json={"status": "revoked", "reason": 7}
        )
        assert changed.status_code == 200, changed.text
    context = signed_in(browser, stack, client)
    page = context.new_page()
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}")
    deadline = time.monotonic() + 30
    while page.locator('[data-hold="revoked"]').count() == 0:  # the verifier's index catches up
        assert time.monotonic() < deadline, "the wallet never showed the revocation"
        time.sleep(0.5)
        page.reload()
    hold = page.locator('[data-hold="revoked"]')
    assert "吊销" in hold.inner_text() and "发证机关" in hold.inner_text()
    agency = page.locator(".face-fields [data-path='issuer.name'] dd").inner_text().strip()
    assert agency and agency in hold.locator(".hold-contact").inner_text()
    assert (
        page.locator('a[href$="/share"]').count() == 0 and page.locator('[data-action="show"]').count() == 0
    )
    shot(page, "certificate")
    page.goto(stack.wallet.url + "/certificates")
    card = page.locator(f'li.card[data-certificate="{client.card_id}"]')
    assert (
        card.locator('[data-hold="revoked"]').count() == 1 and card.locator('a[href$="/share"]').count() == 0
    )
    shot(page, "certificates")
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}/share")
    assert (
        page.locator('[data-hold="revoked"]').count() == 1
        and page.locator("form[action$='/share']").count() == 0
    )
    page.goto(f"{stack.wallet.url}/certificates/{client.card_id}?lang=en")
    assert "revoked as a penalty" in page.locator('[data-hold="revoked"]').inner_text()
    shot(page, "certificate-en")
    refused = client.post(f"/certificates/{client.card_id}/share", data={  # the server refuses it too
        "csrf_token": token, "fields": ["holder.name"], "purpose": "x", "expiry": "60", "mode": "link"})  # fmt: skip
    assert refused.status_code == 409 and "CERT_NOT_SHAREABLE" in refused.text
    shown = client.post(f"/certificates/{client.card_id}/show", data={"csrf_token": token})
    assert shown.status_code == 409
    context.close()
