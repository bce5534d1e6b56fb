"""Holders' correction requests (issue 12, point 9): from the wallet, a holder flags a wrong field
of a certificate, or asks for its renewal, with a message; the request waits in the issuing
agency's queue until its deadline (`ECERT_ISSUER_CORRECTION_HOURS`, per type
`ECERT_ISSUER_CORRECTION_HOURS_BY_TYPE`), and staff answer it: fixed by a renewal (version + 1,
linked to the old one: `IssuerService.reissue`) or refused with a reason.

The holder proves possession with the full holder package (every field's salt, which only the
holder and the agency know), as for the verifier's `POST /v1/holdings`, and reads the answer with
the request's token. Of the token only its SHA-256 is stored; it is an HMAC of the request id
under the data key, so a retried request (same Idempotency-Key) gets it again. The message is
personal text: stored AES-GCM encrypted like certificate fields."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from issuer.audit import AuditAction, AuditLog
from issuer.dashboard import set_correction_source
from issuer.models import Certificate, CorrectionRequest, StaffMember
from issuer.service import IssuerService
from registry.certificate.presentation import Presentation
from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, Conflict, EcertError, NotAuthorised, NotFound

__all__ = [
    "BUCKETS", "KINDS", "MAX_MESSAGE", "MAX_REASON", "CorrectionAlreadyOpen", "CorrectionRequests", "CorrectionView",
    "Created", "open_by_deadline", "renewal_changes",
]  # fmt: skip

KINDS = ("field", "renewal")
MAX_MESSAGE = 1000
MAX_REASON = 1000
MAX_KEY = 64
BUCKETS = ("overdue", "due_24h", "later")  # the dashboard's deadline buckets of open requests
PER_PAGE = 50
# What staff must not be shown as sent: control characters but line breaks and tabs (terminal
# escapes), and the bidi overrides and isolates that reorder or hide text on the page.
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
Clock = Callable[[], dt.datetime]


class CorrectionAlreadyOpen(Conflict):
    """A request of the same kind about the same field of the certificate is still open."""

    code = ErrorCode.CORRECTION_ALREADY_OPEN

    def __init__(self, existing_id: str) -> None:
        super().__init__(
            f"Correction request {existing_id} about this is still open: wait for its answer",
            existingId=existing_id,
        )
        self.existing_id = existing_id


@dataclass(frozen=True)
class CorrectionView:
    id: str
    agency_code: str
    identifier: str
    type_code: str
    kind: str
    field: str | None
    message: str
    status: str
    created_at: dt.datetime
    due_at: dt.datetime
    answered_at: dt.datetime | None
    answered_by: str | None  # the staff member's username
    reason: str | None
    new_identifier: str | None

    def overdue_by(self, now: dt.datetime) -> dt.timedelta | None:
        """How long past its deadline an open request is (None: not overdue, or answered)."""
        return now - self.due_at if self.status == "open" and now > self.due_at else None

    def to_json(self) -> dict[str, Any]:
        """The holder's view (`GET /v1/corrections/{id}`), without the package."""
        return {
            "id": self.id, "identifier": self.identifier, "kind": self.kind, "field": self.field,
            "message": self.message, "status": self.status, "createdAt": _iso(self.created_at),
            "dueAt": _iso(self.due_at), "answeredAt": _iso(self.answered_at) if self.answered_at else None,
            "reason": self.reason, "newIdentifier": self.new_identifier,
        }  # fmt: skip


@dataclass(frozen=True)
class Created:
    """A request as `POST /v1/corrections` answers it; `new` False: the first one of a retry."""

    view: CorrectionView
    token: str
    new: bool

    def to_json(self) -> dict[str, Any]:
        v = self.view
        return {"id": v.id, "token": self.token, "identifier": v.identifier, "kind": v.kind, "field": v.field,
                "status": v.status, "createdAt": _iso(v.created_at), "dueAt": _iso(v.due_at)}  # fmt: skip


