"""The verifier node's front desk `/desk` on the whole stack (issue 11, points 1–3 and 13): a bank
clerk added with `ecert verifier staff add` signs in with password and TOTP (a wrong code refused,
too many throttled, CSRF enforced), then verifies in Debian's Chromium four ways — the camera
(Chromium's fake capture fed a y4m of the licence's QR code, decoded in the page by jsQR served by
the node), a photo and a PDF uploaded, a pasted code, and a USB scanner (typed + Enter) — on a
phone and a desktop, in Chinese and English, each page audited (axe-core). A revoked licence is
核验未通过 with 吊销; a share the clerk verifies is logged with the bank and the clerk.
Screenshots and measurements go to test-artifacts/e2e/front-desk/."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx
import pyotp
import pytest
from PIL import Image
from stack import (
    BANK_ORG,
    CHROMIUM,
    CHROMIUM_ARGS,
    ECERT,
    Stack,
    artifact_dir,
    audit_accessibility,
    csrf_of,
    http_holder,
    stack_for,
)

from registry.chain.runner import PROJECT_ROOT
from registry.qr import decode_qr

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
PASSWORD = "desk-password-1"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN"}  # fmt: skip


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("front-desk")


def add_staff(stack: Stack, username: str) -> str:
    """`ecert verifier staff add` for the bank: the TOTP secret it prints once."""
    org_id = (
        stack.verifier_db().execute("SELECT id FROM organisations WHERE name = ?", (BANK_ORG,)).fetchone()[0]
    )
    done = subprocess.run(
        [*ECERT, "verifier", "staff", "add", "--org", str(org_id), "--username", username,
         "--name", "王芳", "--password-stdin", "--node", "330000"],
        env=stack.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    secret, uri = done.stdout.strip().splitlines()[-2:]
    assert uri.startswith("otpauth://totp/") and secret in uri
    assert PASSWORD not in done.stdout + done.stderr
    return secret


def fresh_code(secret: str, last: list[int]) -> str:
    """The current TOTP code, waiting for the next 30-second step if this one was used."""
    totp = pyotp.TOTP(secret)
    while int(time.time()) // 30 in last:
        time.sleep(0.5)
    last.append(int(time.time()) // 30)
    return totp.now()


@pytest.fixture(scope="module")
def licence(stack: Stack, shots: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A printed licence (PDF), its first page as a PNG, and the link in its QR code."""
    holder = stack.person()  # its own: another test of this process may revoke its holder's
    with stack.issuer_client() as api:
        answer = api.get(f"/v1/certificates/{holder.identifier}/print.pdf")
    assert answer.status_code == 200, answer.text
    folder = tmp_path_factory.mktemp("licence")
    pdf, png = folder / "licence.pdf", folder / "licence.png"
    pdf.write_bytes(answer.content)
    gs = shutil.which("gs")
    assert gs
    subprocess.run([gs, "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pnggray", "-r150",
                    f"-sOutputFile={png}", str(pdf)], check=True, capture_output=True, timeout=120)  # fmt: skip
    [link] = decode_qr(png)
    return {"pdf": pdf, "png": png, "link": link, "holder": holder}


