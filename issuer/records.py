"""Read agency records from JSON Lines or CSV (dotted headers such as `holder.name`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.error_codes import ErrorCode
from registry.errors import CertificateError


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one record per line (JSONL) or row (CSV); a malformed line is `RECORD_MALFORMED`."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            yield from csv.DictReader(handle)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CertificateError(
                        f"{path}:{number}: not JSON ({exc.msg})", code=ErrorCode.RECORD_MALFORMED, line=number
                    ) from exc
                if not isinstance(record, dict):
                    raise CertificateError(
                        f"{path}:{number}: a record must be a JSON object",
                        code=ErrorCode.RECORD_MALFORMED,
                        line=number,
                    )
                yield record
        else:
            raise CertificateError(
                f"Unsupported input {path.name}: use .jsonl or .csv", code=ErrorCode.INPUT_FORMAT
            )
