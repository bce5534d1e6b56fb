"""The issuer's tables. A certificate row is written before anything goes to the chain (the
outbox); its personal fields are only ever stored encrypted (`sealed_fields`).

Certificate states move forward: pending → sealed (in a batch) → anchored → confirmed, or
refused when the chain refuses their batch for good. A reorg that takes an anchor away sends them
back to sealed, to be anchored again. A certificate row is written once when it comes in a
bulk job (stored already in its batch: `issuer.intake_batches`), twice when it comes a few at a
time (pending at intake, then sealed when the worker cuts its batch); from then on its state is
its batch's (`Certificate.state`, a SQL expression), so anchoring 10,000 certificates updates one
batch row, not 10,000 certificate rows (each update of a row leaves a dead copy of it, ~2 KB).
Batch states: sealed → sending (signed transaction stored) → mined → confirmed, or refused (the
contract refused the anchor for a reason another attempt would meet again: `refusal` names it).
Every move is recorded in `batch_events`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from registry.staff_tables import StaffAttemptColumns, StaffMemberColumns, StaffSessionColumns


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Agency(Base):
    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6))


class ApiKey(Base):
    """A staff key bound to one agency; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One submission (a certificate or a batch of records), idempotent per agency and key."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("agency_code", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    type_code: Mapped[str] = mapped_column(String(21))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the key that sealed its certificates at intake (NULL: from before migration 0012, when each
    # certificate named its own, and they differed); a batch's `sealed_by` overrides it
    sealed_by: Mapped[str | None] = mapped_column(String(42))


class JobError(Base):
    """A record of a job that could not become a certificate, and why."""

    __tablename__ = "job_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    type_code: Mapped[str] = mapped_column(String(21))
    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="sealed", index=True)
    signer: Mapped[str | None] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(Integer)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    block_hash: Mapped[str | None] = mapped_column(String(66))  # of `block_number`: a reorg changes it
    retry_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True)
    )  # back-off after a failed transaction
    refusal: Mapped[str | None] = mapped_column(
        String(64)
    )  # the contract error that refused it (state refused)
    # the key that sealed every member: set when they were sealed in the batch (at intake) or
    # sealed again by the anchoring key; NULL: each member as its job was sealed
    sealed_by: Mapped[str | None] = mapped_column(String(42))


class BatchEvent(Base):
    """One state change of a batch and why (reverted, refused, taken away by a reorg…)."""

    __tablename__ = "batch_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    block_number: Mapped[int | None] = mapped_column(Integer)  # the chain head when it happened
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NationalSealGroup(Base):
    """One national co-seal (SM2) of a group of certificates, stored once for the group: its
    members are the certificates naming it, in id order (the order they were sealed in); each
    one's proof is rebuilt from their digests when its package is made (`IssuerService`), so a
    certificate row keeps 4 bytes of it, not a 64-byte signature and a 192-byte proof."""

    __tablename__ = "national_seal_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(32))  # the SM2 key (keccak256 of it)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))  # r ‖ s over the group's SM3 root


