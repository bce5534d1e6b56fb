"""A certificate at rest in ~1 KB (issue 14, migration 0012): fields stored in form 2 (salts
derived from a seed, DEFLATE with a dictionary), national co-seals once per group with proofs
rebuilt when a package is made (a group straddling two batches re-sealed whole), and rows stored
before 0012 read as they are (with the upgrade itself: tests/attack/test_attack_compact_storage.py).
On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Iterator

import cbor2
import pytest
import sqlalchemy as sa
from databases import postgres_database
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from issuer.benchmark import make_records
from issuer.blind_index import BlindIndex
from issuer.db import make_engine, migrate, sessions
from issuer.intake_batches import IntakeBatching
from issuer.models import Agency, Batch, Certificate, NationalSealGroup
from issuer.national_groups import reseal_stale
from issuer.sealed_fields import decode_leaves, encode_leaves, open_fields, salted_leaves, seal_fields
from issuer.service import IssuerService
from registry import national
from registry.certificate.merkle import field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.national_seal import check_seal
from registry.crypto import DataCipher
from registry.errors import EcertError

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"
CHAIN_ID, REGISTRY = 31337, "0x" + "11" * 20
DATA_KEY = os.urandom(32)


def fields_of(i: int) -> dict[str, object]:
    return build_fields(
        make_records(i + 1)[i], type_code=TYPE, type_name="营业执照",
        issuer=Issuer("杭州市市场监督管理局", AGENCY, "330100"), serial=f"20261204ABCDEF{i:07d}",
        today=dt.date(2026, 12, 4),
    )  # fmt: skip


# ─── sealed fields ─────────────────────────────────────────────────────────────────────────


def test_form_2_gives_back_the_leaves_and_their_salts() -> None:
    cipher = DataCipher(DATA_KEY)
    fields = fields_of(3)
    salted = salted_leaves(fields)
    leaves, identifier = salted.leaves, str(fields["identifier"])
    sealed = seal_fields(cipher, salted, identifier)
    assert open_fields(cipher, sealed, identifier) == leaves
    assert field_digest(open_fields(cipher, sealed, identifier)) == field_digest(leaves)  # what was anchored
    stream = hashlib.shake_256(b"ecert-field-salts/1" + salted.seed).digest(
        16 * len(leaves)
    )  # PROTOCOL "Salt"
    assert [leaf.salt for leaf in leaves] == [stream[i : i + 16] for i in range(0, len(stream), 16)]
    old = cipher.encrypt(cbor2.dumps([[leaf.salt, leaf.path, leaf.value] for leaf in leaves]), identifier)
    assert len(sealed) < 400 < 1_000 < len(old)  # a business licence: ~320 bytes, ~1,100 in form 1
    assert open_fields(cipher, old, identifier) == leaves  # form 1, as rows before 0012 hold it


def test_each_certificate_has_its_own_salts() -> None:
    """Two certificates with equal fields get unrelated salts (a fresh seed each), so a field
    shown by one holder says nothing of the same value in another certificate."""
    fields = fields_of(5)
    first, second = salted_leaves(fields).leaves, salted_leaves(fields).leaves
    assert {leaf.salt for leaf in first}.isdisjoint(leaf.salt for leaf in second)
    assert field_digest(first) != field_digest(second)


def test_form_2_is_bound_to_its_identifier() -> None:
    cipher = DataCipher(DATA_KEY)
    fields = fields_of(1)
    salted = salted_leaves(fields)
    sealed = seal_fields(cipher, salted, str(fields["identifier"]))
    with pytest.raises(EcertError, match="does not decrypt"):
        open_fields(cipher, sealed, str(fields["identifier"]) + "X")
    with pytest.raises(EcertError, match="does not decrypt"):
        open_fields(cipher, sealed[:-1] + bytes([sealed[-1] ^ 1]), str(fields["identifier"]))
    assert decode_leaves(encode_leaves(salted, "ID"), "ID") == salted.leaves  # the dictionary ends with it


# ─── databases ─────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def made(sqlite_or_postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_or_postgres_url)
    migrate(engine)
    with sessions(engine).begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
    yield sessions(engine)
    engine.dispose()


def service(made: sessionmaker[Session], sm2: list[bytes], batch: int) -> IssuerService:
    """An issuer whose SM2 key is `sm2[-1]` (append to rotate), storing jobs in batches of `batch`."""
    signer = Account.create()
    return IssuerService(
        made, DATA_KEY, chain_id=CHAIN_ID, registry_address=REGISTRY, signer_for=lambda _code: signer,
        processes=1, national_key_for=lambda _code: sm2[-1], intake_batching=IntakeBatching(batch, 1),
    )  # fmt: skip


def test_a_group_straddling_two_batches_is_co_sealed_again_whole(made: sessionmaker[Session]) -> None:
    """Groups of 64 over batches of 50: the first group lies in batches 1 and 2. A rotated SM2 key
    re-seals batch 1 and, with it, the rest of that group in batch 2 (else the group's root would
    no longer be what its signature signed); the second group, all in batches 2 and 3, is not
    touched by re-sealing batch 1 only."""
    keys = [national.generate_private_key()]
    issuer = service(made, keys, 50)
    try:
        job = issuer.submit(AGENCY, TYPE, make_records(120), type_name="营业执照")
        packages = {identifier: issuer.package(AGENCY, identifier) for identifier in job.identifiers}
        old = national.public_key(keys[0])
        for package in packages.values():  # each proof rebuilt from the group's digests checks
            assert package.national_seal is not None
            assert check_seal([old], CHAIN_ID, REGISTRY, package.digest, package.national_seal) == old
        with made() as session:
            groups = session.scalars(sa.select(NationalSealGroup.id).order_by(NationalSealGroup.id)).all()
            first_batch = session.scalars(sa.select(Batch.id).order_by(Batch.id)).first()
        assert len(groups) == 2 and first_batch is not None  # 64 + 56 certificates, one signature each

        keys.append(national.generate_private_key())
        new = national.public_key(keys[1])
        with made.begin() as session:
            count, gone = reseal_stale(
                session, first_batch, keys[1], national.key_id(new), CHAIN_ID, REGISTRY, 64
            )
        assert (count, gone) == (64, [groups[0]])  # batch 1's 50 and the group's 14 in batch 2
        for n, identifier in enumerate(job.identifiers):
            package = issuer.package(AGENCY, identifier)
            assert package.national_seal is not None
            expected = new if n < 64 else old
            assert (
                check_seal([old, new], CHAIN_ID, REGISTRY, package.digest, package.national_seal) == expected
            )
            assert dataclasses.replace(package, national_seal=None) == dataclasses.replace(
                packages[identifier], national_seal=None
            )  # nothing else changed
    finally:
        issuer.close()


@pytest.mark.skipif(not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL")
def test_a_certificate_takes_under_a_kilobyte_on_postgresql() -> None:
    """Issue 14's goal, on what PostgreSQL itself counts (heap, TOAST and every index of the
    certificates and their co-seal groups, after a plain VACUUM), for business licences issued
    through the service with their blind index."""
    assert POSTGRES_URL is not None
    with postgres_database(POSTGRES_URL) as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            made = sessions(engine)
            with made.begin() as session:
                session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
            issuer = service(made, [national.generate_private_key()], 10_000)
            issuer.blind_index = BlindIndex(os.urandom(32))
            try:
                issuer.submit(AGENCY, TYPE, make_records(10_000), type_name="营业执照")
            finally:
                issuer.close()
            size, count = _measured(engine)
        finally:
            engine.dispose()
    assert count == 10_000
    assert size / count <= 1_024, f"{size / count:.0f} bytes a certificate"  # 976 when written (10,000)


def _measured(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE certificates")
        conn.exec_driver_sql("VACUUM ANALYZE national_seal_groups")
        size = conn.exec_driver_sql(
            "SELECT pg_total_relation_size('certificates') + pg_total_relation_size('national_seal_groups')"
        ).scalar_one()
        count = conn.execute(sa.select(sa.func.count()).select_from(Certificate)).scalar_one()
    return int(size), int(count)
