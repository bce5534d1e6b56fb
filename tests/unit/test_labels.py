"""The field-label catalogue: every field of every known type is named in both languages, and
no label is ever a raw path."""

from __future__ import annotations

import pytest

from registry.certificate.labels import (
    COMMON_LABELS,
    TYPE_EXT_LABELS,
    face_label,
    field_label,
    is_technical,
    known_paths,
    type_name,
)
from registry.certificate.types import TYPE_NAMES

LANGS = ("zh", "en")
KNOWN = [(code, path) for code in TYPE_NAMES for path in known_paths(code)]


@pytest.mark.parametrize(("type_code", "path"), KNOWN)
def test_every_field_of_every_known_type_has_a_label_in_both_languages(type_code: str, path: str) -> None:
    zh, en = (field_label(type_code, path, lang) for lang in LANGS)
    assert zh and en and zh != path and en != path
    assert "ext." not in zh and "ext." not in en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), zh
    assert en.isascii(), en


def test_every_labelled_type_is_a_known_type() -> None:
    assert set(TYPE_EXT_LABELS) <= set(TYPE_NAMES)
    assert set(TYPE_NAMES) <= set(TYPE_EXT_LABELS)


@pytest.mark.parametrize(
    ("path", "zh", "en"),
    [
        ("ext.scope[1]", "经营范围", "Business scope"),
        ("holder.name", "名称", "Name"),
        ("number", "证照编号", "Licence No."),
        ("validUntil", "有效期至", "Valid until"),
    ],
)
def test_business_licence_labels(path: str, zh: str, en: str) -> None:
    code = next(c for c, n in TYPE_NAMES.items() if n == "营业执照")
    assert (field_label(code, path, "zh"), field_label(code, path, "en")) == (zh, en)


def test_the_same_ext_key_may_read_differently_per_type() -> None:
    business, driving = (
        next(c for c, n in TYPE_NAMES.items() if n == name) for name in ("营业执照", "机动车驾驶证")
    )
    assert field_label(business, "ext.address", "zh") == "住所"
    assert field_label(driving, "ext.address", "zh") == "住址"
    assert field_label(driving, "ext.vehicleClass", "en") == "Permitted vehicle class"


@pytest.mark.parametrize(
    ("path", "zh", "en"),
    [
        ("ext.vehicleClass", "准驾车型", "Permitted vehicle class"),  # known for another type
        ("ext.fooBarBaz", "其他事项（Foo bar baz）", "Foo bar baz"),
        ("ext.snake_case_key[3]", "其他事项（Snake case key）", "Snake case key"),
        ("ext.经营期限", "经营期限", "经营期限"),
        ("ext.contact.phoneNumber", "其他事项（Contact） · Phone number", "Contact · Phone number"),
        ("somethingNew", "其他事项（Something new）", "Something new"),
    ],
)
def test_unknown_paths_get_a_humanised_label_never_a_raw_key(path: str, zh: str, en: str) -> None:
    assert field_label("no-such-type", path, "zh") == zh
    assert field_label("no-such-type", path, "en") == en
    for lang in LANGS:
        assert not field_label("no-such-type", path, lang).startswith("ext.")


def test_common_labels_are_the_default_for_an_unknown_type() -> None:
    for path, (zh, en) in COMMON_LABELS.items():
        assert field_label("", path, "zh") == zh and field_label("", path, "en") == en


def test_technical_fields_are_codes_and_identifiers() -> None:
    for path in ("identifier", "typeCode", "issuer.code", "issuer.region", "holder.codeType"):
        assert is_technical(path), path
    for path in ("holder.name", "number", "validUntil", "ext.scope[0]", "issuer.name", "holder.codeMasked"):
        assert not is_technical(path), path


def test_type_names_and_face_labels() -> None:
    for code, zh in TYPE_NAMES.items():
        assert type_name(code, "zh") == zh and type_name(code, "en").isascii()
    assert type_name("x", "zh") == "电子证照" and type_name("x", "en") == "Electronic certificate"
    assert face_label("uscc", "zh") == "统一社会信用代码" and face_label("holderPerson", "en") == "Holder"
    assert face_label("validity", "zh") == "有效期"
