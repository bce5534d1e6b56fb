"""The receipts this node signed for organisations, by id: each organisation (and the front desk's
pages, for it) reads back its own receipts, as JSON or as a printable PDF; another organisation's
receipt, or an unknown id, is the same 404.

Receipts are written behind the request, with their access-log entry (`verifier.access_log`,
`StoredReceipt`): a receipt asked for just after its verification may still be queued, so a
lookup that finds nothing first has the log write what it holds, then looks again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.error_codes import ErrorCode
from registry.errors import NotFound
from verifier.access_log import AccessRecorder
from verifier.models import StoredReceiptRow

__all__ = ["KeptReceipt", "ReceiptStore"]


@dataclass(frozen=True)
class KeptReceipt:
    id: str
    organisation_id: int
    staff_id: int | None
    created_at: dt.datetime
    identifier: str | None
    verdict: str
    reason: str | None
    purpose: str
    channel: str
    document: dict[str, Any]  # {"receipt": …, "signature": …}
    disclosed: dict[str, Any]  # {"salt": …, "values": {path: value}}: what `disclosedDigest` covers

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "createdAt": self.created_at.isoformat(), "identifier": self.identifier,
            "verdict": self.verdict, "reason": self.reason, "purpose": self.purpose, "channel": self.channel,
            "staffId": self.staff_id, "disclosed": self.disclosed, **self.document,
        }  # fmt: skip


class ReceiptStore:
    def __init__(self, sessions: sessionmaker[Session], cipher: DataCipher, recorder: AccessRecorder) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._recorder = recorder

    def get(self, organisation_id: int, receipt_id: str, *, staff_id: int | None = None) -> KeptReceipt:
        """The receipt `receipt_id` if `organisation_id` asked for it (and, given `staff_id`, that
        clerk did); else RECEIPT_NOT_FOUND, as for an id never issued."""
        row = self._row(organisation_id, receipt_id, staff_id)
        if row is None:
            self._recorder.sync()  # it may still be on its way to the database
            row = self._row(organisation_id, receipt_id, staff_id)
        if row is None:
            raise NotFound("No such receipt of your organisation", code=ErrorCode.RECEIPT_NOT_FOUND)
        return self._kept(row)

    def _row(self, organisation_id: int, receipt_id: str, staff_id: int | None) -> StoredReceiptRow | None:
        if len(receipt_id) > 32:
            return None
        with self._sessions() as session:
            row = session.get(StoredReceiptRow, receipt_id)
        if row is None or row.organisation_id != organisation_id:
            return None
        if staff_id is not None and row.staff_id != staff_id:
            return None
        return row

    def _kept(self, row: StoredReceiptRow) -> KeptReceipt:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
        return KeptReceipt(
            row.id, row.organisation_id, row.staff_id, created, row.identifier, row.verdict, row.reason,
            row.purpose, row.channel, orjson.loads(row.document),
            orjson.loads(self._cipher.decrypt(row.disclosed, row.id)),
        )  # fmt: skip
