"""The printable licence as an OFD file (issue 13, points 7 and 8), over real HTTP: `ecert serve
issuer` on a real anvil chain issues a certificate, `GET /v1/certificates/{id}/licence.ofd` prints
it, and readers we did not write open the file: ofdkit reads its text, easyofd renders its page
(its own XML parser, reportlab, PyMuPDF's rasteriser), zbar reads the QR code off that image and
the verifier's pipeline finds the link VALID on the chain. The seal is checked with the agency's
SM2 key as the trust registry on chain has it, and fails after any one byte changes."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from issuer_server import AGENCY_A, TYPE, IssuerHome, IssuerServer, issuer_home, issuer_server
from service_process import wait_for
from sqlalchemy import create_engine, text

from issuer.ofd import SIGNATURE, SIGNED_VALUE, verify_ofd
from registry.certificate.links import read_scanned
from registry.certificate.presentation import Presentation
from registry.national import generate_private_key, public_key
from registry.qr import decode_qr
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation

pytestmark = pytest.mark.chain

NS = {"ofd": "http://www.ofdspec.org/2016"}
PERSON = "11010519491231002X"
CONTENT = "Doc_0/Pages/Page_0/Content.xml"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ofd"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerHome]:
    with issuer_home(tmp_path_factory.mktemp("licence-ofd")) as made:
        yield made


@pytest.fixture(scope="module")
def server(home: IssuerHome) -> Iterator[IssuerServer]:
    with issuer_server(home, "sqlite") as running:
        yield running


@pytest.fixture(scope="module")
def api(server: IssuerServer) -> Iterator[httpx.Client]:
    with server.client(server.api_key(AGENCY_A, "issue")) as client:
        yield client


@pytest.fixture(scope="module")
def reader(home: IssuerHome) -> RegistryReader:
    return RegistryReader(home.registry())


@pytest.fixture(scope="module")
def certificate(api: httpx.Client) -> str:
    record = {
        "holder": {"name": "钱七", "code": PERSON},
        "validUntil": "2040-12-31",
        "ext": {"address": "杭州市西湖区"},
    }
    job = api.post("/v1/batches", json={"typeCode": TYPE, "records": [record]})
    assert job.status_code == 202, job.text
    done = wait_for(lambda: (j := api.get(f"/v1/jobs/{job.json()['id']}").json())["done"] and j)
    [identifier] = done["identifiers"]
    return str(identifier)


@pytest.fixture(scope="module")
def ofd(api: httpx.Client, certificate: str) -> bytes:
    response = api.get(f"/v1/certificates/{certificate}/licence.ofd")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ofd"
    assert response.headers["x-ecert-ofd-sealed"] == "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "licence.ofd").write_bytes(response.content)
    return response.content


@pytest.fixture(scope="module")
def rendered(ofd: bytes, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Page 1 rendered by easyofd, as PNG (once per module: it is the slow part)."""
    png = render_with_easyofd(ofd, tmp_path_factory.mktemp("easyofd"))
    (ARTIFACTS / "licence-easyofd.png").write_bytes(png)
    return png


def render_with_easyofd(ofd: bytes, folder: Path) -> bytes:
    """easyofd draws every text run in a font it asks reportlab for by the name "宋体", ignoring the
    file's embedded fonts (OFD's FontFile); without one it falls back to Helvetica through a slow
    failing lookup per character. So "宋体" is, for the render, the file's own embedded text font,
    as a reader that honours FontFile would use it. easyofd writes into the working directory,
    prints, logs through loguru and imports the deprecated `fitz`: all kept out of the way."""
    from loguru import logger
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    font = zipfile.ZipFile(io.BytesIO(ofd)).read("Doc_0/Res/font_text.ttf")
    logger.disable("easyofd")
    cwd = Path.cwd()
    os.chdir(folder)
    pdfmetrics.registerFont(TTFont("宋体", io.BytesIO(font)))
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            from easyofd.ofd import OFD

            reader = OFD()
            started = time.perf_counter()
            reader.read(ofd, fmt="binary")
            pages = reader.to_jpg()
            reader.del_data()
            took = time.perf_counter() - started
    finally:
        logging.disable(logging.NOTSET)
        pdfmetrics._fonts.pop("宋体", None)
        pdfmetrics._dynFaceNames.pop("宋体", None)
        os.chdir(cwd)
    print(f"easyofd rendered {len(pages)} page(s) in {took:.1f} s")
    assert len(pages) == 1
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PNG")
    return buffer.getvalue()


