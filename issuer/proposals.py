"""Maker-checker status changes (issue 12, point 5): a clerk proposes to suspend, reinstate or
revoke one certificate, a selection, or a CSV of up to 100,000 identifiers; the change takes
effect only when an approver — a different person — approves it; an approved change goes to the
chain through an outbox, and the database status of a certificate changes only when its
transaction is `confirmations` deep.

`StatusProposals`:

* `propose` checks every identifier — this agency's certificate, anchored, a legal transition
  (`issuer.status.LEGAL_FROM`: suspend an active one, reinstate a suspended one, revoke either),
  not in another open proposal — and returns the errors row by row (`RowError`, numbered as the
  input's lines: `parse_identifiers`); with errors the proposal is refused unless `skip_invalid`.
  Items are stored as two integers a row, inserted in bulk.
* `approve` is one conditional UPDATE (`state = 'proposed' AND proposer_id != approver`): of any
  number of concurrent approvals exactly one wins; `reject` likewise, with a reason.
* Each is written to the agency's audit trail (`issuer.audit`): propose, approve, reject, and
  one status_change per confirmed transaction.

`ProposalSender` (run after each pass of the anchoring worker, `issuer.runtime`) is anchoring's
outbox for status changes (`issuer.anchoring`, the same steps and the same guarantees):

1. plan: an approved proposal becomes chunks, one per 256-index word of a batch — one
   `revokeCertificates` (revoke) or `setStatusBulk` (suspend, reinstate) transaction each;
   certificates whose status changed since the proposal are skipped (counted);
2. send: a chunk is simulated (a refusal costs no gas), signed, and stored with its nonce and
   hash *before* it is broadcast; after a crash the same bytes are broadcast again, which the
   chain takes at most once (one nonce, one transaction); a chunk is signed anew only when its
   nonce was used by another transaction and its own hash has no receipt, i.e. it never landed;
3. track: sending → mined (receipt) → confirmed (`confirmations` deep: the certificates' status
   changes then); a mined chunk whose receipt a reorg took away goes back to sending (the same
   bytes again); a revert is decoded: a refusal another attempt would meet again (`REFUSED`)
   fails the chunk, anything else is signed again after a back-off.

A chain outage loses nothing: every step is a database transaction and the worker retries.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import secrets
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from sqlalchemy import CursorResult, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, TxReceipt

from issuer.audit import AuditAction, AuditLog
from issuer.models import (
    Agency,
    Batch,
    Certificate,
    ProposalErrorReport,
    StaffMember,
    StatusProposal,
    StatusProposalChunk,
    StatusProposalItem,
)
from issuer.staff import Role, StaffView
from issuer.status import LEGAL_FROM, check_reason, status_call, word_masks
from registry.chain.client import checksum_address
from registry.contracts.certificate_registry import STATUS_GAS, CertificateRegistry, Status
from registry.error_codes import ErrorCode
from registry.errors import ChainError, ChainUnavailable, Conflict, ContractRevert, EcertError, NotFound

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

ACTIONS: dict[str, Status] = {
    "suspend": Status.SUSPENDED,
    "reinstate": Status.ACTIVE,
    "revoke": Status.REVOKED,
}
MAX_ITEMS = 100_000
MAX_NOTE = 500
MAX_IDENTIFIER = 120  # `certificates.identifier`
OPEN_STATES = ("proposed", "approved", "sent")  # a certificate in one of these is not proposed again
LOOKUP_CHUNK = 500  # identifiers per IN (…) query
HEADER_NAMES = frozenset({"identifier", "证照标识"})
REPORT_TTL = dt.timedelta(days=1)

REFUSED = frozenset({
    "CertificateRegistryUnknownBatch",
    "CertificateRegistryIndexOutOfRange",
    "CertificateRegistryAlreadyRevoked",  # suspend or reinstate of a revoked certificate
    "CertificateRegistryNotBatchManager",
    "TrustRegistryKeyNotActive",
    "TrustRegistryUnknownKey",
    "TrustRegistryUnknownAgency",
    "TrustRegistryAgencySuspended",  # until an authority reinstates it: a person decides
})  # fmt: skip
"""Reverts of a status change that the same transaction would meet again: the chunk fails."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ─── input: identifiers, one per line or a column named identifier ───────────────────────


@dataclass(frozen=True)
class RowError:
    """One refused row: `row` is the line of the input (1-based; a header line counts, as a
    spreadsheet numbers its rows); 0 for a problem of the whole input."""

    row: int
    identifier: str
    code: ErrorCode
    message: str


