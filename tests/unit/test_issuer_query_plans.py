"""The issuer's hot queries use their indexes (issue 14 point 2), on SQLite and PostgreSQL: the
anchoring queue through the partial index of pending rows, a certificate by its identifier (on
PostgreSQL, the hash index of its exclusion constraint), a batch's certificates, a co-seal group's
members, a renewal's predecessor, a claim code and the blind index's digests. PostgreSQL's planner prefers a scan of a small
table, so there the test asks whether the index can serve (`enable_seqscan = off`), as a large
table would have it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from databases import postgres_database

from issuer.anchoring import pending_groups, pending_rows
from issuer.db import make_engine, migrate
from issuer.models import Certificate

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
        migrate(made)
        yield made
        made.dispose()
        return
    with postgres_database(POSTGRES_URL) as url:
        made = make_engine(url)
        migrate(made)
        yield made
        made.dispose()


def plan(engine: sa.Engine, statement: sa.Executable) -> str:
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
        else:
            rows = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (pending_groups, "ix_certificates_pending"),
        (lambda: pending_rows(AGENCY, TYPE, 10_000), "ix_certificates_pending"),
        (
            lambda: sa.select(Certificate.id).where(Certificate.identifier == "X"),
            "ex_certificates_identifier",
        ),
        (lambda: sa.select(Certificate.id).where(Certificate.batch_id == 7), "ix_certificates_batch_id"),
        (
            lambda: sa.select(Certificate.id).where(Certificate.national_group_id == 7),
            "ix_certificates_national_group_id",
        ),
        (
            lambda: sa.select(Certificate.id).where(Certificate.previous_identifier == "X"),
            "ix_certificates_previous_identifier",
        ),
        (
            lambda: sa.select(Certificate.id).where(Certificate.claim_code_hash == "h"),
            "uq_certificates_claim_code_hash",
        ),
        *(
            (lambda column=column: sa.select(Certificate.id).where(column == 42), f"ix_certificates_{column.key}")
            for column in (Certificate.number_digest, Certificate.name_digest, Certificate.code_digest)
        ),
    ],
    ids=["queue-groups", "next-batch", "by-identifier", "by-batch", "by-co-seal-group", "by-predecessor",
         "by-claim-code", "blind-number", "blind-name", "blind-code"],
)  # fmt: skip
def test_a_hot_query_uses_its_index(engine: sa.Engine, query, index: str) -> None:  # type: ignore[no-untyped-def]
    found = plan(engine, query())
    if engine.dialect.name == "sqlite" and index in (
        "ex_certificates_identifier",
        "uq_certificates_claim_code_hash",
    ):
        index = "sqlite_autoindex_certificates"  # SQLite keeps 0001's UNIQUE constraints, named by itself
    assert index in found, found


def test_the_queue_index_holds_pending_rows_only(engine: sa.Engine) -> None:
    """A partial index: a certificate leaves it when its batch is cut, so it stays as small as the queue."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_certificates_pending'"
            ).scalar_one()
        else:
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_certificates_pending'"
            ).scalar_one()
    assert "WHERE" in definition.upper() and "pending" in definition


def test_an_identifier_stays_unique(engine: sa.Engine) -> None:
    """The exclusion constraint (PostgreSQL) or UNIQUE (SQLite) refuses a second certificate with an
    identifier already stored, as the B-tree did."""
    row = {"identifier": "1.2.156.3005.2.X", "agency_code": AGENCY, "type_code": TYPE, "job_id": "j" * 32,
           "position": 1, "version": 1, "state": "pending", "sealed_fields": b"f", "digest": bytes(32),
           "status": "active"}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO agencies (code, name, region) VALUES (:a, 'n', '330100')"), {"a": AGENCY}
        )
        conn.execute(
            sa.text("INSERT INTO jobs (id, agency_code, type_code, request_hash, total, created_at)"
                    " VALUES (:j, :a, :t, 'h', 2, CURRENT_TIMESTAMP)"), {"j": "j" * 32, "a": AGENCY, "t": TYPE},
        )  # fmt: skip
        conn.execute(sa.insert(Certificate.__table__), row)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(Certificate.__table__), {**row, "position": 2})
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Certificate.__table__), {**row, "identifier": "1.2.156.3005.2.Y", "position": 2}
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(Certificate)).scalar() == 2
