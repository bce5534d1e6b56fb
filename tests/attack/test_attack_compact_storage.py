"""Attacks on the compact certificate storage (commit 9147740, issue 14): co-seal groups rebuilt
at packaging and re-sealed whole, identifier uniqueness (a hash exclusion on PostgreSQL) under
concurrent submits and renewals, migration 0012 both ways, and form 2 read with the wrong key.

A test marked xfail(strict) shows a real problem (it passes once fixed); the others are attacks
that are defended, kept as regression tests. On SQLite and, with ECERT_TEST_POSTGRES_URL, on
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cbor2
import pytest
import sqlalchemy as sa
from databases import issuer_alembic, postgres_database
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from issuer.benchmark import make_records
from issuer.blind_index import BlindIndex, reindex
from issuer.certificate_search import CertificatePages, SearchQuery
from issuer.db import make_engine, migrate, sessions
from issuer.intake_batches import IntakeBatching
from issuer.models import Agency, Batch, Certificate, Job, NationalSealGroup
from issuer.national_groups import GroupSeals, reseal_stale
from issuer.service import IssuerService
from registry import national
from registry.certificate.canonical import make_leaves
from registry.certificate.identifiers import uscc_check_char
from registry.certificate.merkle import batch_tree, field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.national_seal import check_seal, seal_group
from registry.crypto import DataCipher
from registry.error_codes import ErrorCode
from registry.errors import EcertError

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"
CHAIN_ID, REGISTRY = 31337, "0x" + "11" * 20
DATA_KEY = os.urandom(32)
ON_POSTGRES = pytest.mark.skipif(not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("set ECERT_TEST_POSTGRES_URL to run on PostgreSQL")
    with postgres_database(POSTGRES_URL) as url:
        yield url


def _made(url: str) -> tuple[sa.Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    migrate(engine)
    with sessions(engine).begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
    return engine, sessions(engine)


@pytest.fixture
def made(sqlite_or_postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine, made = _made(sqlite_or_postgres_url)
    yield made
    engine.dispose()


def issuer_of(
    made: sessionmaker[Session], sm2: list[bytes], batch: int | None = None, data_key: bytes = DATA_KEY
) -> IssuerService:
    """An issuer whose SM2 key is `sm2[-1]` (append to rotate); jobs of ≥ 1 record stored in
    batches of `batch` when given (else left pending for the worker)."""
    signer = Account.create()
    return IssuerService(
        made, data_key, chain_id=CHAIN_ID, registry_address=REGISTRY, signer_for=lambda _code: signer,
        processes=1, national_key_for=lambda _code: sm2[-1],
        intake_batching=IntakeBatching(batch, 1) if batch else None,
    )  # fmt: skip


def co_sealer(issuer: IssuerService, identifier: str, keys: list[bytes]) -> bytes | None:
    """The SM2 public key (of `keys`) whose co-seal the certificate's package carries, if any."""
    package = issuer.package(AGENCY, identifier)
    assert package.national_seal is not None
    publics = [national.public_key(key) for key in keys]
    return check_seal(publics, CHAIN_ID, REGISTRY, package.digest, package.national_seal)


# ─── co-seal groups ────────────────────────────────────────────────────────────────────────


