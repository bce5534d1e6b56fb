"""What the front desk shows of a verification (issue 11, point 3): the verdict, every check in
plain words with its code, the agency by name, a status change by its GB reason, the time in
北京时间, and the certificate as its licence face (labelled fields, masked ones marked).
Pure: the page's template renders it; the agency's name comes in through `agency_name`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from registry.certificate.canonical import leaf_value
from registry.certificate.labels import field_label, is_technical, type_name
from registry.certificate.presentation import Presentation
from verifier.desk_text import DESK, check_text, kind_text
from verifier.i18n import status_reason
from verifier.service import Verification

BEIJING = ZoneInfo("Asia/Shanghai")
MASK = "*"


@dataclass(frozen=True)
class CheckLine:
    outcome: str
    kind: str
    text: str
    code: str


@dataclass(frozen=True)
class FaceField:
    path: str
    label: str
    value: str
    masked: bool


@dataclass(frozen=True)
class DeskResult:
    verdict: str  # VALID | INVALID | ERROR
    status_line: str | None  # a revocation or suspension, by its GB reason
    agency: str | None
    checked_at: str  # 北京时间
    checks: list[CheckLine]
    title: str
    fields: list[FaceField]
    identifier: str | None
    receipt_id: str | None


def beijing(moment: dt.datetime | str) -> str:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: object) -> str:
    """A field's value as a person reads it: lists joined, nothing shown as `None`."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return "；".join(f"{k}: {_text(v)}" for k, v in value.items()) or "—"
    return str(value)


def _status_line(lang: str, checks: list[Any]) -> str | None:
    words = DESK[lang]
    for check in checks:
        if check.kind == "status" and check.code in ("CERT_REVOKED", "CERT_SUSPENDED"):
            state = words["revoked" if check.code == "CERT_REVOKED" else "suspended"]
            code = check.evidence.get("reason")
            if code is None:
                return state
            line = words["status_reason"].format(
                state=state, reason=status_reason(int(code))[lang], code=code
            )
            since = check.evidence.get("since")
            return f"{line} · {words['since']} {beijing(since)}" if since else line
    return None


def _agency(
    checks: list[Any], values: dict[str, object], agency_name: Callable[[str], str | None]
) -> str | None:
    code = next(
        (c.evidence.get("agency") for c in checks if c.kind == "authority" and c.evidence.get("agency")), None
    )
    code = code or values.get("issuer.code")
    named = agency_name(str(code)) if code else None
    disclosed = values.get("issuer.name")
    return named or (str(disclosed) if disclosed else None) or (str(code) if code else None)


def desk_result(
    result: Verification, presentation: Presentation, lang: str, agency_name: Callable[[str], str | None]
) -> DeskResult:
    report = result.report
    values = {leaf.path: leaf_value(leaf) for leaf in presentation.leaves}
    type_code = str(values.get("typeCode") or "")
    fields: list[FaceField] = []
    for path, value in values.items():
        if is_technical(path) or path in ("name", "issuer.name"):
            continue
        shown = _text(value)
        masked = path.endswith("Masked") or (MASK * 2 in shown)
        fields.append(FaceField(path, field_label(type_code, path, lang), shown, masked))
    receipt = result.receipt or {}
    return DeskResult(
        verdict=report.verdict.value,
        status_line=_status_line(lang, list(report.checks)),
        agency=_agency(list(report.checks), values, agency_name),
        checked_at=beijing(report.checked_at),
        checks=[
            CheckLine(
                c.outcome.value, kind_text(lang, c.kind), check_text(lang, c.code, c.outcome.value), c.code
            )
            for c in report.checks
        ],
        title=type_name(type_code, lang) if type_code or not values.get("name") else str(values["name"]),
        fields=fields,
        identifier=str(values["identifier"]) if values.get("identifier") else None,
        receipt_id=_receipt_id(receipt),
    )


def _receipt_id(receipt: dict[str, Any]) -> str | None:
    inner = receipt.get("receipt")
    if isinstance(inner, dict):
        found = inner.get("requestDigest")
        return str(found)[:18] if found else None  # 0x and 64 bits: enough to find it, short enough to read
    return None
