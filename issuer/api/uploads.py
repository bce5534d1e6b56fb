"""Records from an uploaded file: JSON Lines, a JSON array, or CSV with dotted headers
(`holder.name`, `ext.address`). A file that cannot be read as a whole is one error naming the
line; records that read but are wrong are left to the service, which reports them one by one."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from registry.error_codes import ErrorCode
from registry.errors import EcertError

FORMATS = ("jsonl", "json", "csv")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def _malformed(message: str, code: ErrorCode, line: int | None = None) -> EcertError:
    return EcertError(message, code=code, field="file", **({"line": line} if line else {}))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


def detect_format(filename: str | None, content_type: str | None, text: str) -> str:
    """By file name, then content type, then the first character (`{` JSONL, `[` JSON, else CSV)."""
    name = (filename or "").lower()
    kind = (content_type or "").split(";")[0].strip().lower()
    head = text.lstrip()[:1]
    fmt = next((f for suffix, f in SUFFIXES.items() if name.endswith(suffix)), None)
    if fmt is None and kind in ("text/csv", "application/csv"):
        fmt = "csv"
    if fmt is None or fmt == "json":  # a .json file of one object per line is JSON Lines
        fmt = {"{": "jsonl", "[": "json"}.get(head, fmt or "csv")
    return fmt


def parse_upload(
    raw: bytes, filename: str | None, content_type: str | None, fmt: str | None = None
) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _malformed(
            f"The file is not UTF-8 (byte {exc.start}): save it as UTF-8", ErrorCode.UPLOAD_ENCODING
        ) from None
    if fmt is not None and fmt not in FORMATS:
        raise EcertError(
            f"format must be one of {', '.join(FORMATS)}", code=ErrorCode.UPLOAD_FORMAT, field="format"
        )
    fmt = fmt or detect_format(filename, content_type, text)
    return {"jsonl": _jsonl, "json": _json_array, "csv": _csv}[fmt](text)


def _record(text: str, line: int) -> dict[str, Any]:
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _malformed(f"Line {line} is not JSON ({exc})", ErrorCode.RECORD_MALFORMED, line) from None
    if not isinstance(record, dict):
        raise _malformed(f"Line {line}: a record must be a JSON object", ErrorCode.RECORD_MALFORMED, line)
    return record


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [_record(line, number) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _json_array(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _malformed(f"The file is not JSON ({exc})", ErrorCode.RECORD_MALFORMED) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise _malformed(
            "A .json upload must be an array of record objects (or use JSON Lines)",
            ErrorCode.RECORD_MALFORMED,
        )
    return data


def _csv(text: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[dict[str, Any]] = []
    header: list[str] | None = None
    try:
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                if not all(header) or len(set(header)) != len(header):
                    raise _malformed(
                        "The CSV header needs one distinct, non-empty name per column",
                        ErrorCode.CSV_MALFORMED,
                        reader.line_num,
                    )
                continue
            if len(row) > len(header):
                raise _malformed(
                    f"Line {reader.line_num} has {len(row)} values for {len(header)} columns: quote values that hold commas",
                    ErrorCode.CSV_MALFORMED, reader.line_num,
                )  # fmt: skip
            records.append(dict(zip(header, row, strict=False)))
    except csv.Error as exc:
        raise _malformed(
            f"Line {reader.line_num} is not valid CSV ({exc})", ErrorCode.CSV_MALFORMED, reader.line_num
        ) from None
    return records
