"""Field leaves: RFC 8785 text identical to the `rfc8785` package, paths that round-trip, strict parsing."""

from __future__ import annotations

import json
import random

import pytest
import rfc8785
from eth_abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificate.canonical import (
    FieldLeaf,
    canonical_json,
    flatten,
    leaf_value,
    make_leaves,
    unflatten,
)
from registry.certificate.merkle import keccak
from registry.errors import CertificateError

SAFE_INT = 2**53 - 1


def _seeded(seed: int):
    rng = random.Random(seed)
    return rng.randbytes


# --- canonical_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("张三", '"张三"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\b\t\n\f\r\x00\x1f\x7f", '"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f"'),
        ("/<>&\u2028", '"/<>&\u2028"'),
        (0, "0"),
        (-42, "-42"),
        (SAFE_INT, str(SAFE_INT)),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (-0.0, "0"),
        (100.0, "100"),
    ],
)
def test_canonical_json_known_answers(value: object, text: str) -> None:
    assert canonical_json(value) == text
    assert text == rfc8785.dumps(value).decode()


@pytest.mark.parametrize(
    "value", [SAFE_INT + 1, -SAFE_INT - 1, float("nan"), float("inf"), "\ud800", object()]
)
def test_canonical_json_rejects_what_rfc8785_rejects(value: object) -> None:
    with pytest.raises(CertificateError) as e:
        canonical_json(value)
    assert e.value.code == "CERT_MALFORMED"


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(),
        st.integers(-SAFE_INT, SAFE_INT),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_fast_path_is_byte_identical_to_rfc8785(value: object) -> None:
    assert canonical_json(value).encode() == rfc8785.dumps(value)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text(alphabet='张三李四\x00\x1f"\\\n证照'))
def test_strings_round_trip_through_json(value: str) -> None:
    assert json.loads(canonical_json(value)) == value


# --- flatten / unflatten ------------------------------------------------------------------------

CERT = {
    "name": "营业执照",
    "holder": {"name": "张三", "code": "330106199001011234", "codeType": "111"},
    "ext": {
        "scope": ["食品销售", "日用百货"],
        "capital": 1000000,
        "listed": False,
        "note": None,
        "rate": 0.5,
    },
    "empty": {},
    "none": [],
}


def test_flatten_sorts_paths_and_drops_empty_containers() -> None:
    assert flatten(CERT) == [
        ("ext.capital", 1000000),
        ("ext.listed", False),
        ("ext.note", None),
        ("ext.rate", 0.5),
        ("ext.scope[0]", "食品销售"),
        ("ext.scope[1]", "日用百货"),
        ("holder.code", "330106199001011234"),
        ("holder.codeType", "111"),
        ("holder.name", "张三"),
        ("name", "营业执照"),
    ]


def test_nested_lists_and_dicts_in_lists() -> None:
    fields = {"a": [[1, 2], {"b": "x"}, [[None]]]}
    assert flatten(fields) == [("a[0][0]", 1), ("a[0][1]", 2), ("a[1].b", "x"), ("a[2][0][0]", None)]
    assert unflatten(flatten(fields)) == fields


