"""The issuer's service layer: what the API and the CLI both call.

Every certificate is committed to the database (the outbox) before anything goes to the chain;
`issuer.anchoring` takes it from there. An agency only ever sees and acts on its own rows: every
lookup is filtered by the caller's agency code, and a miss is NOT_FOUND whoever owns the row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from issuer.blind_index import BlindIndex, Digests, record_values
from issuer.intake import (
    IntakeSpec,
    Prepared,
    PreparedCertificate,
    prepare_chunks,
    process_pool,
)
from issuer.intake_batches import IntakeBatcher, IntakeBatching
from issuer.models import Agency, Batch, Certificate, Job, JobError
from issuer.national_groups import GroupSeals, store_seal_groups
from issuer.sealed_fields import open_fields
from registry.certificate.canonical import leaf_value, unflatten
from registry.certificate.identifiers import parse_licence_id
from registry.certificate.merkle import MerkleTree, batch_tree
from registry.certificate.model import Issuer
from registry.certificate.national_seal import NATIONAL_GROUP
from registry.certificate.presentation import Presentation
from registry.certificate.types import name_contradiction
from registry.crypto import DataCipher
from registry.database import core_table
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, Conflict, EcertError, IdentifierError, NotAuthorised, NotFound
from registry.national import key_id, public_key

log = logging.getLogger(__name__)

JOB_STATES = ("pending", "sealed", "anchored", "confirmed", "refused")
RENEWAL_RETRY_WAIT_S = 10.0  # how long a retried renewal waits for its first attempt's job
JOB_ID_ATTEMPTS = 3  # new job ids tried when a job's serials are taken (each time: ~1 in 16 million)
CLAIM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by holders


# The columns intake fills, in the order of `insert_certificates`' tuples; the others take their
# server default or stay NULL.
INTAKE_COLUMNS = (
    "identifier", "agency_code", "type_code", "job_id", "position", "version", "previous_identifier", "state",
    "sealed_fields", "digest", "seal", "status", "national_group_id", "batch_id", "batch_index",
    "number_digest", "name_digest", "code_digest",
)  # fmt: skip
NO_DIGESTS: Digests = (None, None, None)  # not in the blind index (yet): `ecert issuer reindex`
assert set(INTAKE_COLUMNS) <= set(core_table(Certificate).c.keys())  # a renamed column fails here
INSERT_CERTIFICATES_QMARK = (
    f"INSERT INTO certificates ({', '.join(INTAKE_COLUMNS)}) VALUES ({', '.join('?' * len(INTAKE_COLUMNS))})"  # noqa: S608  # constants only
)
INSERT_CERTIFICATES_FORMAT = INSERT_CERTIFICATES_QMARK.replace("?", "%s")  # psycopg


def insert_certificates(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """A chunk's certificates in one executemany of tuples, straight to the driver, as the blind
    index's digests (`blind_index.store_digests`): through Core each row's dict was bound and type-processed parameter
    by parameter (five binary columns), the storing thread's largest cost after the driver's."""
    connection = session.connection()
    insert = (
        INSERT_CERTIFICATES_QMARK if connection.dialect.paramstyle == "qmark" else INSERT_CERTIFICATES_FORMAT
    )
    connection.exec_driver_sql(insert, rows)


@dataclass(frozen=True)
class JobView:
    id: str
    agency_code: str
    type_code: str
    total: int
    counts: dict[str, int]
    errors: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)  # batches the chain refused: why, how many

    @property
    def done(self) -> bool:
        """Every record is confirmed, failed intake, or was refused by the chain (never retried)."""
        return (
            self.counts.get("confirmed", 0) + self.counts.get("failed", 0) + self.counts.get("refused", 0)
            >= self.total
        )


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _identifier_taken(exc: IntegrityError) -> bool:
    """Whether an insert failed on the identifier's uniqueness (PostgreSQL: its exclusion
    constraint; SQLite: its UNIQUE constraint)."""
    text = str(exc.orig)
    return "ex_certificates_identifier" in text or "certificates.identifier" in text


def _key_id(private: bytes | None) -> bytes | None:
    """The on-chain id of an SM2 key (keccak256 of its public key), or None without one."""
    return key_id(public_key(private)) if private is not None else None


class IssuerService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher_key: bytes,
        *,
        chain_id: int,
        registry_address: str,
        signer_for: Callable[[str], Any],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        claim_ttl: dt.timedelta = dt.timedelta(days=30),
        processes: int | None = None,
        blind_index: BlindIndex | None = None,
        national_key_for: Callable[[str], bytes | None] | None = None,
        national_group: int = NATIONAL_GROUP,
        intake_batching: IntakeBatching | None = None,
    ) -> None:
        self._sessions = sessions
        # bulk jobs stored already in their batches (each row written once); None: the worker cuts all
        self._intake_batching = intake_batching
        self._national_key_for = national_key_for  # the agency's SM2 key: the national co-seal at intake
        self._national_group = national_group
        self.blind_index = blind_index  # fills the certificates' digests at intake (issuer.blind_index)
        self._key = cipher_key
        self._cipher = DataCipher(cipher_key)
        self.chain_id = chain_id
        self.registry_address = registry_address
        self._signer_for = signer_for
        self._trees: dict[int, MerkleTree] = {}
        self._group_seals = GroupSeals(chain_id, registry_address)
        self._clock = clock
        self._claim_ttl = claim_ttl
        self._processes = processes
        self._pool: Executor | None = None
        self._pool_lock = threading.Lock()

    def _intake_pool(self) -> Executor | None:
        """The intake process pool, made on first use (by one thread: API requests race here)."""
        if self._processes == 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = process_pool(self._processes)
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    # ─── agencies ────────────────────────────────────────────────────────────────────────

    def ensure_agency(self, code: str, name: str, region: str) -> None:
        """The agency's row, made if missing: twice at once (a starting service and `ecert issuer
        api-key create`) is one row and no error."""
        try:
            with self._sessions.begin() as session:
                if session.get(Agency, code) is None:
                    session.add(Agency(code=code, name=name, region=region))
        except IntegrityError:
            with self._sessions() as session:
                if session.get(Agency, code) is None:
                    raise  # not the twin's row: something else is wrong

    def _agency(self, session: Session, code: str) -> Agency:
        agency = session.get(Agency, code)
        if agency is None:
            raise NotFound(f"Agency {code} is not served by this issuer", code=ErrorCode.AGENCY_UNKNOWN)
        return agency

    # ─── issuance ────────────────────────────────────────────────────────────────────────

    def submit(
        self,
        agency_code: str,
        type_code: str,
        records: Sequence[Mapping[str, Any]],
        *,
        type_name: str = "电子证照",
        idempotency_key: str | None = None,
    ) -> JobView:
        """Store certificates for `records` (bad ones reported per record) and return the job.

        The same idempotency key with the same request returns the first job, never duplicates;
        with a different request it is a CONFLICT.
        """
        if (
            contradiction := name_contradiction(type_code, type_name)
        ) is not None:  # every record would carry it
            raise CertificateError(
                f"typeName contradicts typeCode: {contradiction}",
                code=ErrorCode.FIELD_INVALID,
                field="typeName",
            )
        request_hash = _hash(
            json.dumps([type_code, type_name, list(records)], sort_keys=True, ensure_ascii=False, default=str)
        )
        with self._sessions() as session:
            agency = self._agency(session, agency_code)
            if idempotency_key and (
                view := self._earlier_job(session, agency_code, idempotency_key, request_hash)
            ):
                return view
            issuer = Issuer(agency.name, agency.code, agency.region)
        for attempt in range(1, JOB_ID_ATTEMPTS + 1):
            job_id = uuid.uuid4().hex
            signer = self._signer_for(agency_code)
            spec = IntakeSpec(
                type_code=type_code, type_name=type_name, issuer=issuer,
                serial_prefix=self._clock().strftime("%Y%m%d") + job_id[:6].upper(), data_key=self._key,
                signing_key=bytes(signer.key), chain_id=self.chain_id, registry=self.registry_address,
                today=self._clock().date(),
                index_key=self.blind_index.key if self.blind_index else None, agency_code=agency_code,
                national_key=(national := self._national_key(agency_code)), national_group=self._national_group,
            )  # fmt: skip
            try:
                return self._store(
                    agency_code,
                    type_code,
                    job_id,
                    idempotency_key,
                    request_hash,
                    len(records),
                    prepare_chunks(spec, records, self._intake_pool()),
                    signer.address,
                    records,
                    national_key_id=_key_id(national),
                )
            except IntegrityError as exc:
                # Serials carry 24 bits of the job id: two jobs of a day may share them (likely
                # among thousands of one-certificate jobs). Nothing was stored: a new job id.
                if not _identifier_taken(exc):
                    raise
                log.warning("job %s: its serials were taken (attempt %d); a new job id", job_id, attempt)
        raise Conflict(
            "Could not give this job identifiers no other certificate has: submit it again",
            code=ErrorCode.CONFLICT,
        )

    def _national_key(self, agency_code: str) -> bytes | None:
        return self._national_key_for(agency_code) if self._national_key_for is not None else None

    def _store(
        self,
        agency_code: str,
        type_code: str,
        job_id: str,
        idempotency_key: str | None,
        request_hash: str,
        total: int,
        chunks: Iterable[Prepared],
        sealed_by: str,
        records: Sequence[Mapping[str, Any]] = (),
        *,
        national_key_id: bytes | None = None,
    ) -> JobView:
        """Store the job and its certificates in one transaction, chunk by chunk as they come;
        `sealed_by` is the key that sealed them (a rotation before anchoring seals them again).
        With a blind index, each chunk's index rows too, from `records` (by position, from 1)."""
        with self._sessions() as session:
            try:
                session.add(
                    Job(id=job_id, agency_code=agency_code, type_code=type_code, idempotency_key=idempotency_key,
                        request_hash=request_hash, total=total, sealed_by=sealed_by)
                )  # fmt: skip
                session.flush()
                batching = self._intake_batching
                batcher = (
                    IntakeBatcher(session, agency_code, type_code, sealed_by, batching.size)
                    if batching is not None and total >= batching.minimum
                    else None
                )
                for prepared, rejected in chunks:
                    if prepared:
                        placed = batcher.place(prepared) if batcher else [(None, None)] * len(prepared)
                        groups = store_seal_groups(
                            session, [p.national_signature for p in prepared], national_key_id
                        )
                        insert_certificates(
                            session,
                            [
                                (p.identifier, agency_code, type_code, job_id, p.position, p.version,
                                 p.previous_identifier, "pending" if batch is None else "sealed", p.sealed_fields,
                                 p.digest, p.seal, "active", group, batch, index,
                                 *self._digests(agency_code, p, records))
                                for p, (batch, index), group in zip(prepared, placed, groups, strict=True)
                            ],
                        )  # fmt: skip
                    session.add_all(
                        JobError(
                            job_id=job_id, position=r.position, code=r.code, field=r.field, message=r.message
                        )
                        for r in rejected
                    )
                if batcher is not None:
                    batcher.close()
                session.commit()
            except Exception:
                session.rollback()
                if idempotency_key and (job := self._find_job(session, agency_code, idempotency_key)):
                    return self._view(session, job)  # a concurrent twin won the race
                raise
            return self._view(session, session.get_one(Job, job_id))

    def _digests(
        self, agency_code: str, prepared: PreparedCertificate, records: Sequence[Mapping[str, Any]]
    ) -> Digests:
        """A certificate's blind-index digests, stored in its row at intake so that it is found as
        soon as its job is stored: made by the intake's workers (a renewal's, here)."""
        if self.blind_index is None or not records:
            return NO_DIGESTS
        return prepared.index or self.blind_index.digests(
            agency_code, *record_values(records[prepared.position - 1], prepared.identifier)
        )

    def _earlier_job(self, session: Session, agency_code: str, key: str, request_hash: str) -> JobView | None:
        """The job an Idempotency-Key already made, if any (IDEMPOTENCY_CONFLICT for another request)."""
        job = self._find_job(session, agency_code, key)
        if job is not None and job.request_hash != request_hash:
            raise Conflict(
                "This Idempotency-Key was used for a different request", code=ErrorCode.IDEMPOTENCY_CONFLICT
            )
        return None if job is None else self._view(session, job)

    def _find_job(self, session: Session, agency_code: str, key: str) -> Job | None:
        return session.scalar(select(Job).where(Job.agency_code == agency_code, Job.idempotency_key == key))

    def job(self, agency_code: str, job_id: str) -> JobView:
        with self._sessions() as session:
            job = session.get(Job, job_id)
            if job is None or job.agency_code != agency_code:
                raise NotFound(f"No job {job_id}", code=ErrorCode.JOB_NOT_FOUND)
            return self._view(session, job)

    def _view(self, session: Session, job: Job) -> JobView:
        counts = dict.fromkeys(JOB_STATES, 0)
        for state, n in session.execute(
            select(Certificate.state, func.count())
            .where(Certificate.job_id == job.id)
            .group_by(Certificate.state)
        ):
            counts[state] = n
        errors = session.scalars(
            select(JobError).where(JobError.job_id == job.id).order_by(JobError.position)
        ).all()
        counts["failed"] = len(errors)
        identifiers = session.scalars(
            select(Certificate.identifier)
            .where(Certificate.job_id == job.id)
            .order_by(Certificate.position)
            .limit(1000)
        ).all()
        refusals = []
        if counts.get("refused"):
            refusals = [
                {"batchRoot": "0x" + root.hex(), "code": refusal, "message": message, "count": n}
                for root, refusal, message, n in session.execute(
                    select(Batch.root, Batch.refusal, Batch.last_error, func.count())
                    .join(Certificate, Certificate.batch_id == Batch.id)
                    .where(Certificate.job_id == job.id, Certificate.state == "refused")
                    .group_by(Batch.id, Batch.root, Batch.refusal, Batch.last_error).order_by(Batch.id)
                )
            ]  # fmt: skip
        return JobView(
            job.id, job.agency_code, job.type_code, job.total, counts,
            [{"position": e.position, "code": e.code, "field": e.field, "message": e.message} for e in errors],
            list(identifiers), refusals,
        )  # fmt: skip

    # ─── certificates ────────────────────────────────────────────────────────────────────

    def certificate(self, session: Session, agency_code: str, identifier: str) -> Certificate:
        cert = session.scalar(select(Certificate).where(Certificate.identifier == identifier))
        if cert is None or cert.agency_code != agency_code:
            raise NotFound(f"No certificate {identifier} of this agency", code=ErrorCode.CERT_NOT_FOUND)
        return cert

    def describe(self, agency_code: str, identifier: str) -> dict[str, Any]:
        with self._sessions() as session:
            cert = self.certificate(session, agency_code, identifier)
            batch = session.get(Batch, cert.batch_id) if cert.batch_id else None
            return {
                "identifier": cert.identifier, "typeCode": cert.type_code, "state": cert.state, "status": cert.status,
                "statusReason": cert.status_reason, "version": cert.version, "previousIdentifier": cert.previous_identifier,
                "supersededBy": cert.superseded_by, "digest": "0x" + cert.digest.hex(),
                "batch": {"root": "0x" + batch.root.hex(), "index": cert.batch_index, "txHash": batch.tx_hash,
                          "block": batch.block_number, "state": batch.state, "refusal": batch.refusal,
                          "refusalMessage": batch.last_error if batch.state == "refused" else None} if batch else None,
            }  # fmt: skip

    def presentation(self, session: Session, cert: Certificate) -> Presentation:
        if cert.batch_id is None or cert.batch_index is None or cert.seal is None:
            raise Conflict(
                f"{cert.identifier} is not sealed into a batch yet: try again shortly",
                code=ErrorCode.CERT_NOT_READY,
            )
        batch = session.get_one(Batch, cert.batch_id)
        return Presentation(
            self.chain_id, self.registry_address, open_fields(self._cipher, cert.sealed_fields, cert.identifier),
            cert.digest, cert.seal, batch.root, cert.batch_index, tuple(self._batch_tree(session, batch).proof(cert.batch_index)),
            anchor_tx=batch.tx_hash,
            national_seal=self._group_seals.of(session, cert),
        )  # fmt: skip

    def _batch_tree(self, session: Session, batch: Batch) -> MerkleTree:
        """The batch's tree, rebuilt from its digests (~30 ms for 10,000) and kept for reuse."""
        tree = self._trees.get(batch.id)
        if tree is None:
            digests = session.scalars(
                select(Certificate.digest)
                .where(Certificate.batch_id == batch.id)
                .order_by(Certificate.batch_index)
            ).all()
            tree = batch_tree(digests)
            if tree.root != batch.root:
                raise EcertError(
                    f"Batch {batch.id} does not rebuild to its root", code=ErrorCode.BATCH_CORRUPT
                )
            if len(self._trees) >= 64:
                self._trees.pop(next(iter(self._trees)))
            self._trees[batch.id] = tree
        return tree

    def package(self, agency_code: str, identifier: str) -> Presentation:
        with self._sessions() as session:
            return self.presentation(session, self.certificate(session, agency_code, identifier))

    def job_packages(self, agency_code: str, job_id: str) -> Iterator[tuple[str, Presentation]]:
        """Every sealed certificate of a job with its holder package, in record order (not those
        the chain refused: their root will never be anchored)."""
        self.job(agency_code, job_id)
        with self._sessions() as session:
            query = (
                select(Certificate)
                .where(Certificate.job_id == job_id, Certificate.state != "refused")
                .order_by(Certificate.position)
            )
            for cert in session.scalars(query.execution_options(yield_per=1000)):
                yield cert.identifier, self.presentation(session, cert)

    def fields(self, agency_code: str, identifier: str) -> dict[str, Any]:
        with self._sessions() as session:
            cert = self.certificate(session, agency_code, identifier)
            leaves = open_fields(self._cipher, cert.sealed_fields, cert.identifier)
            return unflatten((leaf.path, leaf_value(leaf)) for leaf in leaves)

    # ─── renewal and amendment ───────────────────────────────────────────────────────────

    def reissue(
        self,
        agency_code: str,
        identifier: str,
        changes: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> JobView:
        """A new version of a certificate (renewal or amendment): same serial, version + 1,
        `previousIdentifier` set; the old one is marked superseded (and revoked on chain with
        reason 04 注销 once the new one is confirmed)."""
        old_fields = self.fields(agency_code, identifier)
        try:
            old_id = parse_licence_id(identifier)
        except IdentifierError as exc:
            raise CertificateError(exc.message, code=exc.code, field="identifier") from exc
        record: dict[str, Any] = {
            "holder": {k: v for k, v in old_fields["holder"].items() if k in ("name", "code", "codeType")}
        }
        for key in ("name", "number", "validFrom", "validUntil", "ext"):
            if key in old_fields:
                record[key] = old_fields[key]
        record.update(changes)
        request_hash = _hash(
            json.dumps(
                ["reissue", identifier, dict(changes)], sort_keys=True, ensure_ascii=False, default=str
            )
        )
        if idempotency_key:  # a retried renewal returns its first job, before anything else is checked
            with self._sessions() as session:
                if view := self._earlier_job(session, agency_code, idempotency_key, request_hash):
                    return view
        with self._sessions() as session:
            agency = self._agency(session, agency_code)
            cert = self.certificate(session, agency_code, identifier)
            if cert.superseded_by and not idempotency_key:  # with a key: perhaps its first attempt's, below
                raise Conflict(
                    f"{identifier} was already superseded by {cert.superseded_by}",
                    code=ErrorCode.CERT_SUPERSEDED,
                )
            issuer = Issuer(agency.name, agency.code, agency.region)
            type_code = cert.type_code
        signer = self._signer_for(agency_code)
        spec = IntakeSpec(
            type_code=type_code, type_name=str(old_fields.get("name", "电子证照")), issuer=issuer, serial_prefix="",
            data_key=self._key, signing_key=bytes(signer.key), chain_id=self.chain_id,
            registry=self.registry_address, today=self._clock().date(), version=old_id.version + 1,
            previous_identifier=identifier, serial=old_id.serial,
            national_key=(national := self._national_key(agency_code)), national_group=self._national_group,
        )  # fmt: skip
        [(prepared, rejected)] = list(prepare_chunks(spec, [record]))
        if rejected:
            r = rejected[0]
            raise CertificateError(r.message, code=r.code, field=r.field)
        successor = prepared[0].identifier
        deadline = time.monotonic() + RENEWAL_RETRY_WAIT_S
        while not self._claim_succession(agency_code, identifier, successor):
            if idempotency_key:  # a retry racing its first attempt: that attempt's job, once stored
                with self._sessions() as session:  # the successor first: it is committed with its job
                    stored = session.scalar(select(Certificate.id).where(Certificate.identifier == successor))
                    if view := self._earlier_job(session, agency_code, idempotency_key, request_hash):
                        return view
                if stored is None and time.monotonic() < deadline:  # still being stored, or rolled back
                    time.sleep(0.05)
                    continue
            raise Conflict(f"{identifier} was already superseded", code=ErrorCode.CERT_SUPERSEDED)
        try:
            return self._store(
                agency_code,
                type_code,
                uuid.uuid4().hex,
                idempotency_key,
                request_hash,
                1,
                [(prepared, [])],
                signer.address,
                [record],
                national_key_id=_key_id(national),
            )
        except BaseException:
            with self._sessions.begin() as session:  # nothing stored: the old version is not superseded
                session.execute(update(Certificate).where(
                    Certificate.identifier == identifier, Certificate.superseded_by == successor
                ).values(superseded_by=None))  # fmt: skip
            raise

    def _claim_succession(self, agency_code: str, identifier: str, successor: str) -> bool:
        """Mark `identifier` superseded by `successor` unless it already is: one conditional
        UPDATE, so two renewals of one certificate at once make one version + 1, not a clash."""
        with self._sessions.begin() as session:
            done = session.execute(
                update(Certificate)
                .where(Certificate.agency_code == agency_code, Certificate.identifier == identifier,
                       Certificate.superseded_by.is_(None))
                .values(superseded_by=successor)
            )  # fmt: skip
            return getattr(done, "rowcount", 0) == 1

    # ─── claims ──────────────────────────────────────────────────────────────────────────

    def create_claim_code(self, agency_code: str, identifier: str) -> tuple[str, dt.datetime]:
        """A new one-time code for the holder's wallet (replaces any earlier one)."""
        code = "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(12))
        expires = self._clock() + self._claim_ttl
        with self._sessions.begin() as session:
            cert = self.certificate(session, agency_code, identifier)
            cert.claim_code_hash, cert.claim_expires_at, cert.claimed_at = _hash(code), expires, None
        return "-".join(code[i : i + 4] for i in range(0, 12, 4)), expires

    def redeem_claim(self, code: str, holder_code: str | None = None) -> Presentation:
        """The holder package for a claim code; the code works once and expires.

        With `holder_code` (the wallet sends its signed-in holder's ID number) a certificate of
        someone else is refused and the code is *not* used up: a code typed into the wrong wallet
        still works in the right one.
        """
        normalised = code.replace("-", "").replace(" ", "").upper()
        with self._sessions.begin() as session:
            cert = session.scalar(select(Certificate).where(Certificate.claim_code_hash == _hash(normalised)))
            if cert is None or cert.claimed_at is not None:
                raise NotFound("Unknown or already used claim code", code=ErrorCode.CLAIM_INVALID)
            if _aware(cert.claim_expires_at) < self._clock():
                raise NotFound(
                    "This claim code has expired: ask the agency for a new one", code=ErrorCode.CLAIM_EXPIRED
                )
            presentation = self.presentation(session, cert)
            if (
                holder_code is not None
                and (presentation.fields().get("holder") or {}).get("code") != holder_code.upper()
            ):
                raise NotAuthorised(
                    "This certificate belongs to someone else: the code was not used",
                    code=ErrorCode.CLAIM_NOT_YOURS,
                )
            cert.claimed_at = self._clock()
            return presentation

    # ─── ownership (for the API: "not yours" is 403, "no such row" is 404) ──────────────────

    def owner_of(self, identifier: str) -> str | None:
        """The agency code of the certificate `identifier`, or None if there is none."""
        with self._sessions() as session:
            return session.scalar(select(Certificate.agency_code).where(Certificate.identifier == identifier))

    def job_owner(self, job_id: str) -> str | None:
        """The agency code of job `job_id`, or None if there is none."""
        with self._sessions() as session:
            return session.scalar(select(Job.agency_code).where(Job.id == job_id))


def _aware(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