def decode_upload(data: bytes) -> str:
    """An uploaded CSV's text: UTF-8 (with or without a BOM), else GB 18030 (Excel in Chinese)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise EcertError(
            "The file is neither UTF-8 nor GB 18030 text", code=ErrorCode.UPLOAD_ENCODING, field="file"
        ) from None


def parse_identifiers(text: str) -> tuple[list[tuple[int, str]], list[RowError]]:
    """`(line, identifier)` of each row of `text` — one identifier per line, or CSV with a
    column named `identifier` (or 证照标识) in its first line — and the rows refused (more than
    one column without such a header, an identifier too long or with spaces). Blank lines are
    skipped; lines are numbered from 1, a header line included."""
    rows: list[tuple[int, str]] = []
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    column: int | None = None
    first = True
    try:
        for record in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue
            if first:
                first = False
                named = [i for i, cell in enumerate(cells) if cell.lower() in HEADER_NAMES]
                if named:
                    column = named[0]
                    continue
            if column is None:
                filled = [cell for cell in cells if cell]
                if len(filled) != 1:
                    errors.append(RowError(line, ",".join(cells)[:MAX_IDENTIFIER], ErrorCode.CSV_MALFORMED,
                                           "one identifier a line, or a column named identifier"))  # fmt: skip
                    continue
                value = filled[0]
            else:
                value = cells[column] if column < len(cells) else ""
                if not value:
                    errors.append(RowError(line, "", ErrorCode.FIELD_MISSING, "no identifier in this row"))
                    continue
            if len(value) > MAX_IDENTIFIER or any(ch.isspace() or ord(ch) < 32 for ch in value):
                errors.append(RowError(line, value[:MAX_IDENTIFIER], ErrorCode.IDENTIFIER_INVALID,
                                       "not a certificate identifier"))  # fmt: skip
                continue
            rows.append((line, value))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "", ErrorCode.CSV_MALFORMED, f"unreadable CSV: {exc}"))
    return rows, errors


def errors_csv(errors: Iterable[RowError]) -> str:
    """The per-row errors as CSV (row, identifier, code, message), for the clerk to download."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "identifier", "code", "message"])
    for error in errors:
        writer.writerow([error.row, _csv_safe(error.identifier), error.code.value, error.message])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# ─── views ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Proposed:
    """What `propose` answers: the new proposal's id (None: refused, see `errors`), how many
    certificates it holds, and the rows refused."""

    proposal_id: int | None
    count: int
    errors: list[RowError]


@dataclass(frozen=True)
class ChunkView:
    id: int
    batch_root: str
    word: int
    count: int
    state: str
    tx_hash: str | None
    block_number: int | None
    attempts: int
    refusal: str | None
    last_error: str | None


@dataclass(frozen=True)
class ProposalView:
    id: int
    agency_code: str
    action: str
    reason: int
    note: str | None
    count: int
    state: str
    proposer_id: int
    proposer: str  # display name (username)
    approver_id: int | None
    approver: str | None
    created_at: dt.datetime
    decided_at: dt.datetime | None
    reject_reason: str | None
    skipped: int
    finished_at: dt.datetime | None
    last_error: str | None
    chunks: list[ChunkView] = field(default_factory=list)

    @property
    def tx_hashes(self) -> list[str]:
        return [c.tx_hash for c in self.chunks if c.tx_hash]


@dataclass(frozen=True)
class CertificateChange:
    """One proposal that named a certificate, and the transaction that carried its change."""

    proposal: ProposalView
    chunk: ChunkView | None  # None: not planned yet, or skipped


@dataclass(frozen=True)
class CertificateHistory:
    identifier: str
    status: str
    status_reason: int | None
    changes: list[CertificateChange]


# ─── propose, approve, reject ────────────────────────────────────────────────────────────


