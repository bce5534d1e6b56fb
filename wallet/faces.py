"""A certificate's face (证照照面): its fields in the order and words of the paper licence, in
Chinese; English labels are added beside them when the holder reads English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.certificate.presentation import Presentation
from wallet.i18n import field_label

ORDER = ("number", "holder.name", "holder.codeMasked", "ext.legalRepresentative", "ext.type", "ext.registeredCapital",
         "ext.address", "ext.scope")  # fmt: skip
TAIL = ("validity", "issuer.name", "issuedDate", "identifier")
HIDDEN = ("name", "typeCode", "holder.code", "holder.codeType", "issuer.code", "issuer.region", "validFrom", "validUntil",
          "previousIdentifier")  # fmt: skip


@dataclass(frozen=True)
class FaceRow:
    path: str
    label: str
    label_en: str | None
    value: str


def _flat(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, path + "."))
        else:
            out[path] = value
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "；".join(_text(v) for v in value)
    return "" if value is None else str(value)


def face_rows(presentation: Presentation, lang: str) -> dict[str, Any]:
    """Title and rows of the face; `holder.code` is never on the face (its masked twin is)."""
    flat = _flat(presentation.fields())
    type_code = str(flat.get("typeCode") or "")
    rows: list[FaceRow] = []

    def add(path: str, value: Any) -> None:
        key = "validity" if path == "validity" else path
        rows.append(
            FaceRow(
                path,
                field_label("zh", key, type_code),
                field_label("en", key, type_code) if lang == "en" else None,
                _text(value),
            )
        )

    extra = [p for p in flat if p not in ORDER and p not in HIDDEN and p not in TAIL]
    for path in (*ORDER, *extra):
        if path in flat:
            add(path, flat[path])
    if "validFrom" in flat:
        add("validity", f"{flat['validFrom']} 至 {flat.get('validUntil') or '长期'}")
    for path in TAIL[1:]:
        if path in flat:
            add(path, flat[path])
    return {"title": _text(flat.get("name", "电子证照")), "rows": rows}
