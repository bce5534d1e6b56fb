"""Verification links `<verifier>/v#EC1:…` in Debian's Chromium, on the whole stack (issue 11,
points 6–7). The printed licence's QR code, read by zbar from the issuer's PDF rendered at 100 dpi,
and the wallet's offline QR code are such links; the verifier's page reads the certificate from
the fragment (which no server sees), posts it and shows the verdict, in Chinese and English, and
passes the accessibility audit. Screenshots go to test-artifacts/e2e/verification-links/."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, artifact_dir, audit_accessibility, chromium, csrf_of, http_holder, phone, stack_for

from registry.qr import decode_qr

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("verification-links")


def open_link(browser: Any, link: str) -> tuple[Any, Any, list[str]]:
    """A verifier's phone (no API key) opens `link`: (context, page, every URL the browser asked)."""
    context = phone(browser)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(link)
    page.wait_for_selector("[data-verdict]", timeout=30_000)  # the script posted the form: the verdict page
    return context, page, asked


def test_the_printed_licence_s_qr_code_at_100_dpi_opens_the_verifier_s_page_valid(
    stack: Stack, browser: Any, shots: Path, tmp_path: Path
) -> None:
    holder = stack.person()  # its own: another test of this process may revoke its holder's
    with stack.issuer_client() as api:
        answer = api.get(f"/v1/certificates/{holder.identifier}/print.pdf")
    assert answer.status_code == 200, answer.text
    gs = shutil.which("gs")
    assert gs, "Ghostscript is not installed: run scripts/install.sh"
    (tmp_path / "licence.pdf").write_bytes(answer.content)
    subprocess.run(
        [gs, "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pnggray", "-r100",
         f"-sOutputFile={shots / 'printed-100dpi.png'}", str(tmp_path / "licence.pdf")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    [link] = decode_qr(shots / "printed-100dpi.png")
    assert link.startswith(f"{stack.verifier.url}/v#EC1:")

    context, page, asked = open_link(browser, link)
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert page.locator('dd[data-path="holder.name"]').inner_text() == holder.name
    assert page.locator('dd[data-path="holder.code"]').count() == 0  # the printed code holds no ID number
    assert page.url == f"{stack.verifier.url}/v"  # the fragment left the address bar (and the history)
    assert asked and not [url for url in asked if "EC1" in url]  # and never travelled in a URL
    assert "EC1" not in stack.verifier.log_path.read_text(errors="replace")  # nor reached the node's log
    audit_accessibility(page)
    page.screenshot(path=str(shots / "printed-valid.png"), full_page=True)
    context.close()


def test_the_wallet_s_offline_qr_code_opens_the_page_in_english_and_a_pasted_link_verifies(
    stack: Stack, browser: Any, shots: Path
) -> None:
    client = http_holder(stack, stack.person())
    card = client.card_id  # type: ignore[attr-defined]
    token = csrf_of(client.get(f"/certificates/{card}/share").text)
    done = client.post(f"/certificates/{card}/share", data={"csrf_token": token, "fields": ["holder.name"],
                                                             "purpose": "租房", "expiry": "60", "mode": "link"})  # fmt: skip
    assert done.status_code == 303, done.text
    share_page = client.get(done.headers["location"]).text
    found = re.search(r'id="offline-qr" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', share_page)
    assert found, "no offline QR on the share page"
    [link] = decode_qr(base64.b64decode(found.group(1)))
    assert link.startswith(f"{stack.verifier.url}/v#EC1:")  # the node that keeps the holder's shares

    context, page, _ = open_link(browser, link.replace("/v#", "/v?lang=en#", 1))
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert (
        page.locator("html").get_attribute("lang") == "en" and page.locator("h1").inner_text() == "Verified"
    )
    assert {cell.get_attribute("data-path") for cell in page.locator("dd[data-path]").all()} == {
        "holder.name", "validFrom", "validUntil", "identifier", "typeCode", "issuer.code",
    }  # fmt: skip
    audit_accessibility(page)
    page.screenshot(path=str(shots / "offline-valid-en.png"), full_page=True)

    # With no fragment (a code read some other way), the visitor pastes it into the page's form.
    page.goto(f"{stack.verifier.url}/v")
    assert page.locator("h1").inner_text() == "核验电子证照" and page.locator("[data-verdict]").count() == 0
    audit_accessibility(page)
    page.screenshot(path=str(shots / "form-zh.png"), full_page=True)
    page.get_by_label("二维码内容（以 EC1: 开头，或核验链接）").fill(link)
    page.get_by_label("核验用途（选填）").fill("前台核验")
    page.get_by_role("button", name="核验").click()
    page.wait_for_selector("[data-verdict]")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    context.close()
