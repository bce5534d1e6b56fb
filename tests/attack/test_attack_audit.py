"""Attacks on the agency audit trail (`issuer/audit.py`): what an attacker with the database can
change without `verify` noticing, and personal data the append check lets through. A real
SQLite database migrated by alembic; tampering is SQL straight into the tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from issuer.audit import AuditAction, AuditLog
from issuer.db import make_engine, migrate, sessions
from registry.certificate.identifiers import id_number_check_char
from registry.errors import EcertError

ZJ = "11330100002493028E"
BODY = "33010619900101011"
ID_NUMBER = BODY + id_number_check_char(BODY)  # a valid 公民身份号码 (check character a digit)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def audit(engine: Engine) -> AuditLog:
    return AuditLog(sessions(engine))


def sql(engine: Engine, statement: str, **params: Any) -> Any:
    with engine.begin() as connection:
        return (
            connection.execute(text(statement), params).all()
            if statement.lstrip().upper().startswith("SELECT")
            else connection.execute(text(statement), params)
        )


# ─── a stored entry changed, and verify still green ─────────────────────────────────────────


def test_the_stored_details_text_cannot_change_without_verify_noticing(
    engine: Engine, audit: AuditLog
) -> None:
    audit.append(ZJ, "system", AuditAction.STAFF_CHANGE, "wangfang", {"change": "added", "role": "clerk"})
    audit.append(ZJ, "wangfang", AuditAction.SIGN_IN, "wangfang", {"network": "10.0.0.1"})
    sql(engine, "UPDATE audit_log SET details = :d WHERE seq = 1",
        d='{"role":"admin","change":"added","role":"clerk"}')  # fmt: skip
    [(seen,)] = sql(engine, "SELECT json_extract(details, '$.role') FROM audit_log WHERE seq = 1")
    assert seen == "admin"  # what a SQL reader of the trail now sees
    assert not audit.verify(ZJ).ok


# ─── personal data past the append check ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("subject", "details"),
    [
        (f"holder{ID_NUMBER}", {}),  # a letter before it: the look-behind skips it
        (None, {"holderCode": f"ID:{ID_NUMBER}x"}),  # a letter after it
        (ID_NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９")), {}),  # full-width digits
        (None, {"holderCode": f"{ID_NUMBER[:6]} {ID_NUMBER[6:14]} {ID_NUMBER[14:]}"}),  # written in groups
    ],
    ids=["letter-before", "letter-after", "full-width", "grouped"],
)
def test_an_id_number_in_any_spelling_is_refused(
    audit: AuditLog, subject: str | None, details: dict[str, Any]
) -> None:
    with pytest.raises(EcertError):
        audit.append(ZJ, "clerk1", AuditAction.UNMASK, subject, details)


# ─── a whole agency's trail removed ──────────────────────────────────────────────────────────


def test_an_agency_s_whole_trail_deleted_is_still_verified(engine: Engine, audit: AuditLog) -> None:
    from types import SimpleNamespace

    from issuer.audit_cli import _agencies

    other = "114401000075021133"
    for agency, name, region in (
        (ZJ, "杭州市市场监督管理局", "330100"),
        (other, "广州市市场监督管理局", "440100"),
    ):
        # agencies served here (a trail belongs to one: its staff and certificates point at it)
        sql(
            engine,
            "INSERT INTO agencies (code, name, region) VALUES (:c, :n, :r)",
            c=agency,
            n=name,
            r=region,
        )
        audit.append(agency, "system", AuditAction.STAFF_CHANGE, "wangfang", {"change": "added"})
    # as `AuditLog.anchor` records an anchor (the chain would hold the same head for ZJ)
    seq, head = audit.head(ZJ)
    sql(engine, "INSERT INTO audit_anchors (agency, seq, head, tx_hash, block_number, anchored_at) "
        "VALUES (:a, :s, :h, :t, 7, CURRENT_TIMESTAMP)", a=ZJ, s=seq, h=head, t="0x" + "ab" * 32)  # fmt: skip
    for table in ("audit_log", "audit_heads", "audit_anchors"):
        sql(engine, f"DELETE FROM {table} WHERE agency = :a", a=ZJ)  # noqa: S608 - the test's own table names
    checked = _agencies(SimpleNamespace(sessions=sessions(engine)), None)  # what `ecert audit verify` walks
    assert ZJ in checked, checked
