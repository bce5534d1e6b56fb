"""The access log (谁访问、谁负责): every verification, written behind the request in bulk so
logging costs the hot path a queue append, and read by holders through their wallet."""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from verifier.models import AccessEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    at: dt.datetime
    organisation: str
    organisation_region: str
    purpose: str
    digest: str
    identifier: str | None
    share_id: str | None
    fields: list[str]
    verdict: str
    reason: str | None
    channel: str


class AccessLog:
    def __init__(self, sessions: sessionmaker[Session], *, flush_s: float = 0.1) -> None:
        self._sessions = sessions
        self._queue: queue.Queue[Access] = queue.Queue()
        self._flush_s = flush_s
        self._pending: list[Access] = []
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def record(self, access: Access) -> None:
        self._queue.put(access)

    def _drain(self) -> list[Access]:
        items: list[Access] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def flush(self) -> None:
        """Write what is queued; if the write fails the entries stay for the next flush."""
        with self._flushing:
            self._pending += self._drain()
            if not self._pending:
                return
            rows = [_row(a) for a in self._pending]
            with self._sessions.begin() as session:
                session.execute(AccessEntry.__table__.insert(), rows)
            self._pending = []

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - never lose the thread; the entries are kept and retried
                log.exception("access log flush failed: %d entries kept for the next try", len(self._pending))
        self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def entries(self, *, digests: Iterable[str] = (), share_ids: Iterable[str] = (), limit: int = 200) -> list[dict[str, Any]]:
        """Newest first: the verifications of these certificate digests or shares."""
        self.flush()
        digests, share_ids = list(digests), list(share_ids)
        if not digests and not share_ids:
            return []
        with self._sessions() as session:
            query = select(AccessEntry).where(AccessEntry.digest.in_(digests) | AccessEntry.share_id.in_(share_ids))
            rows = session.scalars(query.order_by(AccessEntry.at.desc(), AccessEntry.id.desc()).limit(limit)).all()
        return [
            {"at": _aware(r.at).isoformat(), "organisation": r.organisation, "region": r.organisation_region,
             "purpose": r.purpose, "digest": r.digest, "identifier": r.identifier, "shareId": r.share_id,
             "fields": json.loads(r.fields), "verdict": r.verdict, "reason": r.reason, "channel": r.channel}
            for r in rows
        ]  # fmt: skip


def _row(a: Access) -> dict[str, Any]:
    return {
        "at": a.at, "organisation": a.organisation, "organisation_region": a.organisation_region, "purpose": a.purpose,
        "digest": a.digest, "identifier": a.identifier, "share_id": a.share_id,
        "fields": json.dumps(a.fields, ensure_ascii=False), "verdict": a.verdict, "reason": a.reason, "channel": a.channel,
    }  # fmt: skip


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