def test_a_reseal_does_not_change_the_co_seal_of_certificates_already_anchored(
    made: sessionmaker[Session],
) -> None:
    """Groups of 64 over batches of 50: group 1 is certificates 1-64, in batches 1 and 2. Batch 1
    is anchored (mined) under the first SM2 key; the key rotates; the worker anchors batch 2 and
    re-seals its stale groups. Batch 1's certificates were anchored with a co-seal that was good
    at their anchor time: their packages must keep it (the new key was not yet registered then,
    so a co-seal by it is NATIONAL_KEY_NOT_VALID for them). The same happens to a small job cut
    by the worker into batches smaller than a group, rotated between two of its batches, and to
    a batch sent back to `sealed` by a reorg while the group's other batch stays anchored."""
    keys = [national.generate_private_key()]
    issuer = issuer_of(made, keys, 50)
    try:
        job = issuer.submit(AGENCY, TYPE, make_records(120), type_name="营业执照")
        with made.begin() as session:
            first, second = session.scalars(sa.select(Batch.id).order_by(Batch.id).limit(2)).all()
            session.execute(
                sa.update(Batch).where(Batch.id == first).values(state="mined", tx_hash="0x" + "ab" * 32)
            )
        anchored = job.identifiers[:50]
        assert all(
            co_sealer(issuer, identifier, keys) == national.public_key(keys[0]) for identifier in anchored
        )

        keys.append(national.generate_private_key())  # rotated: batch 2 is re-sealed when it is anchored
        with made.begin() as session:
            reseal_stale(
                session,
                second,
                keys[1],
                national.key_id(national.public_key(keys[1])),
                CHAIN_ID,
                REGISTRY,
                64,
            )
        for identifier in job.identifiers[50:100]:  # batch 2 itself: the new key's, as it should
            assert co_sealer(issuer, identifier, keys) == national.public_key(keys[1])
        changed = [i for i in anchored if co_sealer(issuer, i, keys) != national.public_key(keys[0])]
        assert changed == [], f"{len(changed)} anchored certificate(s) got the new SM2 key's co-seal"
    finally:
        issuer.close()


def test_a_package_made_while_its_group_is_resealed_gets_a_seal_or_a_structured_error(
    made: sessionmaker[Session],
) -> None:
    """The API reads the certificate row (naming group G), then the worker commits a re-seal (G
    deleted, the members named in new groups), then the API reads G to rebuild the proof. The
    interleaving is made by hand, in the order `IssuerService.presentation` reads."""
    keys = [national.generate_private_key()]
    issuer = issuer_of(made, keys, 10)
    try:
        job = issuer.submit(AGENCY, TYPE, make_records(3), type_name="营业执照")
        with made() as api:
            cert = api.scalars(
                sa.select(Certificate).where(Certificate.identifier == job.identifiers[0])
            ).one()
            assert cert.national_group_id is not None and cert.batch_id is not None
            api.commit()  # the row is read; what follows is read anew (read committed, or SQLite)
            keys.append(national.generate_private_key())
            with made.begin() as worker:
                count, gone = reseal_stale(
                    worker,
                    cert.batch_id,
                    keys[1],
                    national.key_id(national.public_key(keys[1])),
                    CHAIN_ID,
                    REGISTRY,
                    64,
                )
            assert count == 3 and gone == [cert.national_group_id]
            try:
                seal = GroupSeals(CHAIN_ID, REGISTRY).of(api, cert)
            except EcertError:
                return  # a structured error (e.g. CONFLICT, try again) is fine
            assert seal is not None
            publics = [national.public_key(key) for key in keys]
            assert check_seal(publics, CHAIN_ID, REGISTRY, cert.digest, seal) is not None
    finally:
        issuer.close()


