"""Attacks on the console upload's refused-rows export (`/console/jobs/{id}/errors.csv`,
`issuer.api.console_upload.errors_csv`): a file's column names and values come back in the
export, so nothing there may run as a spreadsheet formula, and an auditor's copy quotes no value."""

from __future__ import annotations

import csv
import io

import pytest

from issuer.api.console_upload import errors_csv

HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
           "=cmd|' /C calc'!A0"]  # fmt: skip


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_cell_of_the_export_starts_a_formula(lang: str) -> None:
    errors = [
        {"position": n + 1, "field": value, "code": value, "message": value}
        for n, value in enumerate(HOSTILE)
    ]
    rows = list(csv.reader(io.StringIO(errors_csv(errors, lang))))
    assert len(rows) == len(HOSTILE) + 1
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), row


def test_the_auditors_copy_quotes_no_value() -> None:
    secret = "110101199003070012"
    errors = [{"position": 1, "field": "holder.code", "code": "HOLDER_CODE_INVALID",
               "message": f"holder.code {secret} fails its check character"}]  # fmt: skip
    assert secret in errors_csv(errors, "en")
    assert secret not in errors_csv(errors, "en", masked=True)