class CorrectionRequests:
    """Create (holder), read with the token (holder), list and answer (agency staff)."""

    def __init__(self, sessions: sessionmaker[Session], service: IssuerService, data_key: bytes,
                 hours_for: Callable[[str], float], *, audit: AuditLog | None = None,
                 clock: Clock | None = None) -> None:  # fmt: skip
        self._sessions = sessions
        self._service = service
        self._cipher = DataCipher(data_key)
        self._token_key = hmac.new(data_key, b"ecert correction token", hashlib.sha256).digest()
        self._hours_for = hours_for
        self._audit = audit or AuditLog(sessions)
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)

    # ─── the holder ──────────────────────────────────────────────────────────────────────

    def create(self, package: Mapping[str, Any], holder_code: str, kind: str, field: str | None, message: str,
               idempotency_key: str | None = None) -> Created:  # fmt: skip
        """A new open request about the certificate of this full holder package, if `holder_code`
        is its holder's; a retry with the same Idempotency-Key returns the first request."""
        message = message.strip()
        if kind not in KINDS:
            raise EcertError("kind must be field or renewal", code=ErrorCode.REQUEST_INVALID, field="kind")
        if not 1 <= len(message) <= MAX_MESSAGE:
            raise EcertError(f"message must be 1 to {MAX_MESSAGE} characters", code=ErrorCode.REQUEST_INVALID,
                             field="message")  # fmt: skip
        if _HIDDEN.search(message):
            raise EcertError("message must be plain text: no control or text-direction characters (line breaks "
                             "and tabs are fine)", code=ErrorCode.REQUEST_INVALID, field="message")  # fmt: skip
        if idempotency_key is not None and not (
            1 <= len(idempotency_key) <= MAX_KEY and idempotency_key.isprintable()
        ):
            raise EcertError(f"Idempotency-Key must be 1–{MAX_KEY} printable characters",
                             code=ErrorCode.IDEMPOTENCY_KEY_INVALID, field="Idempotency-Key")  # fmt: skip
        presentation = self._full_package(package)
        identifier = str(presentation.values().get("identifier", ""))
        with self._sessions() as session:
            cert = session.scalar(select(Certificate).where(Certificate.identifier == identifier))
            if cert is None or not hmac.compare_digest(cert.digest, presentation.digest):
                raise _no_certificate()
            cert_id, agency, type_code, superseded = (
                cert.id,
                cert.agency_code,
                cert.type_code,
                cert.superseded_by,
            )
        holder = presentation.fields().get("holder") or {}
        if not hmac.compare_digest(
            str(holder.get("code", "")).encode(), holder_code.strip().upper().encode()
        ):
            raise NotAuthorised(
                "This certificate belongs to someone else", code=ErrorCode.CORRECTION_NOT_YOURS
            )
        if kind == "field":
            if not field or field not in presentation.paths():
                raise EcertError("field must name a field of the certificate (e.g. holder.name)",
                                 code=ErrorCode.FIELD_UNKNOWN, field="field")  # fmt: skip
        else:
            field = None
        request_hash = hashlib.sha256(
            json.dumps(
                [identifier, holder_code.strip().upper(), kind, field, message], ensure_ascii=False
            ).encode()
        ).hexdigest()
        if idempotency_key and (first := self._retry(identifier, idempotency_key, request_hash)):
            return first
        if superseded:
            raise Conflict(f"{identifier} was superseded by {superseded}: ask about the newest version",
                           code=ErrorCode.CERT_SUPERSEDED)  # fmt: skip
        request_id = "cr_" + secrets.token_urlsafe(16)
        token = self._token(request_id)
        created = self.now()
        due = created + dt.timedelta(hours=self._hours_for(type_code))
        open_key = f"{identifier}|{kind}|{field or ''}"
        try:
            with self._sessions.begin() as session:
                if existing := session.scalar(
                    select(CorrectionRequest.id).where(CorrectionRequest.open_key == open_key)
                ):
                    raise CorrectionAlreadyOpen(existing)
                session.add(CorrectionRequest(
                    id=request_id, agency_code=agency, certificate_id=cert_id, identifier=identifier,
                    type_code=type_code, kind=kind, field=field,
                    message=self._cipher.encrypt(message.encode(), _context(request_id)),
                    token_hash=_sha256(token), idempotency_key=idempotency_key, request_hash=request_hash,
                    open_key=open_key, created_at=created, due_at=due, status="open",
                ))  # fmt: skip
        except CorrectionAlreadyOpen:  # the open one may be this very request, made by a racing retry
            if idempotency_key and (first := self._retry(identifier, idempotency_key, request_hash)):
                return first
            raise
        except IntegrityError:  # a twin at the same moment: a retry, or another request about the same
            if idempotency_key and (first := self._retry(identifier, idempotency_key, request_hash)):
                return first
            with self._sessions() as session:
                existing = session.scalar(
                    select(CorrectionRequest.id).where(CorrectionRequest.open_key == open_key)
                )
            if existing:
                raise CorrectionAlreadyOpen(existing) from None
            raise
        return Created(self._find(request_id), token, True)

    def read(self, request_id: str, token: str) -> tuple[CorrectionView, dict[str, Any] | None]:
        """The request and, once it is fixed and the renewal confirmed on chain, the renewed
        holder package. An unknown id and a wrong token are the same CORRECTION_NOT_FOUND."""
        with self._sessions() as session:
            row = session.get(CorrectionRequest, request_id[:40])
            if row is None or not hmac.compare_digest(row.token_hash, _sha256(token)):
                raise NotFound(
                    "No such correction request (or not this token)", code=ErrorCode.CORRECTION_NOT_FOUND
                )
            view = self._view(session, row)
            renewed = None
            if view.status == "fixed" and view.new_identifier:
                new = session.scalar(
                    select(Certificate.state).where(Certificate.identifier == view.new_identifier)
                )
                if new == "confirmed":
                    renewed = self._service.package(view.agency_code, view.new_identifier).to_json()
        return view, renewed

    # ─── agency staff ────────────────────────────────────────────────────────────────────

    def queue(self, agency: str, status: str = "open", page: int = 1) -> tuple[list[CorrectionView], bool]:
        """Open requests by deadline (the soonest, and the overdue, first), or answered ones,
        newest answer first; and whether there is a next page."""
        query = select(CorrectionRequest).where(CorrectionRequest.agency_code == agency)
        if status == "open":
            query = query.where(CorrectionRequest.status == "open").order_by(
                CorrectionRequest.due_at, CorrectionRequest.id
            )
        else:
            query = query.where(CorrectionRequest.status != "open").order_by(
                CorrectionRequest.answered_at.desc(), CorrectionRequest.id
            )
        with self._sessions() as session:
            rows = session.scalars(query.offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)).all()
            return [self._view(session, r) for r in rows[:PER_PAGE]], len(rows) > PER_PAGE

    def get(self, agency: str, request_id: str) -> CorrectionView:
        with self._sessions() as session:
            row = session.get(CorrectionRequest, request_id[:40])
            if row is None or row.agency_code != agency:
                raise NotFound(f"No correction request {request_id[:40]} of this agency",
                               code=ErrorCode.CORRECTION_NOT_FOUND)  # fmt: skip
            return self._view(session, row)

    def fix(self, agency: str, request_id: str, staff_id: int, actor: str, values: Mapping[str, Any],
            note: str | None = None) -> CorrectionView:  # fmt: skip
        """Answer by a renewal: version + 1 with the new `values` by dotted path (`holder.name`,
        `ext.address`, `validUntil`; the rest carried over: `IssuerService.reissue`), the old
        version superseded; the request is linked to the new identifier. Audited
        `correction_fix` with the paths changed, never their values."""
        view = self._open(agency, request_id)
        note = " ".join((note or "").split())[:MAX_REASON] or None
        changes = renewal_changes(self.current_fields(view), values)
        self._answer(view.id, "fixed", staff_id, note, None)  # claimed: a concurrent answer gets 409
        try:
            job = self._service.reissue(
                agency, view.identifier, changes, idempotency_key=f"correction:{view.id}"
            )
        except BaseException:
            self._reopen(view)
            raise
        new_identifier = job.identifiers[0]
        with self._sessions.begin() as session:
            session.execute(update(CorrectionRequest).where(CorrectionRequest.id == view.id)
                            .values(new_identifier=new_identifier))  # fmt: skip
        self._audit.append(agency, actor, AuditAction.CORRECTION_FIX, view.identifier,
                           {"request": view.id, "kind": view.kind, "field": view.field, "changed": sorted(values),
                            "newIdentifier": new_identifier, "jobId": job.id})  # fmt: skip
        return self._find(view.id)

    def refuse(self, agency: str, request_id: str, staff_id: int, actor: str, reason: str) -> CorrectionView:
        """Answer with a refusal and its reason (required: the holder reads it). Audited
        `correction_refuse` with the reason."""
        reason = " ".join(reason.split())
        if not 1 <= len(reason) <= MAX_REASON:
            raise EcertError(f"A refusal needs a reason (1 to {MAX_REASON} characters)",
                             code=ErrorCode.CORRECTION_REASON_REQUIRED, field="reason")  # fmt: skip
        view = self._open(agency, request_id)
        self._answer(view.id, "refused", staff_id, reason, None)  # first: a concurrent answer gets 409
        self._audit.append(agency, actor, AuditAction.CORRECTION_REFUSE, view.identifier,
                           {"request": view.id, "kind": view.kind, "field": view.field, "reason": reason})  # fmt: skip
        return self._find(view.id)

    def current_fields(self, view: CorrectionView) -> dict[str, Any]:
        """The certificate's fields as issued (personal: the console masks them)."""
        return self._service.fields(view.agency_code, view.identifier)

    # ─── inside ──────────────────────────────────────────────────────────────────────────

    def _full_package(self, package: Mapping[str, Any]) -> Presentation:
        try:
            presentation = Presentation.from_json(package)
            if (
                presentation.is_partial
                or presentation.chain_id != self._service.chain_id
                or presentation.registry.lower() != self._service.registry_address.lower()
                or presentation.computed_digest() != presentation.digest
            ):
                raise _no_certificate()
        except CertificateError:
            raise _no_certificate() from None
        return presentation

    def _retry(self, identifier: str, key: str, request_hash: str) -> Created | None:
        with self._sessions() as session:
            row = session.scalar(select(CorrectionRequest).where(
                CorrectionRequest.identifier == identifier, CorrectionRequest.idempotency_key == key))  # fmt: skip
            if row is None:
                return None
            if row.request_hash != request_hash:
                raise Conflict("This Idempotency-Key was used for a different request",
                               code=ErrorCode.IDEMPOTENCY_CONFLICT)  # fmt: skip
            return Created(self._view(session, row), self._token(row.id), False)

    def _open(self, agency: str, request_id: str) -> CorrectionView:
        view = self.get(agency, request_id)
        if view.status != "open":
            raise Conflict(
                f"Correction request {view.id} was answered already", code=ErrorCode.CORRECTION_ANSWERED
            )
        return view

    def _answer(
        self, request_id: str, status: str, staff_id: int, reason: str | None, new: str | None
    ) -> None:
        with self._sessions.begin() as session:
            done = session.execute(
                update(CorrectionRequest)
                .where(CorrectionRequest.id == request_id, CorrectionRequest.status == "open")
                .values(
                    status=status,
                    answered_at=self.now(),
                    answered_by=staff_id,
                    reason=reason,
                    new_identifier=new,
                    open_key=None,
                )
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict(f"Correction request {request_id} was answered already",
                               code=ErrorCode.CORRECTION_ANSWERED)  # fmt: skip

    def _reopen(self, view: CorrectionView) -> None:
        """Undo a fix's claim whose renewal failed: the request is open again (and again the one
        open request about its subject, unless another was made meanwhile)."""
        values = {"status": "open", "answered_at": None, "answered_by": None, "reason": None}
        with self._sessions.begin() as session:
            claimed = (update(CorrectionRequest).where(CorrectionRequest.id == view.id, CorrectionRequest.status == "fixed",
                       CorrectionRequest.new_identifier.is_(None)))  # fmt: skip
            try:
                with session.begin_nested():
                    session.execute(
                        claimed.values(**values, open_key=f"{view.identifier}|{view.kind}|{view.field or ''}")
                    )
            except IntegrityError:
                session.execute(claimed.values(**values))

    def _find(self, request_id: str) -> CorrectionView:
        with self._sessions() as session:
            return self._view(session, session.get_one(CorrectionRequest, request_id))

    def _view(self, session: Session, row: CorrectionRequest) -> CorrectionView:
        by = (
            session.scalar(select(StaffMember.username).where(StaffMember.id == row.answered_by))
            if row.answered_by
            else None
        )
        return CorrectionView(
            id=row.id, agency_code=row.agency_code, identifier=row.identifier, type_code=row.type_code,
            kind=row.kind, field=row.field, message=self._cipher.decrypt(row.message, _context(row.id)).decode(),
            status=row.status, created_at=as_utc(row.created_at), due_at=as_utc(row.due_at),
            answered_at=as_utc(row.answered_at) if row.answered_at else None, answered_by=by,
            reason=row.reason, new_identifier=row.new_identifier,
        )  # fmt: skip

    def _token(self, request_id: str) -> str:
        mac = hmac.new(self._token_key, request_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode()[:32]


def open_by_deadline(session: Session, agencies: Sequence[str], _today: dt.date, now: dt.datetime | None = None
                     ) -> list[list[Any]]:  # fmt: skip
    """The dashboard's corrections panel: open requests of `agencies` overdue, due within 24 hours,
    and due later (`issuer.dashboard.set_correction_source`)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    soon = now + dt.timedelta(hours=24)
    due = CorrectionRequest.due_at
    counts = dict.fromkeys(BUCKETS, 0)
    for bucket, where in (
        ("overdue", due < now),
        ("due_24h", (due >= now) & (due < soon)),
        ("later", due >= soon),
    ):
        counts[bucket] = session.scalar(
            select(func.count()).select_from(CorrectionRequest).where(
                CorrectionRequest.agency_code.in_(agencies), CorrectionRequest.status == "open", where)
        ) or 0  # fmt: skip
    return [[bucket, counts[bucket]] for bucket in BUCKETS]


HOLDER_KEPT = ("name", "code", "codeType")  # what `reissue` carries over of the holder


def renewal_changes(current: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`reissue`'s top-level changes for new values by dotted path: a `holder.*` or `ext.*`
    value replaces only its key, the object's other keys carried over as issued."""
    changes: dict[str, Any] = {}
    for path, value in values.items():
        head, _, key = path.partition(".")
        if key and head in ("holder", "ext"):
            if head not in changes:
                old = dict(current.get(head) or {})
                changes[head] = (
                    {k: v for k, v in old.items() if k in HOLDER_KEPT} if head == "holder" else old
                )
            changes[head][key] = value
        else:
            changes[path] = value
    return changes


def _no_certificate() -> NotFound:
    return NotFound(
        "Send the full holder package of a certificate this issuer issued", code=ErrorCode.CERT_NOT_FOUND
    )


def _context(request_id: str) -> str:
    return f"correction:{request_id}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


set_correction_source(open_by_deadline)  # the dashboard's corrections panel, wherever the issuer runs
