"""The front desk's `next` after signing in (`verifier.api.desk.safe_next`): only a share page of
this node, rebuilt from its parts, never an open redirect; and when a script may be sent gzipped."""

from __future__ import annotations

import pytest

from verifier.api.desk import accepts_gzip, safe_next


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/s/abc", "/s/abc"),
        ("/s/AbC_-09?lang=en", "/s/AbC_-09?lang=en"),
        ("/s/tok?lang=en&c=0123abcd", "/s/tok?c=0123abcd&lang=en"),
        ("/s/tok?c=ab12&lang=fr&next=//evil", "/s/tok?c=ab12"),
    ],
)
def test_a_share_page_is_kept(given: str, kept: str) -> None:
    assert safe_next(given) == kept


@pytest.mark.parametrize(
    "hostile",
    [
        None, "", "https://evil.example/s/abc", "http://127.0.0.1/s/abc", "//evil.example/s/abc",
        "///evil.example", "/\\evil.example/s/abc", "\\\\evil.example/s/abc", "/s/abc\\@evil.example",
        "javascript:alert(1)", "JaVaScRiPt:/s/abc", "data:text/html,x", "http:/s/abc", "/s/abc\r\nSet-Cookie: x=1",
        "/s/abc\nLocation: //evil", "/s/abc\t", "/s/abc%0d%0a", "/s/%2F%2Fevil.example", "/s/../desk/logout",
        "/s/abc/../../x", "/s/abc/", "/desk", "/s/", "/s", "/s/abc#//evil", "/s/abc?c=<script>",
        "/s/abc?c=a%0d%0ab", " /s/abc", "/s/abc@evil.example", "/s/证照", "/s/abc\x00", "/s/" + "a" * 600,
    ],
)  # fmt: skip
def test_anything_else_is_refused(hostile: str | None) -> None:
    assert safe_next(hostile) is None


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        (None, False), ("", False), ("identity", False), ("br", False), ("deflate, br", False),
        ("gzip", True), ("GZIP", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False), ("gzip; q=0.0", False), ("*", True), ("*;q=0", False), ("gzip;q=0, *", False),
        ("*, gzip;q=0", False), ("x-gzip", True), ("gzip;q=abc", False),
    ],
)  # fmt: skip
def test_gzip_only_when_accepted(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
