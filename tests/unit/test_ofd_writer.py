"""The OFD licence writer (`issuer.ofd`) without a chain: well-formed XML whatever a record holds,
the seal over every part, unsigned without a key, refusals of what is not an OFD package. The
rendering by an independent reader and the QR code's verdict on chain: tests/api/test_licence_ofd.py."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from issuer.ofd import render_licence_ofd, verify_ofd
from registry.certificate.model import Issuer
from registry.certificate.presentation import Presentation
from registry.national import generate_private_key, public_key

ROOT = Path(__file__).resolve().parents[2]
NODE = "https://verify.example.cn"
KEY = generate_private_key()


@pytest.fixture(scope="module")
def presentations() -> list[Presentation]:
    record = json.loads((ROOT / "issuer" / "demo_records.jsonl").read_text("utf-8").splitlines()[0])
    odd = {"holder": {"name": "恶意<测试>&有限公司", "code": "91330108MA27Y8AB1P"},
           "ext": {"note": "<script>alert('x')</script>]]>", "type": "A&B \"公司\""}}  # fmt: skip
    batch = build_batch(
        [record, odd], type_code="11100000000013338W001", type_name="营业执照",
        issuer=Issuer("杭州市市场监督管理局", "11330100002493028E", "330100"),
        signing_key=bytes(Account.create().key), chain_id=31337, registry="0x" + "11" * 20,
        serials=serial_numbers("T"), salt_source=random.Random(3).randbytes, today=dt.date(2026, 12, 4),
    )  # fmt: skip
    assert not batch.rejected
    return list(batch.presentations)


def _parts(ofd: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(ofd)) as package:
        return {name: package.read(name) for name in package.namelist()}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_part_is_well_formed_and_the_text_is_escaped(
    presentations: list[Presentation], lang: str
) -> None:
    ofd = render_licence_ofd(presentations[1], verifier_url=NODE, lang=lang, sm2_private_key=KEY)
    parts = _parts(ofd)
    for name, data in parts.items():
        if name.endswith(".xml"):
            ElementTree.fromstring(data)  # noqa: S314 - our own output
    content = parts["Doc_0/Pages/Page_0/Content.xml"].decode()
    assert "&lt;script&gt;" in content and "<script>" not in content
    assert verify_ofd(ofd, public_key(KEY)).code == "OFD_SEAL_OK"


def test_each_text_run_has_an_advance_per_character(presentations: list[Presentation]) -> None:
    content = ElementTree.fromstring(  # noqa: S314 - our own output
        _parts(render_licence_ofd(presentations[0], verifier_url=NODE))["Doc_0/Pages/Page_0/Content.xml"]
    )
    runs = content.iter("{http://www.ofdspec.org/2016}TextCode")
    for run in runs:
        text = run.text or ""
        assert len((run.get("DeltaX") or "").split()) == len(text) - 1, text


def test_without_a_key_the_file_is_unsigned_and_says_so(presentations: list[Presentation]) -> None:
    ofd = render_licence_ofd(presentations[0], verifier_url=NODE)
    assert not any(name.startswith("Doc_0/Signs/") for name in _parts(ofd))
    assert b"Signatures" not in _parts(ofd)["OFD.xml"]
    assert verify_ofd(ofd, public_key(KEY)).code == "OFD_UNSIGNED"


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7", b"PK\x03\x04" + bytes(40)])
def test_what_is_not_an_ofd_package_is_malformed(data: bytes) -> None:
    check = verify_ofd(data, public_key(KEY))
    assert (check.valid, check.code) == (False, "OFD_MALFORMED")
