"""Bodies holding text that is not Unicode are recognised, whatever else they hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.text_guard import FORM, JSON, is_broken

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, derandomize=True)
@given(before=UNICODE, lone=SURROGATES, after=UNICODE)
def test_a_lone_surrogate_anywhere_in_json_is_broken(before: str, lone: str, after: str) -> None:
    document = {"a": [1, {"deep": before + lone + after}], "z": "ok"}
    assert is_broken(json.dumps(document).encode(), JSON)


@settings(max_examples=200, derandomize=True)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | UNICODE,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(UNICODE, inner, max_size=3),
        max_leaves=10,
    )
)
def test_any_unicode_json_is_fine_escaped_or_not(document: object) -> None:
    for ensure_ascii in (True, False):  # True writes emoji as \\ud83d\\ude00 pairs: valid
        assert not is_broken(json.dumps(document, ensure_ascii=ensure_ascii).encode(), JSON)


@pytest.mark.parametrize(
    "body", [b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}', b'{"a": "\xc3"}', b'["\xf4\x90\x80\x80"]']
)
def test_bytes_that_are_not_utf8_are_broken(body: bytes) -> None:
    assert is_broken(body, JSON)


@pytest.mark.parametrize(("body", "broken"), [
    (b"name=%E5%BC%A0%E4%B8%89&code=1", False), (b"name=a+b&x=%2B", False),
    (b"name=%ED%A0%80", True), (b"name=%FF", True), (b"name=\xff", True), (b"name=%E5%BC", True),
])  # fmt: skip
def test_form_bodies(body: bytes, broken: bool) -> None:
    assert is_broken(body, FORM) is broken


def test_not_json_is_left_to_the_route_and_a_literal_backslash_u_is_fine() -> None:
    assert not is_broken(b'{"a": "\\ud800', JSON)  # invalid JSON: the route answers JSON_INVALID
    assert not is_broken(
        json.dumps({"path": "C:\\\\ud800"}).encode(), JSON
    )  # an escaped backslash, then text
