"""Certificate types known by name, so a certificate's `name` cannot contradict its `typeCode`.

A business-licence agency could otherwise issue a certificate named 机动车驾驶证 that, shown with
its type hidden, reads as a driving licence. The issuer refuses such a record and the verifier
refuses such a certificate. The catalogue only grows; a name outside it (or the generic
电子证照) contradicts nothing.
"""

from __future__ import annotations

# typeCode (GB/T 36904: the defining authority's USCC + 3 digits) -> the type's name.
TYPE_NAMES: dict[str, str] = {
    "11100000000013338W001": "营业执照",
    "11100000000013338W002": "机动车驾驶证",
}
_TYPE_BY_NAME = {name: code for code, name in TYPE_NAMES.items()}


def name_contradiction(type_code: str, name: object) -> str | None:
    """Why `name` cannot be the name of a certificate of type `type_code`, or None if it can."""
    if not isinstance(name, str):
        return None
    named = _TYPE_BY_NAME.get(name.strip())
    if named is None or named == type_code:
        return None
    return f"{name.strip()} is the name of type {named}, not of type {type_code}"