def y4m_of_qr(text: str, path: Path) -> Path:
    """A still 1280×720 video (y4m, 4:2:0) of `text`'s QR code: Chromium's fake camera loops it.

    The code fills most of the frame's height at a whole number of pixels a module (a version-23+
    code is 109+ modules, with its 4-module quiet zone ~6 px a module), centred; Y is the grey
    level (full range, C420jpeg) and both chroma planes are neutral (128)."""
    import qrcode

    qr = qrcode.QRCode(border=4, box_size=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    code = qr.make_image().get_image().convert("L")
    modules = code.size[0]
    per_module = 700 // modules
    assert per_module >= 3, (qr.version, modules)
    side = modules * per_module
    frame = Image.new("L", (1280, 720), 255)
    frame.paste(code.resize((side, side), Image.Resampling.NEAREST), ((1280 - side) // 2, (720 - side) // 2))
    frame.save(path.with_suffix(".png"))
    data = frame.tobytes() + bytes([128]) * (640 * 360 * 2)
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W1280 H720 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(3):
            out.write(b"FRAME\n" + data)
    assert path.stat().st_size == 44 + 3 * (6 + 1280 * 720 * 3 // 2)
    assert decode_qr(path.with_suffix(".png")) == [text]  # the frame the camera shows holds the link
    return path


@pytest.fixture(scope="module")
def browser(licence: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    video = y4m_of_qr(licence["link"], tmp_path_factory.mktemp("camera") / "qr.y4m")
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]  # fmt: skip
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


def test_sign_in_needs_password_and_totp_csrf_and_is_throttled(stack: Stack) -> None:
    secret = add_staff(stack, "clerk-http")
    client = httpx.Client(base_url=stack.verifier.url, follow_redirects=False, timeout=30)
    page = client.get("/desk")
    assert page.status_code == 200 and 'name="code"' in page.text
    token = csrf_of(page.text)
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    form = {"csrf_token": token, "username": "clerk-http", "password": PASSWORD}
    no_csrf = client.post(
        "/desk/login", data={**form, "csrf_token": "0" * 64, "code": pyotp.TOTP(secret).now()}
    )
    assert no_csrf.status_code == 403 and 'data-problem="CSRF_INVALID"' in no_csrf.text
    refused = client.post("/desk/login", data={**form, "code": wrong})
    assert refused.status_code == 401 and 'data-problem="STAFF_LOGIN_FAILED"' in refused.text
    done = client.post("/desk/login", data={**form, "code": fresh_code(secret, [])})
    assert done.status_code == 303 and "desk_session" in done.cookies
    desk = client.get("/desk")
    assert "王芳" in desk.text and BANK_ORG in desk.text
    forged = client.post("/desk/verify", data={"code": "EC1:x", "csrf_token": token})  # the pre-session token
    assert forged.status_code == 403 and 'data-problem="CSRF_INVALID"' in forged.text
    cross = client.post("/desk/verify", data={"code": "EC1:x", "csrf_token": csrf_of(desk.text)},
                        headers={"Origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    anonymous = httpx.post(f"{stack.verifier.url}/desk/verify", data={"code": "EC1:x"})
    assert anonymous.status_code == 401

    other = httpx.Client(base_url=stack.verifier.url, timeout=30)
    form = {"csrf_token": csrf_of(other.get("/desk").text), "username": "clerk-http", "password": PASSWORD}
    statuses = [other.post("/desk/login", data={**form, "code": wrong}).status_code for _ in range(6)]
    assert statuses == [401] * 4 + [429] * 2, statuses  # 5 wrong tries in 15 minutes (the first one above)


def transferred(responses: list[Any]) -> int:
    """Bytes on the wire for these responses (headers + body as sent, compressed if it was)."""
    total = 0
    for response in responses:
        sizes = response.request.sizes()
        total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
    return total


def sign_in(
    page: Any,
    url: str | None,
    secret: str,
    used: list[int],
    lang: str = "zh",
    username: str = "clerk-browser",
) -> None:
    """Sign in at the desk (`url`: the node's; None for the sign-in page the browser shows now)."""
    if url is not None:
        page.goto(f"{url}/desk?lang={lang}")
    words = ("用户名", "密码", "动态验证码（验证器应用中的 6 位数字）", "登录") if lang == "zh" else (
        "Username", "Password", "One-time code (6 digits from the authenticator app)", "Sign in")  # fmt: skip
    page.get_by_label(words[0], exact=True).fill(username)
    page.get_by_label(words[1], exact=True).fill(PASSWORD)
    page.get_by_label(words[2]).fill(fresh_code(secret, used))
    page.get_by_role("button", name=words[3]).click()
    page.wait_for_load_state()
    if url is not None:
        assert page.locator("#code-form").count() == 1, page.locator("main").inner_text()


def test_front_desk_in_the_browser(stack: Stack, browser: Any, licence: dict[str, Any], shots: Path) -> None:
    secret, used = add_staff(stack, "clerk-browser"), list[int]()
    measured: dict[str, Any] = {}
    desktop = browser.new_context(**DESKTOP)
    page = desktop.new_page()
    page.goto(f"{stack.verifier.url}/desk")
    audit_accessibility(page)
    page.screenshot(path=str(shots / "sign-in-zh-desktop.png"), full_page=True)
    sign_in(page, stack.verifier.url, secret, used)

    # page weight of the desk as loaded (HTML + script, bytes on the wire: headers and body as sent),
    # and of the camera's decoder, loaded on demand
    loaded: list[Any] = []

    def keep(response: Any) -> None:
        loaded.append(response)

    page.on("response", keep)
    page.goto(f"{stack.verifier.url}/desk")
    page.wait_for_load_state("networkidle")
    page.remove_listener("response", keep)
    measured["desk_page_bytes"] = transferred(loaded)
    measured["desk_page_files"] = sorted(r.url.removeprefix(stack.verifier.url) for r in loaded)
    audit_accessibility(page)
    page.screenshot(path=str(shots / "desk-zh-desktop.png"), full_page=True)

    # USB scanner: a keyboard wedge types the code into the focused field and presses Enter
    assert page.evaluate("() => document.activeElement && document.activeElement.id") == "code"
    page.keyboard.type(licence["link"], delay=0)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-verdict]")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert page.locator(".verdict h2").inner_text() == "核验通过"
    assert page.locator("[data-agency]").inner_text() == "杭州市市场监督管理局"
    assert page.locator('dd[data-path="holder.name"]').inner_text().startswith(licence["holder"].name)
    body = page.locator("main").inner_text()
    assert "None" not in body and not re.search(r"\b(Verified|Checks|Format|passed)\b", body)
    audit_accessibility(page)
    page.screenshot(path=str(shots / "usb-valid-zh-desktop.png"), full_page=True)

    # upload: the PDF's first page, and a photo (PNG)
    for name, path in (("pdf", licence["pdf"]), ("png", licence["png"])):
        page.goto(f"{stack.verifier.url}/desk")
        page.get_by_label("上传证照照片或 PDF 文件").set_input_files(str(path))
        page.get_by_role("button", name="核验上传的文件").click()
        page.wait_for_selector("[data-verdict]")
        assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID", name
        page.screenshot(path=str(shots / f"upload-{name}-valid-zh-desktop.png"), full_page=True)

    # the camera on a phone (the session cookie carried over): Chromium's fake camera shows the QR
    phone = browser.new_context(**PHONE)
    phone.add_cookies(desktop.cookies())
    mobile = phone.new_page()
    console: list[str] = []
    mobile.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    decoder: list[Any] = []
    mobile.on("response", lambda r: decoder.append(r) if "jsqr" in r.url else None)
    mobile.goto(f"{stack.verifier.url}/desk")
    audit_accessibility(mobile)
    mobile.screenshot(path=str(shots / "desk-zh-phone.png"), full_page=True)
    mobile.get_by_role("button", name="用摄像头扫码").click()
    try:
        mobile.wait_for_selector("html[data-scan-to-verdict-ms]", timeout=20_000)
    except Exception:
        mobile.screenshot(path=str(shots / "camera-failed-phone.png"), full_page=True)
        state = mobile.evaluate("() => { const v = document.getElementById('camera-video');"
                                " return [document.getElementById('camera-hint').textContent, !!window.jsQR,"
                                " v.videoWidth, v.videoHeight, v.readyState, v.paused]; }")  # fmt: skip
        pytest.fail(f"the camera did not read the licence's QR code in 20 s: {state} {console}")
    assert mobile.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert mobile.locator(".verdict h2").inner_text() == "核验通过"
    measured["scan_to_verdict_ms"] = int(
        mobile.locator("html").get_attribute("data-scan-to-verdict-ms") or -1
    )
    took, frames = (mobile.locator("html").get_attribute("data-camera-to-scan") or "-1 -1").split()
    measured["camera_on_to_qr_read_ms"], measured["camera_frames_read"] = int(took), int(frames)
    measured["camera_decoder_bytes"] = transferred(decoder)
    measured["desk_page_with_camera_bytes"] = measured["desk_page_bytes"] + measured["camera_decoder_bytes"]
    (shots / "measurements.json").write_text(json.dumps(measured, indent=1))
    audit_accessibility(mobile)
    mobile.screenshot(path=str(shots / "camera-valid-zh-phone.png"), full_page=True)

    # English, pasted
    mobile.goto(f"{stack.verifier.url}/desk?lang=en")
    mobile.get_by_label("QR code content or share link (a USB scanner submits it by itself)").fill(
        licence["link"]
    )
    mobile.get_by_role("button", name="Verify", exact=True).click()
    mobile.wait_for_selector("[data-verdict]")
    assert mobile.locator("html").get_attribute("lang") == "en"
    assert mobile.locator(".verdict h2").inner_text() == "Verified"
    audit_accessibility(mobile)
    mobile.screenshot(path=str(shots / "paste-valid-en-phone.png"), full_page=True)
    phone.close()
    desktop.close()
    (shots / "measurements.json").write_text(json.dumps(measured, indent=1))
    print(f"\nfront desk: {measured}")
    assert measured["scan_to_verdict_ms"] >= 0


def test_a_revoked_licence_and_a_share_logged_with_the_clerk(stack: Stack, browser: Any, shots: Path) -> None:
    secret, used = add_staff(stack, "clerk-revoked"), list[int]()
    person = stack.person()
    client = http_holder(stack, person)  # the holder shares the licence with the bank
    card = client.card_id  # type: ignore[attr-defined]
    token = csrf_of(client.get(f"/certificates/{card}/share").text)
    done = client.post(f"/certificates/{card}/share", data={"csrf_token": token, "fields": ["holder.name"],
                                                             "purpose": "开户", "expiry": "60", "mode": "link"})  # fmt: skip
    assert done.status_code == 303, done.text
    share_url = re.search(r'id="share-url"[^>]*value="([^"]+)"', client.get(done.headers["location"]).text)
    assert share_url
    with stack.issuer_client() as api:
        pdf = api.get(f"/v1/certificates/{person.identifier}/print.pdf").content

    desktop = browser.new_context(**DESKTOP)
    page = desktop.new_page()
    page.goto(f"{stack.verifier.url}/desk")
    page.get_by_label("用户名", exact=True).fill("clerk-revoked")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("动态验证码（验证器应用中的 6 位数字）").fill(fresh_code(secret, used))
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("#code-form")
    page.get_by_label("二维码内容或分享链接（扫码枪扫描后自动提交）").fill(share_url.group(1))
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-verdict]")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    deadline = time.monotonic() + 10
    while True:
        rows = (
            stack.verifier_db()
            .execute(
                "SELECT organisation, staff, channel FROM access_log WHERE staff IS NOT NULL AND share_id IS NOT NULL"
            )
            .fetchall()
        )
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (BANK_ORG, "王芳 (clerk-revoked)", "link") in rows

    with stack.issuer_client() as api:
        changed = api.post(
            f"/v1/certificates/{person.identifier}/status", json={"status": "revoked", "reason": 7}
        )
    assert changed.status_code == 200, changed.text
    folder = shots / "tmp"
    folder.mkdir(exist_ok=True)
    (folder / "revoked.pdf").write_bytes(pdf)
    deadline = time.monotonic() + 15
    while True:
        page.goto(f"{stack.verifier.url}/desk")
        page.get_by_label("上传证照照片或 PDF 文件").set_input_files(str(folder / "revoked.pdf"))
        page.get_by_role("button", name="核验上传的文件").click()
        page.wait_for_selector("[data-verdict]")
        if (
            page.locator("[data-verdict]").get_attribute("data-verdict") == "INVALID"
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    shutil.rmtree(folder)
    assert page.locator(".verdict h2").inner_text() == "核验未通过"
    reason = page.locator("[data-status-reason]").inner_text()
    assert "吊销" in reason and "07" in reason
    assert page.locator('[data-check="CERT_REVOKED"]').count() == 1
    audit_accessibility(page)
    page.screenshot(path=str(shots / "revoked-invalid-zh-desktop.png"), full_page=True)
    desktop.close()


def share_link(stack: Stack, **form: str) -> tuple[httpx.Client, Any, str]:
    """A new holder (signed in to the wallet over HTTP), and the share link of their licence made
    with the wallet's form (`form`: extra fields, e.g. identified_only)."""
    person = stack.person()
    client = http_holder(stack, person)
    card = client.card_id  # type: ignore[attr-defined]
    token = csrf_of(client.get(f"/certificates/{card}/share").text)
    done = client.post(f"/certificates/{card}/share", data={"csrf_token": token, "fields": ["holder.name"],
                                                             "purpose": "开户", "expiry": "60", "mode": "link", **form})  # fmt: skip
    assert done.status_code == 303, done.text
    found = re.search(r'id="share-url"[^>]*value="([^"]+)"', client.get(done.headers["location"]).text)
    assert found
    return client, person, found.group(1)


def test_an_identified_only_share_opens_for_a_clerk_signed_in_from_its_prompt(
    stack: Stack, browser: Any, shots: Path
) -> None:
    """Shared only with identified organisations: an anonymous visitor gets the sign-in prompt; a
    clerk signs in through it, comes back to the share, sees the fields, and is logged by name."""
    secret, used = add_staff(stack, "clerk-prompt"), list[int]()
    holder, person, url = share_link(stack, identified_only="1")
    share_path = urlsplit(url).path
    anonymous = httpx.get(url, timeout=30)
    assert anonymous.status_code == 401 and 'data-signin="1"' in anonymous.text
    assert person.name not in anonymous.text

    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    opened = page.goto(f"{url}?lang=en")
    assert opened is not None and opened.status == 401
    assert page.locator("[data-signin]").count() == 1 and page.locator("dd[data-path]").count() == 0
    link = page.locator("[data-signin-link]")
    assert link.get_attribute("href") == "/desk?" + urlencode({"lang": "en", "next": f"{share_path}?lang=en"})
    audit_accessibility(page)
    page.screenshot(path=str(shots / "share-identified-only-prompt-en-desktop.png"), full_page=True)
    link.click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/desk"
    assert page.locator('input[name="next"]').get_attribute("value") == f"{share_path}?lang=en"
    audit_accessibility(page)
    sign_in(page, None, secret, used, lang="en", username="clerk-prompt")
    page.wait_for_selector("[data-verdict]")
    assert page.url == f"{stack.verifier.url}{share_path}?lang=en"  # back on the share
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert page.locator('dd[data-path="holder.name"]').inner_text() == person.name
    audit_accessibility(page)
    page.screenshot(path=str(shots / "share-identified-only-clerk-en-desktop.png"), full_page=True)
    context.close()

    deadline = time.monotonic() + 10
    while True:
        rows = stack.verifier_db().execute(
            "SELECT organisation, staff, channel, share_id FROM access_log WHERE staff = ?", ("王芳 (clerk-prompt)",)
        ).fetchall()  # fmt: skip
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [row[:3] for row in rows] == [(BANK_ORG, "王芳 (clerk-prompt)", "link")] and rows[0][3]
    log = holder.get("/access-log")  # the holder's own access log at the wallet
    assert log.status_code == 200 and f'data-organisation="{BANK_ORG}"' in log.text


HOSTILE_NEXT = [
    "https://evil.example/s/abc", "//evil.example/s/abc", "/\\evil.example/s/abc", "/s/abc\\@evil.example",
    "\\\\evil.example", "javascript:alert(1)", "/s/abc\r\nSet-Cookie: x=1", "/s/abc%0d%0aX: 1",
    "/s/../desk/logout", "/s/abc/../../x", "/desk", "/s/", "/s/abc#//evil", "/s/abc?c=<script>", " /s/abc",
    "/s/%2F%2Fevil.example", "/s/abc@evil.example", "http:/s/abc", "/s/abc\t",
]  # fmt: skip


def test_sign_in_returns_to_a_share_page_only(stack: Stack) -> None:
    """`next` after signing in: a share page of this node (its code and language kept), nothing else."""
    secret = add_staff(stack, "clerk-next")
    client = httpx.Client(base_url=stack.verifier.url, follow_redirects=False, timeout=30)
    for hostile in HOSTILE_NEXT:
        page = client.get("/desk", params={"next": hostile})
        assert page.status_code == 200 and 'name="next"' not in page.text, hostile
    page = client.get("/desk", params={"next": "/s/abc_-9?c=0123abcd&lang=en&evil=1"})
    assert '<input type="hidden" name="next" value="/s/abc_-9?c=0123abcd&amp;lang=en">' in page.text
    form = {"csrf_token": csrf_of(page.text), "username": "clerk-next", "password": PASSWORD,
            "next": "//evil.example/s/abc", "code": fresh_code(secret, [])}  # fmt: skip
    done = client.post("/desk/login", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/desk?lang=zh"
    for hostile in HOSTILE_NEXT:  # signed in: the desk, never a redirect
        assert client.get("/desk", params={"next": hostile}).status_code == 200, hostile
    back = client.get("/desk", params={"next": "/s/tok?lang=en&c=ab12"})
    assert back.status_code == 303 and back.headers["location"] == "/s/tok?c=ab12&lang=en"


DEVICES = {"phone": PHONE, "desktop": {**DESKTOP, "viewport": {"width": 1280, "height": 800}}}
VERIFY_WORDS = {"zh": ("二维码内容或分享链接（扫码枪扫描后自动提交）", "核验", "核验通过"),
                "en": ("QR code content or share link (a USB scanner submits it by itself)", "Verify", "Verified")}  # fmt: skip
LAYOUT_JS = """() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const small = [];
  for (const el of document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width < 44 || box.height < 44) small.push(`${el.tagName} ${(el.id || el.textContent.trim()).slice(0, 20)} ${Math.round(box.width)}x${Math.round(box.height)}`);
  }
  const verdict = document.querySelector('[data-verdict]');
  const top = verdict ? verdict.getBoundingClientRect().top + scrollY : null;
  const before = verdict ? Array.from(document.querySelectorAll('main section, main form')).filter(
    (el) => visible(el) && el.getBoundingClientRect().top + scrollY < top).length : 0;
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth, innerHeight: innerHeight,
          rootFont: parseFloat(getComputedStyle(document.documentElement).fontSize),
          bodyFont: parseFloat(getComputedStyle(document.body).fontSize), small, verdictTop: top, before};
}"""


@pytest.mark.parametrize("device", ["phone", "desktop"])
@pytest.mark.parametrize("mode", ["zh", "en", "elder"])
def test_desk_modes_in_the_browser(
    stack: Stack, browser: Any, licence: dict[str, Any], shots: Path, mode: str, device: str
) -> None:
    """zh, en and 长辈模式 on a phone (390×844) and a desktop: sign in, paste a licence's EC1 code,
    the verdict first; every page audited (axe-core; elder: 7:1 and text ≥ 22 px), screenshots kept,
    nothing wider than a phone's screen, elder targets at least 44×44 px."""
    lang = "en" if mode == "en" else "zh"
    elder = mode == "elder"
    username = f"clerk-{mode}-{device}"
    secret, used = add_staff(stack, username), list[int]()
    context = browser.new_context(**DEVICES[device])
    page = context.new_page()
    url = stack.verifier.url
    page.goto(f"{url}/desk?lang={lang}")
    if elder:  # the desk's toggle, remembered by a cookie from then on
        page.locator("[data-action=toggle-elder]").click()
        page.wait_for_load_state()
        assert page.locator("[data-action=toggle-elder]").inner_text() == "标准模式"
    assert page.evaluate("() => document.documentElement.classList.contains('elder')") == elder
    ratio, min_font = (7.0, 22.0) if elder else (4.5, 0.0)

    def check(name: str) -> dict[str, Any]:
        audit_accessibility(page, ratio, min_font)
        page.screenshot(path=str(shots / f"{name}-{mode}-{device}.png"), full_page=True)
        layout: dict[str, Any] = page.evaluate(LAYOUT_JS)
        if device == "phone":
            assert layout["scrollWidth"] <= layout["innerWidth"], (name, layout)
        if elder:
            assert layout["rootFont"] >= 20 and layout["bodyFont"] >= 20, layout
            assert not layout["small"], (name, layout["small"])
        return layout

    check("sign-in")
    sign_in(page, url, secret, used, lang=lang, username=username)
    assert page.evaluate("() => document.documentElement.classList.contains('elder')") == elder
    check("desk")
    field, button, valid = VERIFY_WORDS[lang]
    ec1 = unquote(urlsplit(licence["link"]).fragment)
    assert ec1.startswith("EC1:")
    page.get_by_label(field).fill(ec1)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_selector("[data-verdict]")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "VALID"
    assert page.locator(".verdict h2").inner_text() == valid
    layout = check("valid")
    assert layout["before"] == 0, layout  # the verdict first: no section or form above it
    assert layout["verdictTop"] < layout["innerHeight"] / 2, layout  # seen without scrolling
    context.close()


def test_scripts_are_served_gzipped(stack: Stack, shots: Path) -> None:
    """desk.js and the camera's decoder (jsQR): gzipped when the browser takes gzip (compressed once,
    kept in memory), as they are otherwise; `Vary: Accept-Encoding`; a year's cache by their hash."""
    secret = add_staff(stack, "clerk-weight")
    client = httpx.Client(base_url=stack.verifier.url, follow_redirects=False, timeout=30)
    page = client.get("/desk")
    form = {"csrf_token": csrf_of(page.text), "username": "clerk-weight", "password": PASSWORD,
            "code": fresh_code(secret, [])}  # fmt: skip
    assert client.post("/desk/login", data=form).status_code == 303
    desk = client.get("/desk", headers={"Accept-Encoding": "gzip"})
    assert desk.status_code == 200 and "content-encoding" not in desk.headers  # never the page (BREACH)
    script = re.search(r'<script src="(/static/desk\.js\?v=[0-9a-f]{12})"', desk.text)
    decoder = re.search(r'data-decoder="(/desk/jsqr\.js\?v=[0-9a-f]{12})"', desk.text)
    assert script and decoder
    weight = {"desk_html": len(desk.content)}
    files = {script.group(1): PROJECT_ROOT / "verifier" / "static" / "desk.js",
             decoder.group(1): PROJECT_ROOT / "node_modules" / "jsqr" / "dist" / "jsQR.js"}  # fmt: skip
    for path, source in files.items():
        expected = source.read_bytes()
        name = "decoder" if "jsqr" in path else "desk_js"
        with httpx.stream(
            "GET", f"{stack.verifier.url}{path}", headers={"Accept-Encoding": "gzip, deflate, br"}
        ) as r:
            wire = b"".join(r.iter_raw())
            assert r.status_code == 200 and r.headers["content-encoding"] == "gzip", r.headers
            assert r.headers["vary"] == "Accept-Encoding"
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            etag = r.headers["etag"]
        assert gzip.decompress(wire) == expected and len(wire) < len(expected) / 2
        for refused in ("identity", "gzip;q=0", "br", "deflate"):
            with httpx.stream(
                "GET", f"{stack.verifier.url}{path}", headers={"Accept-Encoding": refused}
            ) as r:
                raw = b"".join(r.iter_raw())
                assert "content-encoding" not in r.headers and r.headers["vary"] == "Accept-Encoding", refused
            assert raw == expected, refused
        plain = httpx.get(
            f"{stack.verifier.url}{path.split('?')[0]}", headers={"Accept-Encoding": "identity"}
        )
        assert plain.content == expected and "immutable" not in plain.headers["cache-control"]
        again = httpx.get(
            f"{stack.verifier.url}{path}", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
        assert again.status_code == 304
        weight[f"{name}_raw"], weight[f"{name}_gzip"] = len(expected), len(wire)
    weight["total_raw"] = weight["desk_html"] + weight["desk_js_raw"] + weight["decoder_raw"]
    weight["total_gzip"] = weight["desk_html"] + weight["desk_js_gzip"] + weight["decoder_gzip"]
    (shots / "page-weight.json").write_text(json.dumps(weight, indent=1))
    print(f"\nfront desk page weight (bytes of bodies): {weight}")