def test_a_group_is_rebuilt_in_signing_order_when_jobs_interleave_and_records_are_rejected(
    made: sessionmaker[Session],
) -> None:
    """Two jobs stored at once (threads; ids interleave on PostgreSQL), with bad records between
    good ones, and renewals (a job of one each): every package's co-seal verifies, and each of
    its group's members is of one job."""
    keys = [national.generate_private_key()]
    issuer = issuer_of(made, keys)
    try:
        records = make_records(150)
        for bad in (3, 70, 71, 149):
            records[bad] = {"holder": {"name": ""}}  # rejected: not in the group
        with ThreadPoolExecutor(2) as pool:
            jobs = list(
                pool.map(
                    lambda rs: issuer.submit(AGENCY, TYPE, rs, type_name="营业执照"), [records, records[::-1]]
                )
            )
        identifiers = [i for job in jobs for i in job.identifiers]
        assert len(identifiers) == 2 * 146
        renewed = [
            issuer.reissue(AGENCY, identifier, {"validUntil": "2050-01-01"}) for identifier in identifiers[:3]
        ]
        identifiers += [i for job in renewed for i in job.identifiers]
        with made() as session:  # the worker would cut batches: give each a batch, as it would
            rows = session.execute(
                sa.select(Certificate.id, Certificate.digest).order_by(Certificate.id)
            ).all()
            batch = Batch(agency_code=AGENCY, type_code=TYPE, root=batch_tree([r.digest for r in rows]).root,
                          count=len(rows), signer="0x" + "00" * 20)  # fmt: skip
            session.add(batch)
            session.flush()
            session.execute(sa.update(Certificate), [
                {"id": r.id, "intake_state": "sealed", "batch_id": batch.id, "batch_index": n} for n, r in enumerate(rows)
            ])  # fmt: skip
            session.commit()
            groups = session.execute(
                sa.select(
                    Certificate.national_group_id, sa.func.count(sa.distinct(Certificate.job_id))
                ).group_by(Certificate.national_group_id)
            ).all()
        assert all(jobs_in_group == 1 for _, jobs_in_group in groups)
        assert all(co_sealer(issuer, identifier, keys) is not None for identifier in identifiers)
    finally:
        issuer.close()


# ─── identifiers ───────────────────────────────────────────────────────────────────────────


