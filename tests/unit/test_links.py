"""Verification links `<node>/v#EC1:…` and what a scanned QR code says (registry/certificate/links.py)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.certificate.links import Scanned, is_link, read_scanned, share_link_node, verify_link
from registry.errors import CertificateError

BASE45 = string.digits + string.ascii_uppercase + " $%*+-./:"
QR_ALPHANUMERIC = set(BASE45)

LINKS = [  # (node, EC1 payload, link)
    ("https://verify.example.cn", "EC1:6BF%20+A", "https://verify.example.cn/v#EC1:6BF%2520+A"),
    ("https://verify.example.cn/", "EC1:A B%C", "https://verify.example.cn/v#EC1:A%20B%25C"),
    ("https://gov.example/ecert/node", "EC1:$*+-./:", "https://gov.example/ecert/node/v#EC1:$*+-./:"),
]


@pytest.mark.parametrize(("node", "ec1", "link"), LINKS)
def test_a_link_percent_encodes_only_space_and_percent_and_reads_back(node: str, ec1: str, link: str) -> None:
    assert verify_link(node, ec1) == link
    assert read_scanned(link) == Scanned(ec1=ec1)


@given(st.text(alphabet=BASE45, max_size=300))
def test_every_base45_payload_round_trips_and_stays_qr_alphanumeric_after_the_hash(body: str) -> None:
    link = verify_link("https://verify.example.cn", "EC1:" + body)
    assert " " not in link and set(link.split("#", 1)[1]) <= QR_ALPHANUMERIC
    assert read_scanned(link).ec1 == "EC1:" + body


SCANNED = {
    "bare": ("  EC1:ABC\n", Scanned(ec1="EC1:ABC")),
    "a space the browser encoded": ("https://n.example/v#EC1:A%20B", Scanned(ec1="EC1:A B")),
    "any path": ("HTTPS://N.EXAMPLE/s/tok#EC1:AB", Scanned(ec1="EC1:AB")),
    "share link": ("https://n.example/s/tok?c=123", Scanned(share_url="https://n.example/s/tok?c=123")),
    "share link, fragment dropped": (
        "http://n.example/a/s/tok#x",
        Scanned(share_url="http://n.example/a/s/tok"),
    ),
}


@pytest.mark.parametrize(("text", "expected"), SCANNED.values(), ids=SCANNED.keys())
def test_what_a_qr_code_says(text: str, expected: Scanned) -> None:
    assert read_scanned(text) == expected


REFUSED = {
    "no payload": ("https://n.example/v", "LINK_INVALID"),
    "another fragment": ("https://n.example/v#hello", "LINK_INVALID"),
    "share path without a token": ("https://n.example/s/", "LINK_INVALID"),
    "a broken host": ("https://[n.example/v#EC1:A", "LINK_INVALID"),
    "not a link": ("ftp://n.example/v#EC1:A", "CERT_MALFORMED"),
    "text": ("hello", "CERT_MALFORMED"),
}


@pytest.mark.parametrize(("text", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_anything_else_is_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(CertificateError) as refused:
        read_scanned(text)
    assert refused.value.code == code


def test_helpers() -> None:
    assert is_link(" https://x") and is_link("HTTP://x") and not is_link("EC1:x") and not is_link("file:///x")
    assert share_link_node("https://n.example/node/s/tok?c=1") == "https://n.example/node"
    with pytest.raises(CertificateError):
        share_link_node("https://n.example/v")
    with pytest.raises(ValueError):
        verify_link("https://n.example", "HC1:ABC")
