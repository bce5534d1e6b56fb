"""Kept receipts and the history (issue 11, points 4 and 5) on SQLite and PostgreSQL: a worker's
receipts travel with its access-log entries to the node process's writer, which stores the
disclosed values encrypted; each organisation reads back its own receipts and history only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import postgres_database
from sqlalchemy import select

from registry.crypto import DataCipher
from verifier.access_log import Access, AccessLog, AccessLogServer, ForwardedAccessLog, StoredReceipt
from verifier.db import make_engine, migrate, sessions
from verifier.history import HistoryQuery, VerificationHistory
from verifier.models import Organisation, StoredReceiptRow
from verifier.receipt_store import ReceiptStore

NAME = "杭州某某商贸有限公司"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'verifier.sqlite'}"
        return
    admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("ECERT_TEST_POSTGRES_URL is not set (scripts/postgres.sh)")
    with postgres_database(admin) as url:
        yield url


def _access(
    n: int, org_id: int, *, verdict: str = "VALID", identifier: str = "ID-A", staff_id: int | None = None
) -> Access:
    document = {"receipt": {"verdict": verdict, "n": n}, "signature": f"sig{n}"}
    disclosed = {"salt": "s" * 22, "values": {"holder.name": NAME, "number": f"{n:015d}"}}
    return Access(
        at=dt.datetime(2026, 11, 24, 9, n, tzinfo=dt.UTC), organisation=f"org{org_id}", organisation_region="330100",
        purpose="开立对公账户", digest=f"0x{n:064x}", identifier=identifier, share_id=None, fields=["holder.name"],
        verdict=verdict, reason=None if verdict == "VALID" else "CERT_REVOKED", channel="api",
        receipt=StoredReceipt(f"{n:032x}", org_id, staff_id, document, disclosed),
    )  # fmt: skip


def test_receipts_are_kept_encrypted_by_id_for_their_organisation_only(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    made = sessions(engine)
    with made.begin() as session:
        orgs = [Organisation(name=f"银行{i}", region="330100", kind="bank") for i in range(2)]
        session.add_all(orgs)
        session.flush()
        mine, theirs = orgs[0].id, orgs[1].id
    cipher = DataCipher(os.urandom(32))
    writer = AccessLog(made, flush_s=3600, cipher=cipher)
    server = AccessLogServer(writer)
    worker = ForwardedAccessLog(server.path, made, flush_s=3600)
    try:
        for n, verdict, identifier, staff in (
            (1, "VALID", "ID-A", 7),
            (2, "INVALID", "ID-B", None),
            (3, "VALID", "ID-A", None),
        ):
            worker.record(_access(n, mine, verdict=verdict, identifier=identifier, staff_id=staff))
        worker.record(_access(4, theirs))
        worker.record(_access(4, theirs))  # a batch sent twice: one receipt
        store, history = ReceiptStore(made, cipher, worker), VerificationHistory(made, worker)
        kept = store.get(mine, f"{1:032x}")  # still queued in the worker: the store has it written first
        assert kept.disclosed["values"]["holder.name"] == NAME and kept.document["signature"] == "sig1"
        assert (kept.staff_id, kept.identifier, kept.verdict) == (7, "ID-A", "VALID")
        assert store.get(mine, f"{1:032x}", staff_id=7).id == kept.id
        for org, rid, staff in (
            (theirs, f"{1:032x}", None),
            (mine, f"{4:032x}", None),
            (mine, f"{1:032x}", 8),
            (mine, "x" * 40, None),
        ):
            with pytest.raises(Exception, match="No such receipt") as refused:
                store.get(org, rid, staff_id=staff)
            assert refused.value.code == "RECEIPT_NOT_FOUND"  # type: ignore[attr-defined]
        with made() as session:
            raw = session.scalars(select(StoredReceiptRow.disclosed)).all()
        assert len(raw) == 4 and all(NAME.encode() not in blob for blob in raw)

        page = history.search(mine)
        assert (page.total, [i["receiptId"][-1] for i in page.items]) == (3, ["3", "2", "1"])
        assert history.search(mine, HistoryQuery(identifier="ID-A")).total == 2
        assert [i["verdict"] for i in history.search(mine, HistoryQuery(verdict="INVALID")).items] == [
            "INVALID"
        ]
        at = dt.datetime(2026, 11, 24, 9, 2, tzinfo=dt.UTC)
        assert history.search(mine, HistoryQuery(since=at)).total == 2
        assert history.search(mine, HistoryQuery(until=at)).total == 1
        assert history.search(mine, HistoryQuery(staff_id=7)).total == 1
        assert [i["receiptId"][-1] for i in history.search(mine, limit=1, offset=1).items] == ["2"]
        assert history.search(theirs).total == 1
        exported = history.csv(mine)
        assert exported.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
        assert [r["verdict"] for r in rows] == ["VALID", "INVALID", "VALID"] and rows[0][
            "purpose"
        ] == "开立对公账户"
        assert NAME not in exported.decode("utf-8-sig")  # the history names no disclosed value
    finally:
        worker.close()
        server.close()
        writer.close()
        engine.dispose()
