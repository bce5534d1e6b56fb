"""One field-label catalogue per certificate type, in Chinese and English.

Every page that shows a disclosed field (the wallet, the verifier's share page and front desk, the
issuer's printout) names it through `field_label(type_code, path, lang)`, so a field has one name
everywhere and no raw `ext.*` key ever reaches a reader: an ext key outside the catalogue gets a
humanised label (`ext.vehicleClass` → "Vehicle class"). `is_technical(path)` marks the codes and
identifiers a reader seldom needs (type code, agency code, region code, identifiers): pages list
them behind a "more" control.

Pure data and string functions: no I/O.
"""

from __future__ import annotations

import re

from registry.certificate.types import TYPE_NAMES

__all__ = [
    "COMMON_LABELS",
    "FACE_LABELS",
    "TECHNICAL_PATHS",
    "TYPE_EXT_LABELS",
    "face_label",
    "field_label",
    "is_technical",
    "known_paths",
    "type_name",
]

BUSINESS_LICENCE = "11100000000013338W001"
DRIVING_LICENCE = "11100000000013338W002"

# path -> (中文, English): the fields every certificate has (registry.certificate.model).
COMMON_LABELS: dict[str, tuple[str, str]] = {
    "identifier": ("电子证照标识", "E-licence identifier"),
    "name": ("证照名称", "Certificate"),
    "typeCode": ("证照类型代码", "Certificate type code"),
    "number": ("证照编号", "Licence No."),
    "issuer.name": ("发证机关", "Issuing authority"),
    "issuer.code": ("发证机关代码", "Issuing authority code"),
    "issuer.region": ("发证机关行政区划代码", "Issuing authority region code"),
    "issuedDate": ("发证日期", "Date of issue"),
    "holder.name": ("持证主体", "Holder"),
    "holder.code": ("持证主体代码", "Holder code"),
    "holder.codeMasked": ("持证主体代码（脱敏）", "Holder code (masked)"),
    "holder.codeType": ("持证主体代码类型", "Holder code type"),
    "validFrom": ("有效期起", "Valid from"),
    "validUntil": ("有效期至", "Valid until"),
    "validity": ("有效期", "Validity"),
    "previousIdentifier": ("替代证照", "Replaces"),
}

# typeCode -> {ext key -> (中文, English)}, in the order a licence prints them.
TYPE_EXT_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    BUSINESS_LICENCE: {
        "legalRepresentative": ("法定代表人", "Legal representative"),
        "operator": ("经营者", "Operator"),
        "type": ("类型", "Type"),
        "registeredCapital": ("注册资本", "Registered capital"),
        "establishedDate": ("成立日期", "Date of establishment"),
        "address": ("住所", "Domicile"),
        "scope": ("经营范围", "Business scope"),
    },
    DRIVING_LICENCE: {
        "licenceClass": ("准驾车型", "Permitted vehicle class"),
        "vehicleClass": ("准驾车型", "Permitted vehicle class"),
        "firstIssued": ("初次领证日期", "Date first issued"),
        "address": ("住址", "Address"),
        "sex": ("性别", "Sex"),
        "nationality": ("国籍", "Nationality"),
        "birthDate": ("出生日期", "Date of birth"),
    },
}

# Per-type names for common fields where the generic one reads oddly on that type's face.
_TYPE_COMMON_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    BUSINESS_LICENCE: {
        "holder.name": ("名称", "Name"),
        "holder.code": ("统一社会信用代码", "Unified social credit code"),
    },
    DRIVING_LICENCE: {"holder.name": ("姓名", "Name"), "holder.code": ("身份证件号码", "ID number")},
}

# The printed face's own rows (issuer.printing), which are not single paths.
FACE_LABELS: dict[str, tuple[str, str]] = {
    "uscc": ("统一社会信用代码", "Unified social credit code"),
    "idNumber": ("身份证件号码", "ID number"),
    "holderCode": ("证件号码", "Holder code"),
    "holderOrg": ("名称", "Name"),
    "holderPerson": ("持证人", "Holder"),
    "issuer": COMMON_LABELS["issuer.name"],
}

_TYPE_NAMES_EN: dict[str, str] = {
    BUSINESS_LICENCE: "Business licence",
    DRIVING_LICENCE: "Motor vehicle driving licence",
}

# Codes and identifiers: needed by machines and auditors, behind "more" for people.
TECHNICAL_PATHS = frozenset(
    {"identifier", "typeCode", "issuer.code", "issuer.region", "holder.codeType", "previousIdentifier"}
)


def _base(path: str) -> str:
    """`ext.scope[1]` → `ext.scope`; `holder.name` stays."""
    return path.split("[", 1)[0]


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def _humanise(key: str) -> str:
    """`vehicleClass` / `vehicle_class` → "Vehicle class"; a key already in words stays as it is."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ").split()
    text = " ".join(words).lower()
    return (text[:1].upper() + text[1:]) if text else "—"


def field_label(type_code: str, path: str, lang: str) -> str:
    """A human label for any disclosed `path` of a certificate of type `type_code`; never `ext.*`."""
    base = _base(path)
    if (own := _TYPE_COMMON_LABELS.get(type_code, {}).get(base)) is not None:
        return _pick(own, lang)
    if base in COMMON_LABELS:
        return _pick(COMMON_LABELS[base], lang)
    if base.startswith("ext."):
        key, _, rest = base.removeprefix("ext.").partition(".")
        pair = TYPE_EXT_LABELS.get(type_code, {}).get(key) or _any_type_ext(key)
        label = _pick(pair, lang) if pair else _generic(key, lang)
        return f"{label} · {_humanise(rest)}" if rest else label
    head, _, rest = base.partition(".")
    return _generic(f"{head} {rest}".strip(), lang)


def _any_type_ext(key: str) -> tuple[str, str] | None:
    """An ext key known for another type is named the same way (a certificate of an unknown type)."""
    return next((labels[key] for labels in TYPE_EXT_LABELS.values() if key in labels), None)


def _generic(key: str, lang: str) -> str:
    words = _humanise(key)
    return words if lang == "en" or not key.isascii() else f"其他事项（{words}）"


def is_technical(path: str) -> bool:
    """Codes, type codes, region codes and identifiers: shown only behind "more"."""
    return _base(path) in TECHNICAL_PATHS


def face_label(key: str, lang: str) -> str:
    """A printed face's row label (`uscc`, `holderPerson`…) or, for a path, its common label."""
    pair = FACE_LABELS.get(key) or COMMON_LABELS.get(key)
    return _pick(pair, lang) if pair else field_label("", key, lang)


def type_name(type_code: str, lang: str) -> str:
    """营业执照 / Business licence; an unknown type is 电子证照 / Electronic certificate."""
    zh = TYPE_NAMES.get(type_code)
    if zh is None:
        return "Electronic certificate" if lang == "en" else "电子证照"
    return _TYPE_NAMES_EN.get(type_code, zh) if lang == "en" else zh


def known_paths(type_code: str) -> list[str]:
    """Every catalogued path of a type: the common fields, then its ext fields in print order."""
    return [*COMMON_LABELS, *(f"ext.{key}" for key in TYPE_EXT_LABELS.get(type_code, {}))]
