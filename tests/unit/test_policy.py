"""Recognition policy: GB/T 2260 prefix matching, types, required fields, the example files."""

from __future__ import annotations

import json

import pytest

from registry.errors import ConfigError
from verifier.policy import POLICY_DIR, Policy, covers_path, region_prefix

LICENCE = "11100000000013338W001"
DRIVING = "11100000000013338W002"


def policy(*rules: dict, region: str = "330000") -> Policy:
    return Policy.from_json({"region": region, "recognise": list(rules)})


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("*", ""),
        ("440000", "44"),
        ("44xxxx", "44"),
        ("440100", "4401"),
        ("4401xx", "4401"),
        ("440103", "440103"),
        ("3301xx", "3301"),
    ],
)
def test_region_patterns_are_gbt2260_prefixes(pattern: str, prefix: str) -> None:
    assert region_prefix(pattern) == prefix


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "44",
        "4401",
        "4401000",
        "000000",
        "00xxxx",
        "xx0000",
        "44x100",
        "44xx01",
        "４４００００",
        "**",
        440000,
    ],
)
def test_bad_region_patterns_are_refused(pattern) -> None:
    with pytest.raises(ConfigError) as refused:
        policy({"types": ["*"], "regions": [pattern]})
    assert refused.value.code == "POLICY_INVALID"


@pytest.mark.parametrize(
    ("rule_region", "issuer_region", "allowed"),
    [
        ("*", "650102", True),
        ("440000", "440000", True), ("440000", "440100", True), ("440000", "445381", True), ("440000", "450100", False),
        ("440100", "440103", True), ("440100", "440100", True), ("440100", "440300", False), ("440100", "440000", False),
        ("3301xx", "330106", True), ("3301xx", "330206", False),
        ("440103", "440103", True), ("440103", "440104", False),
    ],
)  # fmt: skip
def test_region_matching(rule_region: str, issuer_region: str, allowed: bool) -> None:
    ok, reason = policy({"types": [LICENCE], "regions": [rule_region]}).allows(LICENCE, issuer_region)
    assert ok is allowed
    assert LICENCE in reason and issuer_region in reason


def test_regions_on_chain_are_integers() -> None:
    p = policy({"types": ["*"], "regions": ["110000"]})
    assert p.allows(LICENCE, 110105)[0] and not p.allows(LICENCE, 310105)[0]
    assert p.allows(LICENCE, 1)[0] is False  # 000001: no province 00


def test_types_exact_or_any() -> None:
    p = policy({"types": [LICENCE], "regions": ["*"]}, {"types": ["*"], "regions": ["330000"]})
    assert p.allows(LICENCE, "440100")[0]
    assert not p.allows(DRIVING, "440100")[0]
    assert p.allows(DRIVING, "330100")[0]


@pytest.mark.parametrize("issuer_region", ["", "33010", "3301000", "abcdef", None, True, -1])
def test_a_malformed_issuer_region_is_never_recognised(issuer_region) -> None:
    ok, reason = policy({"types": ["*"], "regions": ["*"]}).allows(LICENCE, issuer_region)
    assert not ok and "GB/T 2260" in reason


def test_an_empty_policy_recognises_nothing() -> None:
    assert policy().allows(LICENCE, "330100") == (
        False,
        f"Node 330000 does not recognise type {LICENCE} issued in region 330100",
    )


@pytest.mark.parametrize(
    "data",
    [
        None, [], {"recognise": []}, {"region": "33", "recognise": []}, {"region": "330000"},
        {"region": "330000", "recognise": {}}, {"region": "330000", "recognize": []},
        {"region": "330000", "recognise": [], "extra": 1}, {"region": "330000", "recognise": [], "description": 5},
        {"region": "330000", "recognise": [{"types": ["*"]}]}, {"region": "330000", "recognise": [{"regions": ["*"]}]},
        {"region": "330000", "recognise": [{"types": [], "regions": ["*"]}]},
        {"region": "330000", "recognise": [{"types": ["W001"], "regions": ["*"]}]},
        {"region": "330000", "recognise": [{"types": [LICENCE], "regions": "*"}]},
        {"region": "330000", "recognise": [{"types": [LICENCE], "regions": ["*"], "requireFields": "holder.name"}]},
        {"region": "330000", "recognise": [{"types": [LICENCE], "regions": ["*"], "deny": True}]},
        {"region": "330000", "recognise": ["*"]},
    ],
)  # fmt: skip
def test_malformed_policies_are_refused(data) -> None:
    with pytest.raises(ConfigError) as refused:
        Policy.from_json(data)
    assert refused.value.code == "POLICY_INVALID"


def test_required_fields_are_the_union_of_matching_rules() -> None:
    p = policy(
        {"types": ["*"], "regions": ["*"], "requireFields": ["validFrom"]},
        {"types": [LICENCE], "regions": ["440000"], "requireFields": ["holder.name", "ext.scope"]},
    )
    assert p.required_fields(LICENCE, 440100) == ("ext.scope", "holder.name", "validFrom")
    assert p.required_fields(LICENCE, 330100) == ("validFrom",)
    assert p.missing_fields(LICENCE, 440100, ["validFrom", "ext.scope[0]", "holder.nameMasked"]) == [
        "holder.name"
    ]
    assert p.missing_fields(DRIVING, 110000, ["validFrom"]) == []


def test_covers_path() -> None:
    assert (
        covers_path("ext.scope", "ext.scope[1]")
        and covers_path("holder", "holder.name")
        and covers_path("a", "a")
    )
    assert not covers_path("holder.name", "holder.nameMasked") and not covers_path(
        "ext.scope[1]", "ext.scope[10]"
    )


def test_load_reports_the_file(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"region": "330000", "recognize": []}')
    with pytest.raises(ConfigError, match=r"bad\.json"):
        Policy.load(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        Policy.load(path)
    with pytest.raises(ConfigError, match="Cannot read"):
        Policy.load(tmp_path / "missing.json")


def test_the_example_policies() -> None:
    assert sorted(p.name for p in POLICY_DIR.glob("*.json")) == ["310000.json", "330000.json", "440000.json"]
    zhejiang, shanghai, guangdong = (
        Policy.load(POLICY_DIR / f"{r}.json") for r in ("330000", "310000", "440000")
    )
    assert (zhejiang.region, shanghai.region, guangdong.region) == ("330000", "310000", "440000")
    for type_code in (LICENCE, DRIVING):
        for region in (330100, 310115, 440100, 650102):
            assert zhejiang.allows(type_code, region)[0]
            assert guangdong.allows(type_code, region)[0] is (type_code == LICENCE)
            assert shanghai.allows(type_code, region)[0] is (
                type_code == LICENCE and region in (330100, 310115)
            )
    for path in POLICY_DIR.glob("*.json"):
        assert json.loads(path.read_text(encoding="utf-8"))["region"] == path.stem
