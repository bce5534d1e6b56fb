"""The certificate (GB/T 36903 metadata): building one from an agency's record, strictly.

A certificate is a nested dict of fields. `build_fields` fills the standard fields, checks the
identifiers strictly (as issuing demands) and adds masked twins of sensitive values so that a
holder can show `holder.codeMasked` and hide `holder.code` (数据脱敏).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.certificate import identifiers
from registry.certificate.types import name_contradiction
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, IdentifierError

FORMAT_VERSION = "ecert/1"
# GB/T 36903 Annex A holder code types.
CODE_TYPE_ID_NUMBER = "111"
CODE_TYPE_USCC = "001"
CODE_TYPES = (CODE_TYPE_ID_NUMBER, CODE_TYPE_USCC)
SENSITIVE_PATHS = ("holder.code",)


@dataclass(frozen=True)
class Issuer:
    """The issuing agency as it appears on a certificate."""

    name: str
    code: str
    region: str

    def as_fields(self) -> dict[str, str]:
        return {"name": self.name, "code": self.code, "region": self.region}


def _date(value: Any, field: str) -> str:
    """An ISO date (YYYY-MM-DD), or a CertificateError naming the field."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise CertificateError(
            f"{field} must be a date as YYYY-MM-DD text", code=ErrorCode.FIELD_INVALID, field=field
        )
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise CertificateError(
            f"{field} must be a date as YYYY-MM-DD, got {value!r}", code=ErrorCode.FIELD_INVALID, field=field
        ) from None


def nest(record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn flat dotted keys (`holder.name`, from CSV) into nested dicts; nested input passes."""
    nested: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or value == "":
            continue
        target = nested
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CertificateError(
                    f"Field {key!r} clashes with a scalar", code=ErrorCode.FIELD_INVALID, field=key
                )
        target[leaf] = value
    return nested


def mask_code(code: str) -> str:
    """Keep the first and last four characters: `3301**********123X`."""
    return code[:4] + "*" * max(len(code) - 8, 0) + code[-4:] if len(code) > 8 else "*" * len(code)


def build_fields(
    record: Mapping[str, Any],
    *,
    type_code: str,
    type_name: str,
    issuer: Issuer,
    serial: str,
    version: int = 1,
    today: dt.date | None = None,
    previous_identifier: str | None = None,
) -> dict[str, Any]:
    """The fields of a new certificate for `record` (nested or flat dotted keys)."""
    data = nest(record)
    holder = data.pop("holder", None)
    if not isinstance(holder, dict) or not holder.get("name") or not holder.get("code"):
        raise CertificateError(
            "holder.name and holder.code are required", code=ErrorCode.FIELD_MISSING, field="holder"
        )
    for key in ("name", "code", "codeType"):
        if key in holder and not isinstance(holder[key], (str, int)):
            raise CertificateError(
                f"holder.{key} must be text", code=ErrorCode.FIELD_INVALID, field=f"holder.{key}"
            )
    holder_code = str(holder["code"]).strip().upper()
    code_type = str(holder.get("codeType") or _guess_code_type(holder_code))
    if code_type not in CODE_TYPES:
        raise CertificateError(
            f"holder.codeType {code_type!r} is not supported: use 111 (ID number) or 001 (USCC)",
            code=ErrorCode.FIELD_INVALID, field="holder.codeType",
        )  # fmt: skip
    try:
        if code_type == CODE_TYPE_ID_NUMBER:
            identifiers.parse_id_number(holder_code, strict=True)
        else:
            identifiers.parse_uscc(holder_code, strict=True)
    except IdentifierError as exc:
        raise CertificateError(f"holder.code: {exc.message}", code=exc.code, field="holder.code") from exc
    name = data.pop("name", type_name)
    if (contradiction := name_contradiction(type_code, name)) is not None:
        raise CertificateError(
            f"name contradicts the certificate's type: {contradiction}",
            code=ErrorCode.FIELD_INVALID,
            field="name",
        )
    identifier = identifiers.build_licence_id(type_code, issuer.code, serial, version)
    issued = _date(data.pop("issuedDate", today or dt.date.today()), "issuedDate")
    fields: dict[str, Any] = {
        "identifier": str(identifier),
        "name": str(name),
        "typeCode": type_code,
        "number": str(data.pop("number", serial)),
        "issuer": issuer.as_fields(),
        "issuedDate": issued,
        "holder": {
            "name": str(holder["name"]).strip(),
            "code": holder_code,
            "codeType": code_type,
            "codeMasked": mask_code(holder_code),
        },
        "validFrom": _date(data.pop("validFrom", issued), "validFrom"),
    }
    # Always a leaf, null for 长期: a holder who hides it cannot pass a dated certificate off as permanent.
    fields["validUntil"] = _date(data.pop("validUntil"), "validUntil") if "validUntil" in data else None
    if fields["validUntil"] is not None and fields["validUntil"] < fields["validFrom"]:
        raise CertificateError(
            "validUntil is before validFrom", code=ErrorCode.FIELD_INVALID, field="validUntil"
        )
    if previous_identifier:
        fields["previousIdentifier"] = previous_identifier
    ext = data.pop("ext", {})
    if data:
        raise CertificateError(
            f"Unknown fields {sorted(data)}: put type-specific fields under ext.*",
            code=ErrorCode.FIELD_UNKNOWN,
            field=sorted(data)[0],
        )
    if ext:
        fields["ext"] = ext
    return fields


def _guess_code_type(code: str) -> str:
    """An ID number's shape (17 digits, a digit or X, a real birth date) means 111, else a USCC:
    an all-digit USCC such as 91110000600037341L exists, so digits alone do not decide."""
    if len(code) == 18 and code[:17].isdigit() and code[17] in "0123456789X":
        try:
            dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
            return CODE_TYPE_ID_NUMBER
        except ValueError:
            pass
    return CODE_TYPE_USCC


def validity_window(fields: Mapping[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """(validFrom, validUntil) as dates; validUntil None (null) means 长期."""

    def parse(key: str) -> dt.date | None:
        value = fields.get(key)
        return dt.date.fromisoformat(value) if isinstance(value, str) else None

    return parse("validFrom"), parse("validUntil")