class StatusProposals:
    """Proposals of status changes and their decisions (the console's side)."""

    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, clock: Clock = _now) -> None:
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    def propose(
        self,
        actor: StaffView,
        action: str,
        reason: int,
        rows: Sequence[tuple[int, str]],
        note: str | None = None,
        *,
        skip_invalid: bool = False,
        refused_rows: Sequence[RowError] = (),
    ) -> Proposed:
        """Propose `action` with GB `reason` for the identifiers of `rows` (`(line, identifier)`);
        `refused_rows`: rows of the same input refused already (`parse_identifiers`), which refuse
        the proposal as the rows found wrong here do unless `skip_invalid`."""
        _require(actor, Role.CLERK)
        target = ACTIONS.get(action)
        if target is None:
            raise EcertError(f"Unknown change {action[:20]!r}: suspend, reinstate or revoke",
                             code=ErrorCode.PROPOSAL_ACTION_INVALID, field="action")  # fmt: skip
        check_reason(target, reason)
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise EcertError(f"The note is longer than {MAX_NOTE} characters", code=ErrorCode.FIELD_INVALID,
                             field="note")  # fmt: skip
        first_line: dict[str, int] = {}
        for line, identifier in rows:  # a repeated identifier is proposed once
            first_line.setdefault(identifier, line)
        if not first_line and refused_rows:  # every row refused already: say which
            return Proposed(None, 0, sorted(refused_rows, key=lambda e: e.row))
        if not first_line:
            raise EcertError(
                "No certificate identifier given", code=ErrorCode.PROPOSAL_EMPTY, field="identifiers"
            )
        if len(first_line) > MAX_ITEMS:
            raise EcertError(f"{len(first_line)} certificates: at most {MAX_ITEMS:,} in one proposal",
                             code=ErrorCode.PROPOSAL_TOO_LARGE, field="identifiers")  # fmt: skip
        errors: list[RowError] = list(refused_rows)
        ids: list[int] = []
        with self._sessions() as session:
            found = self._lookup(session, list(first_line))
            legal = LEGAL_FROM[target]
            candidates: dict[int, str] = {}
            for identifier, line in first_line.items():
                row = found.get(identifier)
                if row is None or row.agency_code != actor.agency_code:
                    errors.append(
                        RowError(line, identifier, ErrorCode.CERT_NOT_FOUND, "no certificate of this agency")
                    )
                elif row.batch_index is None or row.batch_state not in ("mined", "confirmed"):
                    errors.append(RowError(line, identifier, ErrorCode.CERT_NOT_ANCHORED,
                                           "not anchored yet: propose it when its job is confirmed"))  # fmt: skip
                elif row.status not in legal:
                    code = (
                        ErrorCode.CERT_REVOKED
                        if row.status == "revoked"
                        else ErrorCode.STATUS_TRANSITION_INVALID
                    )
                    errors.append(
                        RowError(
                            line,
                            identifier,
                            code,
                            f"its status is {row.status}: it cannot be {_past(action)}",
                        )
                    )
                else:
                    candidates[row.id] = identifier
            for certificate_id in self._in_open_proposals(session, list(candidates)):
                identifier = candidates.pop(certificate_id)
                errors.append(RowError(first_line[identifier], identifier, ErrorCode.CERT_CHANGE_PENDING,
                                       "another change of it awaits approval or the chain"))  # fmt: skip
            ids = sorted(candidates)
        errors.sort(key=lambda e: e.row)
        if (errors and not skip_invalid) or not ids:
            return Proposed(None, 0, errors)
        try:
            proposal_id = self._store(
                actor, action, reason, note, candidates, first_line, errors, skip_invalid
            )
        except _Raced:
            return Proposed(None, 0, errors)
        ids = sorted(candidates)
        details: dict[str, Any] = {"proposal": proposal_id, "action": action, "reason": f"{reason:02d}", "count": len(ids),
                                   "refusedRows": len(errors)}  # fmt: skip
        if len(ids) <= 10:
            details["identifiers"] = sorted(candidates.values())
        self._append(actor, AuditAction.PROPOSE, proposal_id, details)
        return Proposed(proposal_id, len(ids), errors)

    def _store(self, actor: StaffView, action: str, reason: int, note: str | None, candidates: dict[int, str],
               first_line: dict[str, int], errors: list[RowError], skip_invalid: bool) -> int:  # fmt: skip
        """Insert the proposal and its items; `_Raced` (nothing stored) if another clerk's proposal
        took some of them meanwhile and `skip_invalid` is off (or none is left)."""
        with self._sessions.begin() as session:
            # One proposal of the agency at a time from here (a row lock on PostgreSQL, the write
            # lock on SQLite), and the open proposals read again: of two clerks proposing the same
            # certificate at once, the second is refused — a certificate is in one open proposal.
            session.execute(
                update(Agency).where(Agency.code == actor.agency_code).values(code=Agency.code)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            raced = self._in_open_proposals(session, sorted(candidates))
            for certificate_id in raced:
                identifier = candidates.pop(certificate_id)
                errors.append(RowError(first_line[identifier], identifier, ErrorCode.CERT_CHANGE_PENDING,
                                       "another change of it awaits approval or the chain"))  # fmt: skip
            errors.sort(key=lambda e: e.row)
            if raced and (not skip_invalid or not candidates):
                raise _Raced
            ids = sorted(candidates)
            proposal = StatusProposal(
                agency_code=actor.agency_code, action=action, reason=reason, note=note, count=len(ids),
                proposer_id=actor.id, created_at=self._clock(), state="proposed", skipped=0,
            )  # fmt: skip
            session.add(proposal)
            session.flush()
            for start in range(0, len(ids), 10_000):
                session.execute(
                    insert(StatusProposalItem),
                    [{"proposal_id": proposal.id, "certificate_id": i} for i in ids[start : start + 10_000]],
                )
            return proposal.id

    def approve(self, actor: StaffView, proposal_id: int) -> ProposalView:
        """Approve a proposal of the approver's agency made by someone else; once, whoever races."""
        _require(actor, Role.APPROVER)
        self._decide(actor, proposal_id, "approved", None)
        view = self.get(actor.agency_code, proposal_id)
        self._append(actor, AuditAction.APPROVE, proposal_id, {"proposal": proposal_id, "action": view.action,
                     "reason": f"{view.reason:02d}", "count": view.count, "proposer": view.proposer_id})  # fmt: skip
        return view

    def reject(self, actor: StaffView, proposal_id: int, reason: str) -> ProposalView:
        """Reject a proposal, saying why (shown to the clerk)."""
        _require(actor, Role.APPROVER)
        reason = reason.strip()
        if not reason:
            raise EcertError("Say why the proposal is rejected", code=ErrorCode.FIELD_MISSING, field="reason")
        if len(reason) > MAX_NOTE:
            raise EcertError(f"The reason is longer than {MAX_NOTE} characters", code=ErrorCode.FIELD_INVALID,
                             field="reason")  # fmt: skip
        self._decide(actor, proposal_id, "rejected", reason)
        view = self.get(actor.agency_code, proposal_id)
        self._append(actor, AuditAction.REJECT, proposal_id, {"proposal": proposal_id, "action": view.action,
                     "count": view.count, "proposer": view.proposer_id})  # fmt: skip
        return view

    def _decide(self, actor: StaffView, proposal_id: int, state: str, reject_reason: str | None) -> None:
        with self._sessions.begin() as session:  # its first statement writes: SQLite takes its lock
            won = cast("CursorResult[Any]", session.execute(
                update(StatusProposal)
                .where(StatusProposal.id == proposal_id, StatusProposal.agency_code == actor.agency_code,
                       StatusProposal.state == "proposed", StatusProposal.proposer_id != actor.id)
                .values(state=state, approver_id=actor.id, decided_at=self._clock(), reject_reason=reject_reason)
                .execution_options(synchronize_session=False)
            )).rowcount  # fmt: skip
            if won == 1:
                return
            row = session.get(StatusProposal, proposal_id)
            if row is None or row.agency_code != actor.agency_code:
                raise NotFound(f"No proposal {proposal_id} of this agency", code=ErrorCode.PROPOSAL_NOT_FOUND)
            if row.proposer_id == actor.id:
                raise EcertError("A proposal is decided by someone other than its proposer",
                                 code=ErrorCode.PROPOSAL_OWN)  # fmt: skip
            raise Conflict(
                f"Proposal {proposal_id} is {row.state} already", code=ErrorCode.PROPOSAL_NOT_PENDING
            )

    def _append(
        self, actor: StaffView, action: AuditAction, proposal_id: int, details: dict[str, Any]
    ) -> None:
        subject = f"proposal:{proposal_id}"
        try:
            self._audit.append(actor.agency_code, actor.username, action, subject, details)
        except EcertError:  # an identifier that looks like an ID number: the entry without them
            details.pop("identifiers", None)
            self._audit.append(actor.agency_code, actor.username, action, subject, details)

    # ─── reads ───────────────────────────────────────────────────────────────────────────

    @staticmethod
    def _lookup(session: Session, identifiers: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(identifiers), LOOKUP_CHUNK):
            part = identifiers[start : start + LOOKUP_CHUNK]
            for row in session.execute(
                select(Certificate.id, Certificate.identifier, Certificate.agency_code, Certificate.status,
                       Certificate.batch_index, Batch.state.label("batch_state"))
                .outerjoin(Batch, Batch.id == Certificate.batch_id)
                .where(Certificate.identifier.in_(part))
            ):  # fmt: skip
                found[row.identifier] = row
        return found

    @staticmethod
    def _in_open_proposals(session: Session, certificate_ids: list[int]) -> set[int]:
        busy: set[int] = set()
        for start in range(0, len(certificate_ids), LOOKUP_CHUNK):
            part = certificate_ids[start : start + LOOKUP_CHUNK]
            busy.update(session.scalars(
                select(StatusProposalItem.certificate_id)
                .join(StatusProposal, StatusProposal.id == StatusProposalItem.proposal_id)
                .where(StatusProposalItem.certificate_id.in_(part), StatusProposal.state.in_(OPEN_STATES))
            ))  # fmt: skip
        return busy

    def recent(
        self, agency_code: str, *, states: Sequence[str] | None = None, limit: int = 200
    ) -> list[ProposalView]:
        """The agency's proposals, newest first (their chunks left out)."""
        with self._sessions() as session:
            query = _view_query().where(StatusProposal.agency_code == agency_code)
            if states:
                query = query.where(StatusProposal.state.in_(list(states)))
            rows = session.execute(query.order_by(StatusProposal.id.desc()).limit(limit)).all()
            return [_proposal_view(row) for row in rows]

    def get(self, agency_code: str, proposal_id: int) -> ProposalView:
        """One proposal of the agency with its chunks (transactions)."""
        with self._sessions() as session:
            row = session.execute(
                _view_query().where(
                    StatusProposal.id == proposal_id, StatusProposal.agency_code == agency_code
                )
            ).first()
            if row is None:
                raise NotFound(f"No proposal {proposal_id} of this agency", code=ErrorCode.PROPOSAL_NOT_FOUND)
            chunks = [_chunk_view(c, root) for c, root in session.execute(
                select(StatusProposalChunk, Batch.root).join(Batch, Batch.id == StatusProposalChunk.batch_id)
                .where(StatusProposalChunk.proposal_id == proposal_id).order_by(StatusProposalChunk.id)
            )]  # fmt: skip
            return _proposal_view(row, chunks)

    def identifiers(self, agency_code: str, proposal_id: int, limit: int = 100) -> list[str]:
        """The first `limit` identifiers of a proposal (by certificate)."""
        with self._sessions() as session:
            return list(session.scalars(
                select(Certificate.identifier)
                .join(StatusProposalItem, StatusProposalItem.certificate_id == Certificate.id)
                .join(StatusProposal, StatusProposal.id == StatusProposalItem.proposal_id)
                .where(StatusProposalItem.proposal_id == proposal_id, StatusProposal.agency_code == agency_code)
                .order_by(Certificate.id).limit(limit)
            ))  # fmt: skip

    def certificate_history(self, agency_code: str, identifier: str) -> CertificateHistory:
        """A certificate's status and every proposal that named it, each with its transaction."""
        with self._sessions() as session:
            cert = session.scalar(select(Certificate).where(Certificate.identifier == identifier))
            if cert is None or cert.agency_code != agency_code:
                raise NotFound(f"No certificate {identifier} of this agency", code=ErrorCode.CERT_NOT_FOUND)
            rows = session.execute(
                _view_query()
                .join(StatusProposalItem, StatusProposalItem.proposal_id == StatusProposal.id)
                .where(StatusProposalItem.certificate_id == cert.id)
                .order_by(StatusProposal.id.desc())
            ).all()
            changes = []
            for row in rows:
                chunk_view = None
                if cert.batch_id is not None and cert.batch_index is not None:
                    found = session.execute(
                        select(StatusProposalChunk, Batch.root).join(Batch, Batch.id == StatusProposalChunk.batch_id)
                        .where(StatusProposalChunk.proposal_id == row[0].id,
                               StatusProposalChunk.batch_id == cert.batch_id,
                               StatusProposalChunk.word == cert.batch_index >> 8)
                    ).first()  # fmt: skip
                    if (
                        found is not None
                        and int.from_bytes(found[0].mask, "big") >> (cert.batch_index & 0xFF) & 1
                    ):
                        chunk_view = _chunk_view(found[0], found[1])
                changes.append(CertificateChange(_proposal_view(row), chunk_view))
            return CertificateHistory(cert.identifier, cert.status, cert.status_reason, changes)

    # ─── per-row error reports (the console's CSV download) ─────────────────────────────

    def keep_report(self, staff_id: int, errors: Sequence[RowError]) -> str:
        """Store the errors' CSV for a day; the token its download URL carries."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        body = zlib.compress(errors_csv(errors).encode("utf-8"))
        with self._sessions.begin() as session:
            session.execute(
                delete(ProposalErrorReport).where(ProposalErrorReport.created_at < now - REPORT_TTL)
            )
            session.add(ProposalErrorReport(token=token, staff_id=staff_id, created_at=now, body=body))
        return token

    def report(self, staff_id: int, token: str) -> str:
        """The errors' CSV behind `token`, for the staff member who made it only."""
        with self._sessions() as session:
            row = session.get(ProposalErrorReport, token)
            if row is None or row.staff_id != staff_id or _aware(row.created_at) < self._clock() - REPORT_TTL:
                raise NotFound("No such error report (reports are kept a day)", code=ErrorCode.NOT_FOUND)
            return zlib.decompress(row.body).decode("utf-8")


class _Raced(Exception):
    """Another clerk's proposal took some of the certificates between the checks and the insert."""


def _require(actor: StaffView, role: Role) -> None:
    if actor.role is not role or actor.disabled:
        raise EcertError(f"Only an enabled {role.value} may do this", code=ErrorCode.STAFF_ROLE_FORBIDDEN)


def _past(action: str) -> str:
    return {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked"}[action]


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _view_query() -> Any:
    proposer, approver = aliased(StaffMember), aliased(StaffMember)
    return (
        select(
            StatusProposal, proposer.display_name, proposer.username, approver.display_name, approver.username
        )
        .join(proposer, proposer.id == StatusProposal.proposer_id)
        .outerjoin(approver, approver.id == StatusProposal.approver_id)
    )


def _proposal_view(row: Any, chunks: list[ChunkView] | None = None) -> ProposalView:
    p, proposer_name, proposer_user, approver_name, approver_user = row
    return ProposalView(
        p.id, p.agency_code, p.action, p.reason, p.note, p.count, p.state, p.proposer_id,
        f"{proposer_name} ({proposer_user})", p.approver_id,
        f"{approver_name} ({approver_user})" if approver_user else None, _aware(p.created_at),
        _aware(p.decided_at) if p.decided_at else None, p.reject_reason, p.skipped,
        _aware(p.finished_at) if p.finished_at else None, p.last_error, chunks or [],
    )  # fmt: skip


def _chunk_view(chunk: StatusProposalChunk, root: bytes) -> ChunkView:
    return ChunkView(chunk.id, "0x" + bytes(root).hex(), chunk.word, chunk.count, chunk.state, chunk.tx_hash,
                     chunk.block_number, chunk.attempts, chunk.refusal, chunk.last_error)  # fmt: skip


# ─── the outbox: approved proposals to the chain ─────────────────────────────────────────


@dataclass
class SenderSettings:
    confirmations: int = 1  # blocks a chunk needs before its certificates' status changes
    retry_base_s: float = 1.0  # the first back-off after a failed chunk; doubles up to retry_max_s
    retry_max_s: float = 30.0
    per_pass: int = 64  # chunks signed and broadcast per pass: the anchoring loop stays responsive


class ProposalSender:
    """Sends approved proposals to the chain, chunk by chunk (see the module's docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: CertificateRegistry,
        signer_for: Callable[[str], LocalAccount],
        audit: AuditLog,
        settings: SenderSettings | None = None,
        clock: Clock = _now,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._client = registry.client
        self._signer_for = signer_for
        self._audit = audit
        self.settings = settings or SenderSettings()
        self._clock = clock

    def __call__(self) -> int:
        return self.run_once()

    def run_once(self) -> int:
        """One pass: plan approved proposals, send ready chunks, track sent ones; how many moved."""
        return self.plan_approved() + self.send_ready() + self.track_sent()

    def outstanding(self) -> int:
        """Proposals approved and not yet confirmed or failed."""
        with self._sessions() as session:
            return session.scalar(
                select(func.count()).select_from(StatusProposal).where(StatusProposal.state.in_(("approved", "sent")))
            ) or 0  # fmt: skip

    # ─── step 1: plan ────────────────────────────────────────────────────────────────────

    def plan_approved(self) -> int:
        with self._sessions() as session:
            due = list(session.scalars(
                select(StatusProposal.id)
                .where(StatusProposal.state == "approved", StatusProposal.planned_at.is_(None))
                .order_by(StatusProposal.id)
            ))  # fmt: skip
        return sum(self._plan(proposal_id) for proposal_id in due)

    def _plan(self, proposal_id: int) -> int:
        now = self._clock()
        with self._sessions.begin() as session:
            claimed = cast("CursorResult[Any]", session.execute(
                update(StatusProposal)
                .where(StatusProposal.id == proposal_id, StatusProposal.planned_at.is_(None),
                       StatusProposal.state == "approved")
                .values(planned_at=now).execution_options(synchronize_session=False)
            )).rowcount  # fmt: skip
            if claimed != 1:
                return 0  # another worker planned it
            proposal = session.get_one(StatusProposal, proposal_id)
            legal = LEGAL_FROM[ACTIONS[proposal.action]]
            by_batch: dict[int, list[int]] = {}
            skipped = 0
            for batch_id, index, status in session.execute(
                select(Certificate.batch_id, Certificate.batch_index, Certificate.status)
                .join(StatusProposalItem, StatusProposalItem.certificate_id == Certificate.id)
                .where(StatusProposalItem.proposal_id == proposal_id)
            ):  # fmt: skip
                if batch_id is None or index is None or status not in legal:
                    skipped += 1  # changed since it was proposed (another way): left as it is
                    continue
                by_batch.setdefault(batch_id, []).append(index)
            chunks = [
                {"proposal_id": proposal_id, "batch_id": batch_id, "word": word, "mask": mask.to_bytes(32, "big"),
                 "count": mask.bit_count(), "state": "ready", "attempts": 0}
                for batch_id in sorted(by_batch)
                for word, mask in sorted(word_masks(by_batch[batch_id]).items())
            ]  # fmt: skip
            if chunks:
                session.execute(insert(StatusProposalChunk), chunks)
            proposal.skipped = skipped
            if not chunks:
                proposal.state, proposal.finished_at = "failed", now
                proposal.last_error = (
                    "nothing left to change: every certificate's status changed since the proposal"
                )
            log.info(
                "proposal %s planned: %d transaction(s), %d certificate(s) skipped",
                proposal_id,
                len(chunks),
                skipped,
            )
        return 1

    # ─── step 2: sign, store, broadcast ──────────────────────────────────────────────────

    def send_ready(self) -> int:
        now = self._clock()
        with self._sessions() as session:
            rows = session.execute(
                select(StatusProposalChunk.id, StatusProposalChunk.retry_at)
                .where(StatusProposalChunk.state == "ready").order_by(StatusProposalChunk.id)
            ).all()  # fmt: skip
        due = [row.id for row in rows if row.retry_at is None or _aware(row.retry_at) <= now]
        due = due[: self.settings.per_pass]
        return sum(self._sign_and_send(chunk_id) for chunk_id in due)

    def _sign_and_send(self, chunk_id: int) -> int:
        with self._sessions() as session:
            # Claim the chunk: a row lock (PostgreSQL) or the write lock (SQLite) until the commit,
            # so a second worker never signs it too; it finds the chunk sending and skips it.
            claimed = cast("CursorResult[Any]", session.execute(
                update(StatusProposalChunk).where(StatusProposalChunk.id == chunk_id, StatusProposalChunk.state == "ready")
                .values(attempts=StatusProposalChunk.attempts).execution_options(synchronize_session=False)
            )).rowcount  # fmt: skip
            if claimed != 1:
                session.rollback()
                return 0
            chunk = session.get_one(StatusProposalChunk, chunk_id)
            proposal = session.get_one(StatusProposal, chunk.proposal_id)
            signer = self._signer_for(proposal.agency_code)
            call = self._call(session, chunk, proposal)
            revert = self._client.revert_of(signer.address, call)  # what the chain would say, for free
            if revert is not None:
                chunk.attempts += 1
                self._reverted(session, chunk, revert, "simulated before signing")
                self._settle(session, proposal)
                session.commit()
                return 1
            gas = STATUS_GAS
            if chunk.attempts:  # a retry (after out of gas, say) asks the node what it needs now
                gas = max(
                    STATUS_GAS, self._client._estimate(signer.address, call, "CertificateRegistry") * 3 // 2
                )
            nonce = self._free_nonce(session, signer.address)
            try:
                fees = self._client._fees()
                params: TxParams = {
                    "from": signer.address, "nonce": Nonce(nonce), "gas": gas, "chainId": self._client.chain_id,
                    "maxFeePerGas": fees["maxFeePerGas"], "maxPriorityFeePerGas": fees["maxPriorityFeePerGas"],
                }  # fmt: skip
                signed = signer.sign_transaction(cast(TransactionDictType, call.build_transaction(params)))
                chunk.raw_tx, chunk.tx_hash = (
                    bytes(signed.raw_transaction),
                    "0x" + signed.hash.hex().removeprefix("0x"),
                )
                chunk.nonce, chunk.signer = nonce, signer.address
                chunk.attempts, chunk.retry_at, chunk.state = chunk.attempts + 1, None, "sending"
                self._settle(session, proposal)
                session.commit()  # stored before broadcast: a crash now re-broadcasts these bytes
                log.info(
                    "proposal %s: chunk %s sent as %s (nonce %d)", proposal.id, chunk.id, chunk.tx_hash, nonce
                )
                self._broadcast(chunk)
            finally:  # from here the node (pending) or our table (sending) keeps the nonce taken
                self._client.release_nonce(signer.address, nonce)
        return 1

    def _call(
        self, session: Session, chunk: StatusProposalChunk, proposal: StatusProposal
    ) -> ContractFunction:
        batch = session.get_one(Batch, chunk.batch_id)
        mask = int.from_bytes(chunk.mask, "big")
        return status_call(
            self._registry, batch.root, chunk.word, mask, ACTIONS[proposal.action], proposal.reason
        )

    def _free_nonce(self, session: Session, signer: str) -> int:
        """The lowest nonce neither the node, this process, nor a stored transaction — ours or the
        anchoring worker's — holds (`AnchoringWorker._free_nonce` for both outboxes)."""
        taken = set(session.scalars(
            select(StatusProposalChunk.nonce).where(StatusProposalChunk.signer == signer,
                                                    StatusProposalChunk.state == "sending",
                                                    StatusProposalChunk.nonce.is_not(None))
        ))  # fmt: skip
        taken |= set(session.scalars(
            select(Batch.nonce).where(Batch.signer == signer, Batch.state == "sending", Batch.nonce.is_not(None))
        ))  # fmt: skip
        return self._client.allocate_nonce(signer, {n for n in taken if n is not None})

    def _broadcast(self, chunk: StatusProposalChunk) -> None:
        raw_tx = chunk.raw_tx
        assert raw_tx is not None, "a chunk is signed and stored before it is broadcast"
        try:
            self._client.guard(lambda: self._client.w3.eth.send_raw_transaction(raw_tx))
        except ChainUnavailable:
            raise
        except ChainError as exc:  # already known, nonce too low…: the receipt check decides
            log.info("broadcast of chunk %s: %s", chunk.id, exc.message)

    # ─── step 3: receipts and confirmations ──────────────────────────────────────────────

    def track_sent(self) -> int:
        moved = 0
        with self._sessions() as session:
            ids = list(session.scalars(
                select(StatusProposalChunk.id).where(StatusProposalChunk.state.in_(("sending", "mined")))
                .order_by(StatusProposalChunk.id)
            ))  # fmt: skip
        if not ids:
            return 0
        head = self._client.block_number()
        for chunk_id in ids:
            confirmed: tuple[StatusProposal, StatusProposalChunk] | None = None
            with self._sessions() as session:
                chunk = session.get_one(StatusProposalChunk, chunk_id)
                proposal = session.get_one(StatusProposal, chunk.proposal_id)
                if chunk.state == "sending" and self._track_sending(session, chunk, proposal):
                    moved += 1
                elif chunk.state == "mined" and not self._still_mined(chunk):
                    chunk.state, chunk.block_number, chunk.block_hash = "sending", None, None
                    chunk.last_error = (
                        "reorg: its block is no longer on chain; broadcasting the same transaction again"
                    )
                    log.warning("proposal %s chunk %s: %s", proposal.id, chunk.id, chunk.last_error)
                    moved += 1
                if (
                    chunk.state == "mined"
                    and chunk.block_number is not None
                    and head - chunk.block_number + 1 >= self.settings.confirmations
                ):
                    self._confirm(session, chunk, proposal)
                    confirmed = (proposal, chunk)
                    moved += 1
                self._settle(session, proposal)
                session.commit()
                if confirmed is not None:
                    self._audit_change(*confirmed)
        return moved

    def _track_sending(self, session: Session, chunk: StatusProposalChunk, proposal: StatusProposal) -> bool:
        signer, nonce, tx_hash = chunk.signer, chunk.nonce, chunk.tx_hash
        assert signer is not None and nonce is not None and tx_hash is not None, "set when sent"
        receipt = self._receipt(tx_hash)
        if receipt is not None and receipt["status"] == 1:
            chunk.state = "mined"
            chunk.block_number, chunk.block_hash = receipt["blockNumber"], _hex(receipt["blockHash"])
            return True
        if receipt is not None:  # mined and reverted: why, and would it revert again?
            self._client.release_nonce(signer, nonce)
            revert = self._client.revert_of(signer, self._call(session, chunk, proposal))
            where = f"transaction {tx_hash} reverted in block {receipt['blockNumber']}"
            if revert is None:
                self._back_off(chunk, f"{where} (gas used {receipt['gasUsed']}: out of gas?)")
            else:
                self._reverted(session, chunk, revert, where)
            return True
        confirmed_nonce = self._client.guard(
            lambda: self._client.w3.eth.get_transaction_count(checksum_address(signer), "latest")
        )
        if confirmed_nonce > nonce and self._receipt(tx_hash) is None:
            # the nonce went to another transaction and ours has no receipt: it never landed
            self._client.release_nonce(signer, nonce)
            chunk.state, chunk.raw_tx = "ready", None
            chunk.last_error = "transaction replaced (its nonce was used by another); signing again"
            log.warning("proposal %s chunk %s: %s", proposal.id, chunk.id, chunk.last_error)
            return True
        self._broadcast(chunk)  # still pending, or dropped: the same bytes again
        return False

    def _still_mined(self, chunk: StatusProposalChunk) -> bool:
        receipt = self._receipt(chunk.tx_hash) if chunk.tx_hash else None
        if receipt is None or receipt["status"] != 1:
            return False
        chunk.block_number, chunk.block_hash = receipt["blockNumber"], _hex(receipt["blockHash"])
        return True

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt, None if the node has none; any other trouble raises (never a guess that
        would sign a change again)."""
        try:
            return self._client.guard(lambda: self._client.w3.eth.get_transaction_receipt(HexStr(tx_hash)))
        except TransactionNotFound:
            return None
        except ChainError as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return None
            raise

    def _confirm(self, session: Session, chunk: StatusProposalChunk, proposal: StatusProposal) -> None:
        """The chunk is deep enough: its certificates take the new status in the database."""
        chunk.state, chunk.confirmed_at, chunk.raw_tx = "confirmed", self._clock(), None  # never sent again
        mask = int.from_bytes(chunk.mask, "big")
        indices = [chunk.word * 256 + i for i in range(256) if mask >> i & 1]
        session.execute(
            update(Certificate)
            .where(Certificate.batch_id == chunk.batch_id, Certificate.batch_index.in_(indices))
            .values(status=ACTIONS[proposal.action].name.lower(), status_reason=proposal.reason,
                    status_note=proposal.note)
            .execution_options(synchronize_session=False)
        )  # fmt: skip

    def _audit_change(self, proposal: StatusProposal, chunk: StatusProposalChunk) -> None:
        try:
            self._audit.append(proposal.agency_code, "system", AuditAction.STATUS_CHANGE, f"proposal:{proposal.id}", {
                "proposal": proposal.id, "action": proposal.action, "reason": f"{proposal.reason:02d}",
                "count": chunk.count, "txHash": chunk.tx_hash, "block": chunk.block_number,
            })  # fmt: skip
        except Exception:
            log.exception("proposal %s: the audit entry of chunk %s was not written", proposal.id, chunk.id)

    def _settle(self, session: Session, proposal: StatusProposal) -> None:
        """The proposal's state from its chunks': sent once none is waiting to be signed,
        confirmed once all are, failed once the rest is done and one failed."""
        if proposal.state not in ("approved", "sent") or proposal.planned_at is None:
            return
        session.flush()
        counts: dict[str, int] = {
            row[0]: row[1] for row in session.execute(
                select(StatusProposalChunk.state, func.count())
                .where(StatusProposalChunk.proposal_id == proposal.id).group_by(StatusProposalChunk.state)
            )
        }  # fmt: skip
        if not counts:
            return
        pending = sum(counts.get(s, 0) for s in ("ready", "sending", "mined"))
        if pending == 0:
            proposal.state = "failed" if counts.get("failed") else "confirmed"
            proposal.finished_at = self._clock()
        elif counts.get("ready", 0) == 0 and proposal.state == "approved":
            proposal.state = "sent"

    # ─── reverts, refusals, back-off ─────────────────────────────────────────────────────

    def _reverted(
        self, session: Session, chunk: StatusProposalChunk, revert: ContractRevert, where: str
    ) -> None:
        if revert.name in REFUSED:
            chunk.state, chunk.raw_tx, chunk.retry_at, chunk.refusal = "failed", None, None, revert.name
            chunk.last_error = f"{where}: {revert.message}"
            proposal = session.get_one(StatusProposal, chunk.proposal_id)
            proposal.last_error = chunk.last_error
            log.error("proposal chunk %s refused by the chain, not retried: %s", chunk.id, chunk.last_error)
        else:
            self._back_off(chunk, f"{where}: {revert.message}")

    def _back_off(self, chunk: StatusProposalChunk, reason: str) -> None:
        delay = min(self.settings.retry_base_s * 2 ** max(chunk.attempts - 1, 0), self.settings.retry_max_s)
        chunk.state, chunk.raw_tx = "ready", None
        chunk.retry_at = self._clock() + dt.timedelta(seconds=delay)
        chunk.last_error = f"{reason}; trying again in {delay:g} s"
        log.warning("proposal chunk %s: %s", chunk.id, chunk.last_error)


def after_each(*jobs: Callable[[], object] | None) -> Callable[[], object] | None:
    """One `AnchoringWorker.after_pass` that runs every job given, each on its own: one that
    fails (logged) does not keep the others from running."""
    present = [job for job in jobs if job is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def run() -> None:
        for job in present:
            try:
                job()
            except ChainError as exc:
                log.warning("%s paused (%s): trying again after the next pass", _name(job), exc.code)
            except Exception:
                log.exception("%s failed: it runs again after the next pass", _name(job))

    return run


def _name(job: Callable[[], object]) -> str:
    return getattr(job, "__qualname__", None) or type(job).__name__


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


__all__ = [
    "ACTIONS",
    "MAX_ITEMS",
    "CertificateHistory",
    "ProposalSender",
    "ProposalView",
    "Proposed",
    "RowError",
    "SenderSettings",
    "StatusProposals",
    "after_each",
    "decode_upload",
    "errors_csv",
    "parse_identifiers",
]