def test_two_jobs_whose_ids_share_the_serial_prefix_are_both_stored(
    made: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A birthday collision of the 24-bit serial prefix, forced: the first two job ids begin
    `abcdef`; the second job is stored under a new job id. Were every id to collide, the answer is
    a structured CONFLICT, never a 500."""
    issuer = issuer_of(made, [national.generate_private_key()])
    real = uuid.uuid4
    colliding = iter(range(2))
    monkeypatch.setattr(
        uuid,
        "uuid4",
        lambda: uuid.UUID("abcdef" + real().hex[6:]) if next(colliding, None) is not None else real(),
    )
    try:
        first = issuer.submit(AGENCY, TYPE, make_records(2), type_name="营业执照")
        second = issuer.submit(AGENCY, TYPE, make_records(2, seed=2), type_name="营业执照")
        assert set(first.identifiers).isdisjoint(second.identifiers)
        assert len(second.identifiers) == 2 and not second.id.startswith("abcdef")
        monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID("abcdef" + real().hex[6:]))
        with pytest.raises(EcertError) as refused:
            issuer.submit(AGENCY, TYPE, make_records(2, seed=3), type_name="营业执照")
        assert refused.value.code == ErrorCode.CONFLICT
        with made() as session:
            assert (
                session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 4
            )  # nothing half-stored
    finally:
        issuer.close()


def _race(count: int, attempt: Callable[[], Any]) -> list[Any]:
    """`attempt` `count` times at once (released together); each result or the exception raised."""
    gate = threading.Barrier(count)

    def one() -> Any:
        gate.wait()
        try:
            return attempt()
        except Exception as exc:  # collected: any but EcertError fails the test
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _n: one(), range(count)))


def test_fifty_parallel_renewals_of_one_certificate_make_one_version(postgres_url: str) -> None:
    """50 renewals of one certificate at once, without and then with one Idempotency-Key: one new
    version each time, one row per identifier, the others structured conflicts (or the same job)."""
    engine, made = _made(postgres_url)
    issuer = issuer_of(made, [national.generate_private_key()])
    try:
        job = issuer.submit(AGENCY, TYPE, make_records(2), type_name="营业执照")
        first, second = job.identifiers
        results = _race(50, lambda: issuer.reissue(AGENCY, first, {"validUntil": "2050-01-01"}))
        unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, EcertError)]
        assert unexpected == []
        won = [r for r in results if not isinstance(r, Exception)]
        assert len(won) == 1
        assert {r.code for r in results if isinstance(r, EcertError)} == {ErrorCode.CERT_SUPERSEDED}

        results = _race(
            50,
            lambda: issuer.reissue(AGENCY, second, {"validUntil": "2051-01-01"}, idempotency_key="renew-2"),
        )
        assert [r for r in results if isinstance(r, Exception) and not isinstance(r, EcertError)] == []
        jobs = {r.id for r in results if not isinstance(r, Exception)}
        assert len(jobs) == 1
        with made() as session:
            rows = session.execute(sa.select(Certificate.identifier, Certificate.previous_identifier)).all()
            assert len(rows) == 4 and len({r.identifier for r in rows}) == 4
            assert sorted(r.previous_identifier for r in rows if r.previous_identifier) == sorted(
                [first, second]
            )
    finally:
        issuer.close()
        engine.dispose()


def test_a_renewal_retried_with_its_key_during_its_first_attempt_gets_its_job(postgres_url: str) -> None:
    """Idempotency: 50 tries of one renewal with one key, at once: every one gets the same job."""
    engine, made = _made(postgres_url)
    issuer = issuer_of(made, [national.generate_private_key()])
    try:
        [identifier] = issuer.submit(AGENCY, TYPE, make_records(1), type_name="营业执照").identifiers
        results = _race(
            50, lambda: issuer.reissue(AGENCY, identifier, {"validUntil": "2051-01-01"}, idempotency_key="k")
        )
        refused = [r.code for r in results if isinstance(r, EcertError)]
        assert refused == []
    finally:
        issuer.close()
        engine.dispose()


def test_fifty_parallel_submits_with_one_idempotency_key_make_one_job(made: sessionmaker[Session]) -> None:
    issuer = issuer_of(made, [national.generate_private_key()])
    try:
        records = make_records(3)
        results = _race(
            50, lambda: issuer.submit(AGENCY, TYPE, records, type_name="营业执照", idempotency_key="same")
        )
        assert [r for r in results if isinstance(r, Exception)] == []
        assert len({r.id for r in results}) == 1
        with made() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 1
            assert session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 3
            assert session.scalar(sa.select(sa.func.count()).select_from(NationalSealGroup)) == 1
    finally:
        issuer.close()


# ─── form 2 read with the wrong key ────────────────────────────────────────────────────────


def test_fields_read_with_another_data_key_or_under_another_identifier_are_data_key_mismatch(
    made: sessionmaker[Session],
) -> None:
    keys = [national.generate_private_key()]
    issuer = issuer_of(made, keys, 10)
    stranger = issuer_of(made, keys, 10, data_key=os.urandom(32))
    try:
        first, second = issuer.submit(AGENCY, TYPE, make_records(2), type_name="营业执照").identifiers
        for call in (stranger.fields, stranger.package):
            with pytest.raises(EcertError) as caught:
                call(AGENCY, first)
            assert caught.value.code is ErrorCode.DATA_KEY_MISMATCH
        with made.begin() as session:  # one row's ciphertext copied into another's
            sealed = session.scalar(
                sa.select(Certificate.sealed_fields).where(Certificate.identifier == first)
            )
            session.execute(
                sa.update(Certificate).where(Certificate.identifier == second).values(sealed_fields=sealed)
            )
        with pytest.raises(EcertError) as caught:
            issuer.fields(AGENCY, second)
        assert caught.value.code is ErrorCode.DATA_KEY_MISMATCH
    finally:
        issuer.close()
        stranger.close()


# ─── migration 0012 both ways ──────────────────────────────────────────────────────────────


def fields_of(i: int, serial: str | None = None, version: int = 1) -> dict[str, object]:
    return build_fields(
        make_records(i + 1)[i], type_code=TYPE, type_name="营业执照",
        issuer=Issuer("杭州市市场监督管理局", AGENCY, "330100"), serial=serial or f"20261204ABCDEF{i:07d}",
        today=dt.date(2026, 12, 4), version=version,
    )  # fmt: skip


@pytest.mark.parametrize("one_key", [False, True], ids=["sealers-differ", "one-sealer"])
def test_rows_of_0011_survive_0012_a_downgrade_and_an_upgrade_again(
    sqlite_or_postgres_url: str, one_key: bool
) -> None:
    """At 0011: one job whose certificates were sealed by two keys, one with no `sealed_by`, one
    with no co-seal, a renewal and a claim code; then head, 0011 and head again: each package has
    its fields, seal and co-seal (or none), jobs and batches name a sealer only when one key did."""
    engine = make_engine(sqlite_or_postgres_url)
    sm2, old, new = national.generate_private_key(), Account.create(), Account.create()
    cipher = DataCipher(DATA_KEY)
    try:
        issuer_alembic(engine, "upgrade", "0011")
        made = [
            fields_of(0),
            fields_of(1),
            fields_of(2),
            fields_of(0, serial="20261204ABCDEF0000000", version=2),
        ]
        leaves = [make_leaves(fields) for fields in made]
        digests = [field_digest(leaf) for leaf in leaves]
        seals = seal_group(sm2, CHAIN_ID, REGISTRY, digests)
        sealers = [new.address] * 4 if one_key else [old.address, new.address, None, new.address]
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO agencies (code, name, region) VALUES (:a, 'n', '330100')"), {"a": AGENCY}
            )
            conn.execute(sa.text(
                "INSERT INTO jobs (id, agency_code, type_code, request_hash, total, created_at)"
                " VALUES ('j', :a, :t, 'h', 4, CURRENT_TIMESTAMP)"), {"a": AGENCY, "t": TYPE})  # fmt: skip
            batch_id = conn.execute(sa.text(
                "INSERT INTO batches (agency_code, type_code, root, count, state, attempts, created_at)"
                " VALUES (:a, :t, :r, 4, 'sealed', 0, CURRENT_TIMESTAMP) RETURNING id"),
                {"a": AGENCY, "t": TYPE, "r": batch_tree(digests).root}).scalar_one()  # fmt: skip
            for i, fields in enumerate(made):
                identifier = str(fields["identifier"])
                conn.execute(sa.text(
                    "INSERT INTO certificates (identifier, agency_code, type_code, job_id, position, version, state,"
                    " sealed_fields, digest, seal, sealed_by, status, national_seal, national_key_id, batch_id,"
                    " batch_index, previous_identifier, claim_code_hash) VALUES (:i, :a, :t, 'j', :p, :v, 'sealed',"
                    " :f, :d, :s, :by, 'active', :n, :k, :b, :p0, :prev, :claim)"), {
                    "i": identifier, "a": AGENCY, "t": TYPE, "p": i + 1, "p0": i, "b": batch_id, "v": 2 if i == 3 else 1,
                    "f": cipher.encrypt(cbor2.dumps([[x.salt, x.path, x.value] for x in leaves[i]]), identifier),
                    "d": digests[i], "s": b"\x01" * 65, "by": sealers[i], "n": None if i == 2 else seals[i].to_bytes(),
                    "k": None if i == 2 else national.key_id(national.public_key(sm2)),
                    "prev": str(made[0]["identifier"]) if i == 3 else None, "claim": "c" * 64 if i == 1 else None,
                })  # fmt: skip

        def packaged() -> None:
            issuer = IssuerService(sessions(engine), DATA_KEY, chain_id=CHAIN_ID, registry_address=REGISTRY,
                                   signer_for=lambda _code: new, processes=1)  # fmt: skip
            try:
                for i, fields in enumerate(made):
                    package = issuer.package(AGENCY, str(fields["identifier"]))
                    assert package.leaves == tuple(leaves[i])
                    assert package.national_seal == (None if i == 2 else seals[i])
            finally:
                issuer.close()

        issuer_alembic(engine, "upgrade", "head")
        packaged()
        with engine.connect() as conn:  # named once one key sealed them all, else NULL: the seal says
            expected = new.address if one_key else None
            assert conn.execute(sa.text("SELECT sealed_by FROM jobs")).scalar_one() == expected
            assert conn.execute(sa.text("SELECT sealed_by FROM batches")).scalar_one() == expected
            assert "sealed_by" not in {c["name"] for c in sa.inspect(conn).get_columns("certificates")}
        issuer_alembic(engine, "downgrade", "0011")
        issuer_alembic(engine, "upgrade", "head")
        packaged()
        with engine.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM certificates WHERE claim_code_hash IS NOT NULL")
                ).scalar_one()
                == 1
            )
    finally:
        engine.dispose()


# ─── blind index ───────────────────────────────────────────────────────────────────────────

OTHER_AGENCY = "11330200002493028" + uscc_check_char("11330200002493028")


def test_reindex_gives_the_digests_intake_gave_and_search_stays_within_its_agency(
    made: sessionmaker[Session],
) -> None:
    """Records with no number (the serial stands in), full-width and spaced values, and the same
    holder at two agencies: `reindex --everything` (in chunks of 2) writes back exactly the
    digests intake wrote, and each agency's search finds its own certificate only."""
    with made.begin() as session:
        session.add(Agency(code=OTHER_AGENCY, name="宁波市市场监督管理局", region="330200"))
    index = BlindIndex(os.urandom(32))
    issuer = issuer_of(made, [national.generate_private_key()])
    issuer.blind_index = index
    try:
        records: list[dict[str, Any]] = make_records(5)
        records[0].pop("number")
        records[1]["number"] = "ＮＯ． 12 34"
        records[2]["holder"] = {
            "name": "  Ｈａｎｇ  Zhou  Trading ",
            "code": records[2]["holder"]["code"].lower(),
        }
        mine = issuer.submit(AGENCY, TYPE, records, type_name="营业执照")
        theirs = issuer.submit(OTHER_AGENCY, TYPE, records[3:4], type_name="营业执照")
        columns = (
            Certificate.identifier,
            Certificate.number_digest,
            Certificate.name_digest,
            Certificate.code_digest,
        )
        with made() as session:
            at_intake = set(session.execute(sa.select(*columns)).all())
        assert all(None not in row for row in at_intake) and len(at_intake) == 6
        assert reindex(made, index, DATA_KEY, everything=True, chunk=2) == 6
        with made() as session:
            assert set(session.execute(sa.select(*columns)).all()) == at_intake
        search = CertificatePages(made, DATA_KEY, index)
        for agency, job in ((AGENCY, mine), (OTHER_AGENCY, theirs)):
            found = search.search(agency, SearchQuery(holder_name=str(records[3]["holder"]["name"])))
            assert [hit.identifier for hit in found.hits] == [job.identifiers[3 if agency == AGENCY else 0]]
        assert [h.identifier for h in search.search(AGENCY, SearchQuery(number="NO.1234")).hits] == [
            mine.identifiers[1]
        ]
        assert [
            h.identifier for h in search.search(AGENCY, SearchQuery(holder_name="ｈａｎｇ zhou trading")).hits
        ] == [mine.identifiers[2]]
    finally:
        issuer.close()


def test_an_agency_ensured_many_times_at_once_is_one_row(made: sessionmaker[Session]) -> None:
    """A starting service and `ecert issuer api-key create` both make the agency's row (the stack
    test met it on PostgreSQL): 20 at once give one row and no error."""
    issuer = issuer_of(made, [national.generate_private_key()])
    try:
        results = _race(20, lambda: issuer.ensure_agency(OTHER_AGENCY, "宁波市市场监督管理局", "330200"))
        assert [r for r in results if isinstance(r, Exception)] == []
        with made() as session:
            assert session.scalar(sa.select(sa.func.count()).where(Agency.code == OTHER_AGENCY)) == 1
    finally:
        issuer.close()
