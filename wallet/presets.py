"""Share presets by purpose (银行开户, 租房, 求职, 办事, custom): each picks the fields that purpose
needs, among those the certificate has. No preset picks a technical field (codes and
identifiers, `registry.certificate.labels.is_technical`): those stay behind "more", and the
ones every disclosure carries are shared anyway."""

from __future__ import annotations

from collections.abc import Iterable

from registry.certificate.labels import is_technical

# purpose -> the base paths it needs; "ext." means every type-specific field.
PRESETS: dict[str, tuple[str, ...]] = {
    "bank": ("name", "number", "holder.name", "holder.code", "ext.legalRepresentative", "ext.operator", "ext.type",
             "ext.registeredCapital", "ext.establishedDate", "ext.address", "ext.scope", "issuer.name", "issuedDate"),
    "rent": ("name", "holder.name", "holder.codeMasked", "ext.legalRepresentative", "ext.operator", "ext.type",
             "ext.scope"),
    "job": ("name", "holder.name", "holder.codeMasked", "ext.licenceClass", "ext.vehicleClass", "ext.firstIssued",
            "ext.type", "ext.scope", "issuer.name"),
    "errand": ("name", "number", "holder.name", "holder.code", "ext.", "issuer.name", "issuedDate"),
    "custom": ("name", "holder.name", "holder.codeMasked", "issuer.name"),
}  # fmt: skip
PRESET_KEYS = tuple(PRESETS)


def preset_fields(preset: str, available: Iterable[str]) -> set[str]:
    """The fields of `available` (base paths) that the purpose `preset` needs; custom if unknown."""
    wanted = PRESETS.get(preset, PRESETS["custom"])
    return {
        path
        for path in available
        if not is_technical(path)
        and any(path == w or (w.endswith(".") and path.startswith(w)) for w in wanted)
    }