def parts(ofd: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(ofd)) as package:
        return {name: package.read(name) for name in package.namelist()}


def repack(ofd: bytes, **changed: Any) -> bytes:
    """The package with some parts replaced (keyword: the part's name with / and . as _)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts(ofd).items():
            package.writestr(name, changed.get(name.replace("/", "_").replace(".", "_"), data))
    return buffer.getvalue()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# ─── the file ────────────────────────────────────────────────────────────────────────────


def test_the_package_has_the_standard_s_parts_as_well_formed_xml(ofd: bytes) -> None:
    found = parts(ofd)
    assert {
        "OFD.xml", "Doc_0/Document.xml", "Doc_0/PublicRes.xml", "Doc_0/DocumentRes.xml", CONTENT,
        "Doc_0/Res/qr.png", "Doc_0/Signs/Signatures.xml", SIGNATURE, SIGNED_VALUE,
    } <= set(found)  # fmt: skip
    xml = {name: ElementTree.fromstring(data) for name, data in found.items() if name.endswith(".xml")}  # noqa: S314
    assert all(root.tag.startswith("{http://www.ofdspec.org/2016}") for root in xml.values())
    body = xml["OFD.xml"].find("ofd:DocBody", NS)
    assert body is not None
    assert body.findtext("ofd:DocRoot", namespaces=NS) == "Doc_0/Document.xml"
    assert body.findtext("ofd:DocInfo/ofd:Creator", namespaces=NS) == "ecert"
    assert body.findtext("ofd:Signatures", namespaces=NS) == "Doc_0/Signs/Signatures.xml"
    assert (
        xml["Doc_0/Document.xml"].findtext("ofd:CommonData/ofd:PageArea/ofd:PhysicalBox", namespaces=NS)
        == "0 0 210 297"
    )
    fonts = xml["Doc_0/PublicRes.xml"].findall("ofd:Fonts/ofd:Font", NS)
    assert {font.get("FamilyName") for font in fonts} == {"宋体", "黑体"}
    for font in fonts:  # embedded, TrueType
        assert (
            found["Doc_0/Res/" + (font.findtext("ofd:FontFile", namespaces=NS) or "")][:4]
            == b"\x00\x01\x00\x00"
        )
    assert found["Doc_0/Res/qr.png"].startswith(b"\x89PNG")
    signature = xml[SIGNATURE]
    assert signature.findtext("ofd:SignedInfo/ofd:SignatureMethod", namespaces=NS) == "1.2.156.10197.1.501"
    refs = signature.find("ofd:SignedInfo/ofd:References", NS)
    assert refs is not None and refs.get("CheckMethod") == "1.2.156.10197.1.401"
    referenced = {ref.get("FileRef") for ref in refs.findall("ofd:Reference", NS)}
    assert referenced == {f"/{name}" for name in found if not name.startswith("Doc_0/Signs/")}
    assert len(ofd) < 120_000


def test_ofdkit_reads_the_licence_s_text(ofd: bytes, certificate: str, tmp_path: Path) -> None:
    import ofdkit

    (tmp_path / "licence.ofd").write_bytes(ofd)
    with ofdkit.open(str(tmp_path / "licence.ofd")) as document:
        page = document.text()
    for shown in (certificate, "钱七", "杭州市市场监督管理局", "电子证照打印件", "2040年12月31日"):
        assert shown in page, shown
    assert PERSON not in page  # an ID number is printed masked


# ─── an independent reader renders it; the QR code on the page verifies ─────────────────


def test_easyofd_renders_the_page_and_its_qr_code_verifies(
    rendered: bytes, certificate: str, reader: RegistryReader
) -> None:
    [link] = decode_qr(rendered)
    printed = Presentation.from_ec1(read_scanned(link).ec1 or "")
    assert printed.fields()["identifier"] == certificate
    assert "holder.code" not in printed.paths() and printed.fields()["holder"]["name"] == "钱七"
    report = verify_presentation(printed, reader)
    assert (report.verdict, report.reason) == (Outcome.VALID, None)


# ─── the SM2 seal ─────────────────────────────────────────────────────────────────────────


def test_the_seal_verifies_with_the_agency_s_sm2_key_on_chain(ofd: bytes, reader: RegistryReader) -> None:
    keys = reader.national_keys(AGENCY_A)
    assert keys, "the agency has no SM2 key on chain"
    check = verify_ofd(ofd, keys[-1].public_key)
    assert (check.valid, check.code) == (True, "OFD_SEAL_OK") and check.references >= 9


def test_one_changed_byte_or_another_key_breaks_the_seal(ofd: bytes, reader: RegistryReader) -> None:
    key = reader.national_keys(AGENCY_A)[-1].public_key
    found = parts(ofd)
    content = found[CONTENT]
    at = content.index(b"</ofd:TextCode>") - 1  # one character of the first printed line
    for tampered, code, part in (
        (repack(ofd, Doc_0_Pages_Page_0_Content_xml=flip(content, at)), "OFD_DIGEST_MISMATCH", CONTENT),
        (repack(ofd, Doc_0_Signs_Sign_0_SignedValue_dat=flip(found[SIGNED_VALUE], len(found[SIGNED_VALUE]) - 1)),
         "OFD_SIGNATURE_INVALID", SIGNED_VALUE),
        (repack(ofd, Doc_0_Signs_Sign_0_Signature_xml=found[SIGNATURE].replace(b"Z</ofd:SignatureDateTime>",
                                                                                b"Z </ofd:SignatureDateTime>")),
         "OFD_SIGNATURE_INVALID", SIGNED_VALUE),
    ):  # fmt: skip
        check = verify_ofd(tampered, key)
        assert (check.valid, check.code, check.part) == (False, code, part)
    check = verify_ofd(ofd, public_key(generate_private_key()))
    assert (check.valid, check.code) == (False, "OFD_SIGNATURE_INVALID")
    for at in (len(ofd) // 3, len(ofd) // 2):  # a raw byte of the zip: a CRC or deflate stream breaks
        assert verify_ofd(flip(ofd, at), key).code in ("OFD_MALFORMED", "OFD_DIGEST_MISMATCH")
    extra = io.BytesIO(ofd)
    with zipfile.ZipFile(extra, "a") as package:
        package.writestr("Doc_0/Pages/Page_1/Content.xml", "<x/>")
    assert verify_ofd(extra.getvalue(), key).code == "OFD_PART_UNSIGNED"


def test_printing_an_ofd_is_audited(api: httpx.Client, server: IssuerServer, certificate: str) -> None:
    def printed() -> int:
        engine = create_engine(server.database_url)
        try:
            with engine.connect() as db:
                sql = "SELECT COUNT(*) FROM audit_log WHERE action = 'print' AND subject = :s AND details LIKE :d"
                return int(db.execute(text(sql), {"s": certificate, "d": '%"format":"ofd"%'}).scalar_one())
        finally:
            engine.dispose()

    before = printed()
    response = api.get(f"/v1/certificates/{certificate}/licence.ofd", params={"lang": "en"})
    assert response.status_code == 200 and response.content.startswith(b"PK")
    assert printed() == before + 1