@pytest.mark.parametrize(
    "fields", [{"a.b": 1}, {"a": {"x[0]": 1}}, {"]": 1}, {"": 1}, {1: 2}, {"a": b"bytes"}, {"a": {1, 2}}]
)
def test_flatten_rejects_bad_names_and_types(fields: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(CertificateError) as e:
        flatten(fields)
    assert e.value.code == "CERT_MALFORMED"


def test_unflatten_inverts_flatten() -> None:
    expected = {k: v for k, v in CERT.items() if k not in ("empty", "none")}
    assert unflatten(flatten(CERT)) == expected


def test_unflatten_subsets() -> None:
    pairs = flatten(CERT)
    disclosed = [p for p in pairs if p[0] in ("holder.name", "ext.scope[0]")]
    assert unflatten(disclosed) == {"ext": {"scope": ["食品销售"]}, "holder": {"name": "张三"}}
    # a hidden item in the middle: a dict keyed by index, never a fake null
    assert unflatten([("s[2]", "c"), ("s[0]", "a")]) == {"s": {0: "a", 2: "c"}}
    assert unflatten([("s[1]", "b")]) == {"s": {1: "b"}}


@pytest.mark.parametrize(
    "pairs",
    [
        [("a", 1), ("a.b", 2)],
        [("a.b", 2), ("a", None)],
        [("a", None), ("a.b", 2)],
        [("a[0]", 1), ("a.b", 2)],
        [("a.b", 1), ("a[0]", 2)],
        [("a", 1), ("a", 1)],
    ],
)
def test_unflatten_rejects_conflicts(pairs: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(CertificateError):
        unflatten(pairs)


@pytest.mark.parametrize(
    "path", ["", ".a", "a.", "a..b", "a[01]", "a[-1]", "a[x]", "[0]", "a[0", "a]", "a[0]b"]
)
def test_malformed_paths(path: str) -> None:
    with pytest.raises(CertificateError):
        unflatten([(path, 1)])


_keys = st.text(
    alphabet=st.characters(blacklist_characters=".[]", blacklist_categories=("Cs",)), min_size=1, max_size=6
)
_scalars = st.one_of(st.text(max_size=8), st.integers(-SAFE_INT, SAFE_INT), st.booleans(), st.none())
_trees = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, min_size=1, max_size=4) | st.dictionaries(_keys, kids, min_size=1, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150)
@given(st.dictionaries(_keys, _trees, min_size=1, max_size=5))
def test_flatten_round_trip(fields: dict) -> None:  # type: ignore[type-arg]
    pairs = flatten(fields)
    assert [p for p, _ in pairs] == sorted(p for p, _ in pairs)
    assert unflatten(pairs) == fields
    assert unflatten(reversed(pairs)) == fields


# --- leaves ---------------------------------------------------------------------------------------


def test_make_leaves_uses_the_salt_source_and_canonical_values() -> None:
    leaves = make_leaves(CERT, salt_source=_seeded(7))
    assert leaves == make_leaves(CERT, salt_source=_seeded(7))
    assert [leaf.path for leaf in leaves] == [p for p, _ in flatten(CERT)]
    assert [leaf_value(leaf) for leaf in leaves] == [v for _, v in flatten(CERT)]
    by_path = {leaf.path: leaf for leaf in leaves}
    assert by_path["holder.name"].value == '"张三"'
    assert by_path["ext.listed"].value == "false"
    assert len({leaf.salt for leaf in leaves}) == len(leaves)
    assert all(len(leaf.salt) == 16 for leaf in make_leaves(CERT))


def test_make_leaves_refuses_short_salts() -> None:
    with pytest.raises(ValueError):
        make_leaves(CERT, salt_source=lambda n: bytes(n - 1))


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    leaf = FieldLeaf(bytes(range(16)), "holder.name", '"张三"')
    encoded = encode(["bytes16", "string", "string"], [leaf.salt, leaf.path, leaf.value])
    assert leaf.hash() == keccak(keccak(encoded))


def test_json_round_trip() -> None:
    for leaf in make_leaves(CERT, salt_source=_seeded(1)):
        d = leaf.to_json()
        assert d["salt"].startswith("0x") and len(d["salt"]) == 34
        assert FieldLeaf.from_json(json.loads(json.dumps(d))) == leaf


GOOD = {"salt": "0x" + "ab" * 16, "path": "holder.name", "value": '"张三"'}


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "salt": "ab" * 16},
        {**GOOD, "salt": "0x" + "ab" * 15},
        {**GOOD, "salt": "0x" + "zz" * 16},
        {**GOOD, "salt": 5},
        {**GOOD, "path": "holder..name"},
        {**GOOD, "path": None},
        {**GOOD, "value": "张三"},
        {**GOOD, "value": '"张三" '},
        {**GOOD, "value": "1.0"},
        {**GOOD, "value": '{"a":1}'},
        {**GOOD, "value": "[1]"},
        {**GOOD, "value": "NaN"},
        {**GOOD, "value": "9007199254740992"},  # 2**53: not exact in IEEE 754
        {**GOOD, "value": "100000000000000000000"},  # beyond 64 bits (a float to orjson, whose text matches)
        {**GOOD, "value": "1e400"},
        {**GOOD, "value": "[" * 2000},
        {**GOOD, "value": 1},
        {"salt": GOOD["salt"], "path": "a"},
        ["not", "a", "dict"],
    ],
)
def test_from_json_is_strict(bad: object) -> None:
    """Every value `json.loads` plus the RFC 8785 re-encoding rejects is rejected (the parser is orjson)."""
    with pytest.raises(CertificateError) as e:
        FieldLeaf.from_json(bad)
    assert e.value.code == "CERT_MALFORMED"
