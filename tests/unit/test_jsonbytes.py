"""`jsonbytes.dumps` writes exactly what the standard encoder writes (the receipts' RFC 8785 bytes
and the request digests rest on that), and fails the way it fails."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.jsonbytes import JSONBytesResponse, dumps

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # every code point but lone surrogates
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=25,
)


def _standard(value: object, sort_keys: bool) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":")).encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(_json, st.booleans())
def test_same_bytes_as_the_standard_encoder(value: object, sort_keys: bool) -> None:
    assert dumps(value, sort_keys=sort_keys) == _standard(value, sort_keys)


@pytest.mark.parametrize("text", ['\x00\x1f\x7f"\\\n\t\b\f\r', "\u2028\u2029", "中文 é 😀"])
def test_escapes_control_characters_as_the_standard_encoder_does(text: str) -> None:
    assert dumps({"k": [text]}) == _standard({"k": [text]}, False)


def test_what_orjson_refuses_goes_through_the_standard_encoder() -> None:
    assert dumps({"big": 2**70, 1: "non-string key"}) == _standard({"big": 2**70, 1: "non-string key"}, False)
    deep: list = []
    for _ in range(300):
        deep = [deep]
    assert dumps(deep) == _standard(deep, False)
    with pytest.raises(UnicodeEncodeError):
        dumps({"path": "\ud800"})


def test_response_renders_with_dumps() -> None:
    response = JSONBytesResponse({"verdict": "VALID", "名": 1}, status_code=200)
    assert response.body == _standard({"verdict": "VALID", "名": 1}, False)
    assert response.headers["content-type"] == "application/json"