class Certificate(Base):
    """A certificate: written once at intake (issue 14: ~1 KB with its indexes). On PostgreSQL
    the identifier's uniqueness is kept by a hash exclusion constraint (~60 bytes an entry, where a
    B-tree of these 83-character identifiers took ~120); indexes of mostly NULL columns are
    partial."""

    __tablename__ = "certificates"
    __table_args__ = (  # the anchoring worker's queue: only pending rows, so it stays small
        Index(
            "ix_certificates_pending", "agency_code", "type_code", "id",
            sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'"),
        ),
        Index("uq_certificates_identifier", "identifier", unique=True).ddl_if(dialect="sqlite"),
        ExcludeConstraint(("identifier", "="), using="hash", name="ex_certificates_identifier").ddl_if(
            dialect="postgresql"
        ),
        Index("ix_certificates_previous_identifier", "previous_identifier",
              sqlite_where=text("previous_identifier IS NOT NULL"),
              postgresql_where=text("previous_identifier IS NOT NULL")),
        Index("uq_certificates_claim_code_hash", "claim_code_hash", unique=True,
              sqlite_where=text("claim_code_hash IS NOT NULL"), postgresql_where=text("claim_code_hash IS NOT NULL")),
        Index("ix_certificates_number_digest", "number_digest"),
        Index("ix_certificates_name_digest", "name_digest"),
        Index("ix_certificates_code_digest", "code_digest"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(120))
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), index=True)
    type_code: Mapped[str] = mapped_column(String(21))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_identifier: Mapped[str | None] = mapped_column(String(120))
    # "pending" until its batch is cut, then "sealed" for good: see `state`
    intake_state: Mapped[str] = mapped_column("state", String(16), default="pending")
    # AES-GCM of the salted field leaves (personal data), associated data = identifier.
    sealed_fields: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    seal: Mapped[bytes | None] = mapped_column(LargeBinary(65))  # by its batch's or its job's `sealed_by`
    national_group_id: Mapped[int | None] = mapped_column(ForeignKey("national_seal_groups.id"), index=True)
    # rows co-sealed before migration 0012 keep their share of the co-seal: signature ‖ proof, key
    national_seal: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_key_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    batch_index: Mapped[int | None] = mapped_column(Integer)
    # Its state: its own while pending, then its batch's (a batch `sending` still counts as
    # sealed, `mined` as anchored): a lookup of the batch by its key per row.
    state: Mapped[str] = column_property(
        case(
            (batch_id.is_(None), intake_state),
            else_=select(
                case(
                    (Batch.state == "sending", "sealed"),
                    (Batch.state == "mined", "anchored"),
                    else_=Batch.state,
                )
            )
            .where(Batch.id == batch_id)
            .correlate_except(Batch)
            .scalar_subquery(),
        )
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[int | None] = mapped_column(Integer)
    status_note: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[str | None] = mapped_column(String(120))
    claim_code_hash: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the blind index (`issuer.blind_index`): keyed digests of its number, holder's name and code;
    # NULL name_digest: not indexed yet (a holder always has a name)
    number_digest: Mapped[int | None] = mapped_column(BigInteger)
    name_digest: Mapped[int | None] = mapped_column(BigInteger)
    code_digest: Mapped[int | None] = mapped_column(BigInteger)


class StaffMember(StaffMemberColumns, Base):
    """A person of an agency who signs in to the console (`/console`) with a password and a TOTP
    code (`ecert issuer staff add`), in one role (`issuer.staff.Role`): clerk, approver, auditor
    or admin (the credential columns: `registry.staff_tables`)."""

    __tablename__ = "agency_staff"
    __table_args__ = (
        CheckConstraint("role IN ('clerk', 'approver', 'auditor', 'admin')", name="ck_agency_staff_role"),
    )

    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class StaffSession(StaffSessionColumns, Base):
    """A signed-in staff member's console session."""

    __tablename__ = "agency_staff_sessions"

    staff_id: Mapped[int] = mapped_column(ForeignKey("agency_staff.id"), index=True)


class StaffAttempt(StaffAttemptColumns, Base):
    """A counted console sign-in attempt (`registry.staff_auth`)."""

    __tablename__ = "agency_staff_attempts"
    __table_args__ = (Index("ix_agency_staff_attempts_key_at", "key", "at"),)


class AuditLogEntry(Base):
    """One staff action in an agency's hash-chained audit log (`issuer.audit`): `seq` counts the
    agency's entries from 1, `hash` = SHA-256(`prev_hash` ‖ RFC 8785 JSON of the entry).
    `details` is canonical JSON and names certificates by identifier, never a holder."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("agency", "seq", name="uq_audit_log_agency_seq"),
        Index("ix_audit_log_agency_at", "agency", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency: Mapped[str] = mapped_column(String(18))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest entry of an agency's audit log: appends update it in their own transaction
    (the row lock that keeps concurrent appends from forking the chain)."""

    __tablename__ = "audit_heads"

    agency: Mapped[str] = mapped_column(String(18), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    """An audit log head anchored on chain (`anchorAuditHead`): the hash of entry `seq`."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency: Mapped[str] = mapped_column(String(18), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(Integer)
    anchored_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StatusProposal(Base):
    """A status change — suspend, reinstate or revoke — of one or many certificates, proposed by a
    clerk and taking effect only when a different approver approves it (issue 12, point 5;
    `issuer.proposals`). States: proposed → approved (or rejected) → sent (every chunk broadcast)
    → confirmed (every chunk `confirmations` deep, the certificates' status changed), or failed
    (the chain refused a chunk for good, or nothing was left to change)."""

    __tablename__ = "status_proposals"
    __table_args__ = (
        CheckConstraint("action IN ('suspend', 'reinstate', 'revoke')", name="ck_status_proposals_action"),
        CheckConstraint(
            "state IN ('proposed', 'approved', 'rejected', 'sent', 'confirmed', 'failed')",
            name="ck_status_proposals_state",
        ),
        Index("ix_status_proposals_agency_state", "agency_code", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[int] = mapped_column(Integer)  # the GB status code (`issuer.status.REASONS`)
    note: Mapped[str | None] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)  # certificates proposed (rows of status_proposal_items)
    proposer_id: Mapped[int] = mapped_column(ForeignKey("agency_staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="proposed")
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("agency_staff.id"))  # or the rejecter
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    planned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # chunks made
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # no longer changeable when planned
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # confirmed or failed
    last_error: Mapped[str | None] = mapped_column(Text)


class StatusProposalItem(Base):
    """A certificate of a proposal: two integers a row, inserted in bulk (up to 100,000 a proposal)."""

    __tablename__ = "status_proposal_items"
    __table_args__ = (Index("ix_status_proposal_items_certificate", "certificate_id"),)

    proposal_id: Mapped[int] = mapped_column(ForeignKey("status_proposals.id"), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)


class StatusProposalChunk(Base):
    """One transaction of an approved proposal (the outbox, as `batches` is anchoring's): the
    certificates of one 256-index word of one batch (`mask`, bit i = index word*256+i), sent by
    `revokeCertificates` or `setStatusBulk`. States: ready → sending (signed transaction stored
    before broadcast) → mined → confirmed, or failed (refused by the chain)."""

    __tablename__ = "status_proposal_chunks"
    __table_args__ = (
        UniqueConstraint("proposal_id", "batch_id", "word", name="uq_status_proposal_chunks_word"),
        Index("ix_status_proposal_chunks_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("status_proposals.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    word: Mapped[int] = mapped_column(Integer)
    mask: Mapped[bytes] = mapped_column(LargeBinary(32))  # big-endian uint256
    count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="ready")
    signer: Mapped[str | None] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(Integer)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(Integer)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    refusal: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ProposalErrorReport(Base):
    """The per-row errors of a refused proposal, kept a day for the clerk's CSV download."""

    __tablename__ = "status_proposal_error_reports"

    token: Mapped[str] = mapped_column(String(43), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("agency_staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib of the CSV


class CorrectionRequest(Base):
    """A holder's request to correct a field of a certificate or to renew it (issue 12, point 9;
    `issuer.corrections`), in its agency's queue until `due_at`. The holder's `message` is stored
    AES-GCM encrypted (associated data: the request id) like certificate fields; of the holder's
    token only the SHA-256. `open_key` (certificate, kind, field while open, else NULL) makes a
    second open request about the same thing impossible, races included. States: open → fixed
    (renewed: `new_identifier`) or refused (`reason`)."""

    __tablename__ = "correction_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('field', 'renewal')", name="ck_correction_requests_kind"),
        CheckConstraint("status IN ('open', 'fixed', 'refused')", name="ck_correction_requests_status"),
        UniqueConstraint("identifier", "idempotency_key", name="uq_correction_requests_idempotency"),
        UniqueConstraint("open_key", name="uq_correction_requests_open_key"),
        Index("ix_correction_requests_queue", "agency_code", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # cr_ + 22 url-safe characters
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(120))
    type_code: Mapped[str] = mapped_column(String(21))
    kind: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM, associated data = "correction:<id>"
    token_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    open_key: Mapped[str | None] = mapped_column(String(340))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open")
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("agency_staff.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # the refusal's reason, or the fix's note
    new_identifier: Mapped[str | None] = mapped_column(String(120))
