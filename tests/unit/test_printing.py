"""The printable licence: the HTML face and the A4 PDF, its fonts embedded (a Noto CJK subset),
with a QR code that is a verification link `<node>/v#EC1:…` of a small disclosure and still scans
from a 100 dpi rendering of the page."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pypdf
import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from issuer.printing import QR_PATHS, licence_face, licence_link, render_licence_html, render_licence_pdf
from registry.certificate.links import read_scanned
from registry.certificate.model import Issuer
from registry.certificate.presentation import BOUND_PATHS, Presentation
from registry.qr import decode_qr
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "printing"
ISSUER = Issuer("杭州市市场监督管理局", "11330100002493028E", "330100")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ID_NUMBER = "11010519491231002X"
LONG_SCOPE = [f"一般项目{i}：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广" for i in range(12)]
DEMO, PERSON, MALICIOUS, LONG = range(4)
NODE = "https://verify.example.cn"  # the verifier node the printed QR codes link to


@pytest.fixture(scope="module")
def batch():
    records = [
        json.loads(line)
        for line in (ROOT / "issuer" / "demo_records.jsonl").read_text("utf-8").splitlines()[:2]
    ]
    assert records[PERSON]["holder"]["code"] == ID_NUMBER and "validUntil" not in records[PERSON]
    records.append({
        "holder": {"name": "恶意测试有限公司", "code": "91330108MA27Y8AB1P"},
        "ext": {"note": "<script>alert('x')</script>", "type": "A&B <b>公司</b>"},
    })  # fmt: skip
    records.append(
        {"holder": {"name": "长范围有限公司", "code": "91330108MA27Y8AB1P"}, "ext": {"scope": LONG_SCOPE}}
    )
    batch = build_batch(
        records, type_code="11100000000013338W001", type_name="营业执照", issuer=ISSUER,
        signing_key=bytes(Account.create().key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("T"), salt_source=random.Random(7).randbytes, today=dt.date(2026, 11, 23),
    )  # fmt: skip
    assert not batch.rejected
    return batch


def _qr_from_html(html: str) -> bytes:
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 1
    return base64.b64decode(uris[0])


def _pdf(raw: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(raw))


# ─── HTML ─────────────────────────────────────────────────────────────────────────────────


def test_html_shows_the_licence_face(batch) -> None:
    presentation = batch.presentations[DEMO]
    fields = presentation.fields()
    html = render_licence_html(presentation, verifier_url=NODE)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    for text in (
        "营业执照", "杭州西湖龙井茶业有限公司", fields["identifier"], "杭州市市场监督管理局", "证照编号", "330106000123456",
        "统一社会信用代码", "91330106MA2H3XY60L",  # a USCC is printed in full
        "法定代表人", "张三", "类型", "有限责任公司", "注册资本", "500万元人民币", "住所", "浙江省杭州市西湖区龙井路1号",
        "经营范围", "茶叶种植；茶叶销售", "发证日期", "2026年11月23日", "有效期", "2026年11月23日 至 2046年05月31日",
        "发证机关", "扫码核验 / Scan to verify",
    ):  # fmt: skip
        assert text in html, text
    assert "长期" not in html
    # Print-ready and self-contained: A4 page rule, no scripts, nothing fetched from elsewhere.
    assert "@page" in html and "A4 portrait" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html and "<link" not in html


def test_html_masks_an_id_number_and_prints_long_term(batch) -> None:
    html = render_licence_html(batch.presentations[PERSON], verifier_url=NODE)
    assert "李四" in html and "身份证件号码" in html
    assert "1101**********002X" in html and ID_NUMBER not in html
    assert "2026年11月23日 至 长期" in html


def test_a_disclosure_hides_what_the_holder_did_not_show(batch) -> None:
    full = batch.presentations[PERSON]
    # holder.code disclosed without its masked twin: still printed masked.
    shown = full.disclose(
        ["name", "identifier", "holder.name", "holder.code", "holder.codeType", "validFrom", "issuer.name"]
    )
    html = render_licence_html(shown, verifier_url=NODE)
    assert "1101**********002X" in html and ID_NUMBER not in html
    # validUntil not disclosed is not 长期: the holder may just have hidden it.
    assert "长期" not in html and "（未披露）" in html and "部分披露" in html
    assert "个体工商户" not in html  # ext.type was not disclosed


def test_html_escapes_field_values(batch) -> None:
    html = render_licence_html(batch.presentations[MALICIOUS], verifier_url=NODE)
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "A&amp;B &lt;b&gt;公司&lt;/b&gt;" in html
    assert "<dt>其他事项（Note）</dt>" in html  # an unknown ext key gets a humanised label


def test_html_qr_code_scans_to_a_verification_link_of_a_small_disclosure(batch) -> None:
    presentation = batch.presentations[DEMO]
    [link] = decode_qr(_qr_from_html(render_licence_html(presentation, verifier_url=NODE)))
    assert link == licence_link(presentation, NODE) and link.startswith(f"{NODE}/v#EC1:")
    printed = Presentation.from_ec1(read_scanned(link).ec1 or "")
    assert set(printed.paths()) == {*QR_PATHS, *BOUND_PATHS}  # no other field, no full ID number
    assert printed.computed_digest() == presentation.digest
    # A disclosure is printed with exactly its own fields; a payload given is the QR code.
    shown = presentation.disclose(["name", "identifier", "holder.name"])
    [link] = decode_qr(_qr_from_html(render_licence_html(shown, verifier_url=NODE)))
    assert read_scanned(link).ec1 == shown.to_ec1()
    disclosure = shown.to_ec1()
    assert decode_qr(
        _qr_from_html(render_licence_html(presentation, qr_payload=disclosure, verifier_url=NODE))
    ) == [disclosure]


def test_english_labels(batch) -> None:
    html = render_licence_html(batch.presentations[PERSON], lang="en", verifier_url=NODE)
    assert '<html lang="en">' in html
    for text in ("Holder", "ID number", "Licence No.", "Issuing authority", "Scan to verify"):
        assert text in html, text
    assert "long-term (长期)" in html and "2026-11-23" in html and ID_NUMBER not in html
    assert "Legal representative" in render_licence_html(
        batch.presentations[DEMO], lang="en", verifier_url=NODE
    )
    with pytest.raises(ValueError, match="lang"):
        render_licence_html(batch.presentations[DEMO], lang="fr", verifier_url=NODE)


def test_rendering_is_pure(batch) -> None:
    presentation = batch.presentations[DEMO]
    before = presentation.to_json()
    assert render_licence_html(presentation, verifier_url=NODE) == render_licence_html(
        presentation, verifier_url=NODE
    )
    assert render_licence_pdf(presentation, verifier_url=NODE) == render_licence_pdf(
        presentation, verifier_url=NODE
    )  # invariant PDF: no timestamps, the same font subsets
    assert presentation.to_json() == before
    assert licence_face(presentation).title == "营业执照"


# ─── PDF ──────────────────────────────────────────────────────────────────────────────────


def test_pdf_is_one_a4_page_with_extractable_chinese_text(batch) -> None:
    presentation = batch.presentations[DEMO]
    raw = render_licence_pdf(presentation, verifier_url=NODE)
    assert raw.startswith(b"%PDF")
    reader = _pdf(raw)
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    text = page.extract_text()  # pypdf maps the embedded subsets back to Unicode (their ToUnicode maps)
    for expected in (
        "营业执照", "杭州西湖龙井茶业有限公司", presentation.fields()["identifier"], "杭州市市场监督管理局",
        "法定代表人", "张三", "500万元人民币", "茶叶种植；茶叶销售", "2026年11月23日 至 2046年05月31日", "91330106MA2H3XY60L",
    ):  # fmt: skip
        assert expected in text, expected


def test_pdf_masks_an_id_number_and_prints_long_term(batch) -> None:
    page = _pdf(render_licence_pdf(batch.presentations[PERSON], verifier_url=NODE)).pages[0]
    text = page.extract_text()
    assert "李四" in text and "1101**********002X" in text and "长期" in text
    assert ID_NUMBER not in text and ID_NUMBER.encode() not in page.get_contents().get_data()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_embeds_every_font_a_noto_cjk_subset(batch, lang: str) -> None:
    """Every font is embedded (no viewer or printer substitutes one): Noto Serif CJK SC, its bold
    for the title and Noto Sans Mono CJK SC for identifiers, each a subset (`ABCDEF+` prefix)."""
    presentation = batch.presentations[PERSON]
    page = _pdf(render_licence_pdf(presentation, verifier_url=NODE, lang=lang)).pages[0]
    fonts = {}
    for font in (ref.get_object() for ref in page["/Resources"]["/Font"].values()):
        descriptor = (
            font["/FontDescriptor"]
            if "/FontDescriptor" in font
            else font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        )
        fonts[str(font["/BaseFont"])] = {"/FontFile", "/FontFile2", "/FontFile3"} & set(
            descriptor.get_object()
        )
    assert fonts and all(fonts.values()), fonts
    assert {name.split("+", 1)[1] for name in fonts} == {
        "NotoSerifCJKsc-Regular", "NotoSerifCJKsc-Bold", "NotoSansMonoCJKsc-Regular",
    }  # fmt: skip
    assert all(re.fullmatch(r"/[A-Z]{6}\+.+", name) for name in fonts)  # subsets, not whole fonts
    text = page.extract_text()
    for expected in ("营业执照", "李四", "1101**********002X", presentation.fields()["identifier"], "杭州市市场监督管理局",
                     "浙江省杭州市上城区解放路88号", "扫码核验 / Scan to verify"):  # fmt: skip
        assert expected in text, expected


def test_pdf_wraps_a_long_business_scope(batch) -> None:
    reader = _pdf(render_licence_pdf(batch.presentations[LONG], verifier_url=NODE))
    assert len(reader.pages) == 1
    lines = reader.pages[0].extract_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("经营范围"))
    end = next(i for i, line in enumerate(lines) if line.startswith("有效期"))
    assert end - start >= 5  # wrapped over several lines
    assert "".join(lines[start:end]).removeprefix("经营范围").strip() == "；".join(LONG_SCOPE)  # none lost


# ─── For a human: the demo licence as HTML, PDF and (with chromium) a screenshot ────────────


def test_save_artifacts_for_review(batch) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    presentation = batch.presentations[DEMO]
    html_path = ARTIFACTS / "licence.html"
    html_path.write_text(render_licence_html(presentation, verifier_url=NODE), encoding="utf-8")
    (ARTIFACTS / "licence.pdf").write_bytes(render_licence_pdf(presentation, verifier_url=NODE))
    (ARTIFACTS / "licence-id-holder.html").write_text(
        render_licence_html(batch.presentations[PERSON], verifier_url=NODE), encoding="utf-8"
    )
    (ARTIFACTS / "licence-id-holder.pdf").write_bytes(
        render_licence_pdf(batch.presentations[PERSON], verifier_url=NODE)
    )
    (ARTIFACTS / "licence-en.html").write_text(
        render_licence_html(presentation, lang="en", verifier_url=NODE), encoding="utf-8"
    )
    (ARTIFACTS / "licence-long-scope.pdf").write_bytes(
        render_licence_pdf(batch.presentations[LONG], verifier_url=NODE)
    )
    assert _pdf((ARTIFACTS / "licence.pdf").read_bytes()).pages

    chromium = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if chromium is None:
        pytest.skip("chromium is not installed: no screenshot (HTML and PDF are saved)")
    screenshot = ARTIFACTS / "licence.png"
    screenshot.unlink(missing_ok=True)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={screenshot}",
         "--window-size=900,1300", html_path.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def scan_printed_page(pdf: bytes, folder: Path, dpi: int = 100) -> list[str]:
    """Rasterise the whole page with Ghostscript at `dpi` (a cheap scan or fax) and read it with zbar."""
    gs = shutil.which("gs")
    if gs is None:
        pytest.fail("Ghostscript is not installed: run scripts/install.sh")
    pdf_path, png_path = folder / "licence.pdf", folder / "licence.png"
    pdf_path.write_bytes(pdf)
    subprocess.run(
        [gs, "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pnggray", f"-r{dpi}", f"-sOutputFile={png_path}", str(pdf_path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return decode_qr(png_path)


@pytest.mark.parametrize("which", [DEMO, PERSON, LONG])
def test_pdf_qr_code_scans_from_the_page_at_100_dpi_and_verifies_offline(batch, tmp_path, which: int) -> None:
    """The QR code of the printed page, rendered at 100 dpi, reads back as the verification link,
    whose payload is the certificate (its digest, its seal: the checks that need no chain)."""
    presentation = batch.presentations[which]
    assert scan_printed_page(render_licence_pdf(presentation, verifier_url=NODE), tmp_path) == [
        licence_link(presentation, NODE)
    ]
    printed = Presentation.from_ec1(read_scanned(licence_link(presentation, NODE)).ec1 or "")
    outcomes = {c.kind: c.outcome for c in verify_presentation(printed, None).checks}
    assert (outcomes["integrity"], outcomes["seal"], outcomes["validity"]) == (Outcome.VALID,) * 3


def test_pdf_qr_code_of_a_large_batch_still_scans_at_100_dpi(tmp_path) -> None:
    """A certificate of a 1,024-certificate batch carries a 10-hash batch proof: a denser code, drawn
    no larger than the page allows, still reads at 100 dpi."""
    record = json.loads((ROOT / "issuer" / "demo_records.jsonl").read_text("utf-8").splitlines()[0])
    large = build_batch(
        [record] * 1024, type_code="11100000000013338W001", type_name="营业执照", issuer=ISSUER,
        signing_key=bytes(Account.create().key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("L"), salt_source=random.Random(8).randbytes, today=dt.date(2026, 11, 23),
    )  # fmt: skip
    presentation = large.presentations[1000]
    assert len(presentation.batch_proof) == 10
    assert scan_printed_page(render_licence_pdf(presentation, verifier_url=NODE), tmp_path) == [
        licence_link(presentation, NODE)
    ]
