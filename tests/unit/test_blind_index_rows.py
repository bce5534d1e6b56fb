"""Migrations of the blind index (issuer.blind_index): 0009 made it one row per certificate and
0012 moves the digests into the certificate rows as BIGINTs (the first 8 bytes of 0007's 16): the
digests of 0007's rows are carried over (no reindex), search finds them, and the downgrade gives
the table back (empty: 8 bytes cannot give back 16; `ecert issuer reindex` fills it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

import cbor2
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from databases import issuer_alembic

from issuer.blind_index import HOLDER_CODE, HOLDER_NAME, NUMBER, BlindIndex, normalise
from issuer.certificate_search import CertificatePages, SearchQuery
from issuer.db import make_engine, sessions
from issuer.models import Agency, Base, Certificate
from registry.crypto import DataCipher

AGENCY = "11330100002493028E"
INDEX = BlindIndex(b"k" * 32)
KEY = b"k" * 32
DATA_KEY = os.urandom(32)
NAME, CODE = "杭州某某商贸有限公司", "91330106MA2H3XY60L"


def digest_of_0007(kind: str, value: str) -> bytes:
    """What 0007 stored: HMAC-SHA256(key, kind ␟ agency ␟ normalised value), 16 bytes."""
    return hmac.new(KEY, f"{kind}\x1f{AGENCY}\x1f{normalise(kind, value)}".encode(), hashlib.sha256).digest()[
        :16
    ]


def rows_of_0007(engine: sa.Engine) -> set[tuple[int, str, str, bytes]]:
    with engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT certificate_id, kind, agency_code, digest FROM certificate_blind_index")
        ).all()
    return {(int(cert), kind, agency, bytes(digest)) for cert, kind, agency, digest in found}


def test_0009_and_0012_carry_the_digests_over(sqlite_or_postgres_url: str) -> None:
    engine = make_engine(sqlite_or_postgres_url)
    try:
        issuer_alembic(engine, "upgrade", "0007")
        with sessions(engine).begin() as session:
            session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
            session.execute(sa.text(
                "INSERT INTO jobs (id, agency_code, type_code, request_hash, total, created_at)"
                " VALUES (:j, :a, 'T', :h, 2, :t)"), {"j": "j" * 32, "a": AGENCY, "h": "h" * 64,
                "t": dt.datetime.now(dt.UTC)})  # fmt: skip  # the columns of 0007
            session.flush()
            for position in (1, 2):  # the columns of 0007 (the model has later ones)
                session.execute(sa.text(
                    "INSERT INTO certificates (identifier, agency_code, type_code, job_id, position, version, state,"
                    " sealed_fields, digest, status, created_at) VALUES (:i, :a, 'T', :j, :p, 1, 'pending', :f, :d,"
                    " 'active', :t)"), {"i": f"ID{position}", "a": AGENCY, "j": "j" * 32, "p": position,
                    "f": DataCipher(DATA_KEY).encrypt(cbor2.dumps([]), f"ID{position}"), "d": bytes(32),
                    "t": dt.datetime.now(dt.UTC)})  # fmt: skip
            first, second = session.scalars(sa.select(Certificate.id).order_by(Certificate.position)).all()
        before = (
            {(first, NUMBER, AGENCY, digest_of_0007(NUMBER, "No. 1"))}
            | {
                (first, kind, AGENCY, digest_of_0007(kind, value))
                for kind, value in ((HOLDER_NAME, NAME), (HOLDER_CODE, CODE))
            }
            | {(second, NUMBER, AGENCY, digest_of_0007(NUMBER, "No. 2"))}
        )  # the second: no holder
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO certificate_blind_index VALUES (:c, :k, :a, :d)"),
                [{"c": c, "k": k, "a": a, "d": d} for c, k, a, d in before],
            )
        issuer_alembic(engine, "upgrade", "0011")
        with engine.connect() as connection:
            in_0009 = connection.execute(sa.text(
                "SELECT certificate_id, agency_code, number_digest, name_digest, code_digest"
                " FROM certificate_blind_index ORDER BY certificate_id"
            )).all()  # fmt: skip
        assert [tuple(row) for row in in_0009] == [
            (first, AGENCY, digest_of_0007(NUMBER, "No. 1"), digest_of_0007(HOLDER_NAME, NAME),
             digest_of_0007(HOLDER_CODE, CODE)),
            (second, AGENCY, digest_of_0007(NUMBER, "No. 2"), None, None),
        ]  # fmt: skip
        issuer_alembic(engine, "upgrade", "head")
        with engine.connect() as connection:
            after = connection.execute(sa.text(
                "SELECT id, number_digest, name_digest, code_digest FROM certificates ORDER BY id"
            )).all()  # fmt: skip
            tables = sa.inspect(connection).get_table_names()
            differences = [
                d for d in compare_metadata(MigrationContext.configure(connection), Base.metadata)
                if "digest" in repr(d) or "blind_index" in repr(d)
            ]  # fmt: skip
        assert [tuple(row) for row in after] == [
            (first, INDEX.digest(AGENCY, NUMBER, "No. 1"), INDEX.digest(AGENCY, HOLDER_NAME, NAME),
             INDEX.digest(AGENCY, HOLDER_CODE, CODE)),
            (second, INDEX.digest(AGENCY, NUMBER, "No. 2"), None, None),
        ]  # fmt: skip
        assert INDEX.digest(AGENCY, NUMBER, "No. 1") == int.from_bytes(
            digest_of_0007(NUMBER, "No. 1")[:8], "big", signed=True
        )
        assert "certificate_blind_index" not in tables
        assert differences == []  # the columns and indexes the model describes
        search = CertificatePages(sessions(engine), DATA_KEY, INDEX)
        for query, found in (
            (SearchQuery(holder_name=" 杭州某某商贸有限公司 "), ["ID1"]),
            (SearchQuery(holder_code=CODE.lower(), number="no.1"), ["ID1"]),
            (SearchQuery(number="No. 2"), ["ID2"]),
            (SearchQuery(number="No. 2", holder_code=CODE), []),
            (SearchQuery(number="No."), []),  # a part of a value finds nothing
        ):
            assert [hit.identifier for hit in search.search(AGENCY, query).hits] == found, query
        issuer_alembic(engine, "downgrade", "0011")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM certificate_blind_index")).scalar() == 0
        issuer_alembic(engine, "downgrade", "0007")
        assert rows_of_0007(engine) == set()
    finally:
        engine.dispose()
