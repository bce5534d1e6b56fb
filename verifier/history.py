"""An organisation's verification history: the receipts this node kept for it
(`verifier.receipt_store`), newest first, searchable by date, certificate identifier and verdict,
and exportable as CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese right). Only the
organisation's own rows are ever read: the organisation id is part of every query.

A history row carries no disclosed value (those stay encrypted with their receipt): the time,
the certificate's identifier, the verdict and its reason, the purpose, the channel, the clerk and
the receipt id to fetch the rest with.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.database import as_utc
from verifier.access_log import AccessRecorder
from verifier.models import StoredReceiptRow

__all__ = ["CSV_COLUMNS", "HistoryPage", "HistoryQuery", "VerificationHistory"]

MAX_PAGE = 500
CSV_COLUMNS = ("receiptId", "at", "identifier", "verdict", "reason", "purpose", "channel", "staffId")
MAX_EXPORT = 100_000


@dataclass(frozen=True)
class HistoryQuery:
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    identifier: str | None = None  # exact
    verdict: str | None = None  # VALID | INVALID | ERROR
    staff_id: int | None = None  # only this clerk's


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "limit": self.limit, "offset": self.offset}


def _item(row: StoredReceiptRow) -> dict[str, Any]:
    return {
        "receiptId": row.id, "at": as_utc(row.created_at).isoformat(), "identifier": row.identifier,
        "verdict": row.verdict, "reason": row.reason, "purpose": row.purpose, "channel": row.channel,
        "staffId": row.staff_id,
    }  # fmt: skip


class VerificationHistory:
    def __init__(self, sessions: sessionmaker[Session], recorder: AccessRecorder) -> None:
        self._sessions = sessions
        self._recorder = recorder

    def _where(self, organisation_id: int, query: HistoryQuery) -> list[Any]:
        where: list[Any] = [StoredReceiptRow.organisation_id == organisation_id]
        if query.since is not None:
            where.append(StoredReceiptRow.created_at >= as_utc(query.since))
        if query.until is not None:
            where.append(StoredReceiptRow.created_at < as_utc(query.until))
        if query.identifier:
            where.append(StoredReceiptRow.identifier == query.identifier)
        if query.verdict:
            where.append(StoredReceiptRow.verdict == query.verdict)
        if query.staff_id is not None:
            where.append(StoredReceiptRow.staff_id == query.staff_id)
        return where

    def search(
        self, organisation_id: int, query: HistoryQuery = HistoryQuery(), *, limit: int = 50, offset: int = 0
    ) -> HistoryPage:
        """One page of the organisation's verifications matching `query`, newest first."""
        self._recorder.sync()  # this process's last verifications included
        limit, offset = max(1, min(limit, MAX_PAGE)), max(0, offset)
        where = self._where(organisation_id, query)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(StoredReceiptRow).where(*where)) or 0
            rows = session.scalars(
                select(StoredReceiptRow)
                .where(*where)
                .order_by(StoredReceiptRow.created_at.desc(), StoredReceiptRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return HistoryPage([_item(r) for r in rows], total, limit, offset)

    def csv(self, organisation_id: int, query: HistoryQuery = HistoryQuery()) -> bytes:
        """Every matching verification (up to `MAX_EXPORT`) as CSV: UTF-8 with a BOM, CRLF lines."""
        self._recorder.sync()
        with self._sessions() as session:
            rows = session.scalars(
                select(StoredReceiptRow)
                .where(*self._where(organisation_id, query))
                .order_by(StoredReceiptRow.created_at.desc(), StoredReceiptRow.id)
                .limit(MAX_EXPORT)
            ).all()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            item = _item(row)
            writer.writerow([_cell(item[c]) for c in CSV_COLUMNS])
        return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula (=, +, -, @) is quoted with a `'`."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
