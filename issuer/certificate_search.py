"""What the console's certificate pages read (issue 12, points 2 and 4): the agency's jobs, a
search over its certificates (exact identifier; number, holder name and holder code through the
keyed blind index, `issuer.blind_index`; date range, type, status, job), and one certificate with
its fields — masked by default — and its history.

Masking (`mask_value`) follows the certificates' own masked twin (`holder.codeMasked`,
`registry.certificate.model.mask_code`: the first and last four characters of a code): a holder
code, and any value that reads as a 公民身份号码 (a driving licence's number is one), is masked
that way; other personal text keeps its first and last character (`张*丰`, `杭********司`), a
date its shape (`****-**-**`). Personal are the holder's name and code and every `ext.*` field
but those that describe the licence rather than the person (`CLEAR_EXT`); an ext key not known
here is personal. Every function is scoped to one agency: another agency's rows are not found.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import false as sql_false
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from issuer import models
from issuer.blind_index import COLUMNS, HOLDER_CODE, HOLDER_NAME, NUMBER, BlindIndex
from issuer.models import AuditLogEntry, Batch, BatchEvent, Certificate, Job, JobError
from issuer.sealed_fields import open_fields
from registry.certificate.canonical import leaf_value, unflatten
from registry.certificate.identifiers import parse_id_number
from registry.certificate.labels import field_label, known_paths
from registry.certificate.model import mask_code
from registry.crypto import DataCipher
from registry.database import as_utc
from registry.errors import IdentifierError

PER_PAGE = 20
STATUSES = ("active", "suspended", "revoked")
# ext fields of the catalogue that describe the licence, not its holder: shown in clear.
CLEAR_EXT = frozenset(
    {"type", "registeredCapital", "establishedDate", "scope", "licenceClass", "vehicleClass", "firstIssued"}
)
CLEAR_PATHS = frozenset(
    {"identifier", "name", "typeCode", "number", "issuer.name", "issuer.code", "issuer.region", "issuedDate",
     "holder.codeType", "validFrom", "validUntil", "previousIdentifier"}
)  # fmt: skip
HIDDEN_PATHS = frozenset({"holder.codeMasked"})  # the twin: its holder.code row shows it
_ID_LIKE = re.compile(r"\d{17}[\dX]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# ─── masking ─────────────────────────────────────────────────────────────────────────────


def _looks_like_id_number(text: str) -> bool:
    if not _ID_LIKE.fullmatch(text):
        return False
    try:
        parse_id_number(text)
    except IdentifierError:
        return False
    return True


def is_personal(path: str, text: str) -> bool:
    """Whether the value at `path` is masked by default."""
    if _looks_like_id_number(text):
        return True
    if path in CLEAR_PATHS:
        return False
    if path.startswith("ext."):
        return path[4:].split(".", 1)[0] not in CLEAR_EXT
    return True


def mask_text(text: str) -> str:
    """The first and last character kept (`张*丰`); two characters keep the first (`张*`)."""
    if len(text) <= 1:
        return "*" * len(text)
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def mask_value(path: str, text: str) -> str:
    """The masked form of a personal value (see the module's docstring)."""
    if path == "holder.code" or _looks_like_id_number(text):
        return mask_code(text)
    if _DATE.fullmatch(text):
        return "****-**-**"
    return mask_text(text)


def display_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "；".join(display_text(v) for v in value)
    if isinstance(value, dict):
        if all(isinstance(k, int) for k in value):
            return "；".join(display_text(value[k]) for k in sorted(value))
        return "；".join(f"{k}：{display_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


@dataclass(frozen=True)
class FieldRow:
    path: str
    label: str
    value: str  # masked unless unmasked
    personal: bool
    masked: bool


def _paths(fields: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """(path, value) of the fields one row each: holder.* and issuer.* by key, ext.* by key
    (a list or an object is one row)."""
    for key, value in fields.items():
        if isinstance(value, dict) and key in ("holder", "issuer", "ext"):
            for sub, item in value.items():
                yield f"{key}.{sub}", item
        else:
            yield key, value


def field_rows(
    fields: Mapping[str, Any], type_code: str, lang: str, *, unmasked: bool = False
) -> list[FieldRow]:
    """The certificate's fields as labelled rows in the type's order, personal ones masked
    unless `unmasked`."""
    order = {path: i for i, path in enumerate(known_paths(type_code))}
    rows = []
    for path, value in _paths(fields):
        if path in HIDDEN_PATHS:
            continue
        text = display_text(value)
        personal = bool(text) and is_personal(path, text)
        shown = text if (unmasked or not personal) else mask_value(path, text)
        rows.append(
            FieldRow(path, field_label(type_code, path, lang), shown, personal, personal and not unmasked)
        )
    rows.sort(key=lambda r: order.get(r.path, len(order)))
    return rows


# ─── search ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SearchQuery:
    identifier: str = ""
    number: str = ""
    holder_name: str = ""
    holder_code: str = ""
    issued_from: dt.date | None = None  # the day the issuer stored it (UTC), inclusive
    issued_to: dt.date | None = None  # inclusive
    type_code: str = ""
    status: str = ""
    job: str = ""

    @property
    def blind(self) -> list[tuple[str, str]]:
        return [(kind, value) for kind, value in
                ((NUMBER, self.number), (HOLDER_NAME, self.holder_name), (HOLDER_CODE, self.holder_code))
                if value.strip()]  # fmt: skip


@dataclass(frozen=True)
class Hit:
    identifier: str
    type_code: str
    state: str
    status: str
    created_at: dt.datetime
    holder_name: str  # masked
    holder_code: str  # masked
    number: str  # masked if it reads as an ID number


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    page: int
    has_next: bool


class CertificatePages:
    """The console's reads of one issuer's database (every call names the agency)."""

    def __init__(self, sessions: sessionmaker[Session], data_key: bytes, index: BlindIndex | None) -> None:
        self._sessions = sessions
        self._cipher = DataCipher(data_key)
        self.index = index

    def fields(self, cert: Certificate) -> dict[str, Any]:
        leaves = open_fields(self._cipher, cert.sealed_fields, cert.identifier)
        return unflatten((leaf.path, leaf_value(leaf)) for leaf in leaves)

    def search(self, agency: str, query: SearchQuery, page: int = 1, per_page: int = PER_PAGE) -> Page:
        page = max(page, 1)
        statement = select(Certificate).where(Certificate.agency_code == agency)
        if query.identifier.strip():
            statement = statement.where(Certificate.identifier == query.identifier.strip().upper())
        for kind, value in query.blind:
            digest = self.index.digest(agency, kind, value) if self.index else None
            column = getattr(Certificate, COLUMNS[kind])
            statement = statement.where(column == digest if digest is not None else sql_false())
        if query.issued_from is not None:
            statement = statement.where(Certificate.created_at >= _day_start(query.issued_from))
        if query.issued_to is not None:
            statement = statement.where(
                Certificate.created_at < _day_start(query.issued_to + dt.timedelta(days=1))
            )
        if query.type_code:
            statement = statement.where(Certificate.type_code == query.type_code)
        if query.status:
            statement = statement.where(Certificate.status == query.status)
        if query.job.strip():
            statement = statement.where(Certificate.job_id == query.job.strip())
        statement = (
            statement.order_by(Certificate.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
        )
        with self._sessions() as session:
            certs = session.scalars(statement).all()
            hits = [self._hit(cert) for cert in certs[:per_page]]
        return Page(hits, page, len(certs) > per_page)

    def _hit(self, cert: Certificate) -> Hit:
        fields = self.fields(cert)
        holder = fields.get("holder") or {}
        name, number = display_text(holder.get("name")), display_text(fields.get("number"))
        return Hit(
            cert.identifier, cert.type_code, cert.state, cert.status, as_utc(cert.created_at),
            mask_text(name), str(holder.get("codeMasked") or mask_code(display_text(holder.get("code")))),
            mask_value("number", number) if _looks_like_id_number(number) else number,
        )  # fmt: skip

    def type_codes(self, agency: str) -> list[str]:
        with self._sessions() as session:
            return sorted(
                session.scalars(
                    select(Certificate.type_code).where(Certificate.agency_code == agency).distinct()
                )
            )

    # ─── jobs ────────────────────────────────────────────────────────────────────────────

    def jobs(self, agency: str, page: int = 1, per_page: int = PER_PAGE) -> tuple[list[JobRow], bool]:
        page = max(page, 1)
        with self._sessions() as session:
            found = session.scalars(
                select(Job).where(Job.agency_code == agency).order_by(Job.created_at.desc(), Job.id)
                .offset((page - 1) * per_page).limit(per_page + 1)
            ).all()  # fmt: skip
            jobs = found[:per_page]
            ids = [job.id for job in jobs]
            counts: dict[str, dict[str, int]] = {job_id: {} for job_id in ids}
            if ids:
                for job_id, state, n in session.execute(
                    select(Certificate.job_id, Certificate.state, func.count())
                    .where(Certificate.job_id.in_(ids)).group_by(Certificate.job_id, Certificate.state)
                ):  # fmt: skip
                    counts[job_id][state] = n
                for job_id, n in session.execute(
                    select(JobError.job_id, func.count())
                    .where(JobError.job_id.in_(ids))
                    .group_by(JobError.job_id)
                ):
                    counts[job_id]["failed"] = n
            rows = [
                JobRow(job.id, job.type_code, job.total, as_utc(job.created_at), counts[job.id])
                for job in jobs
            ]
        return rows, len(found) > per_page

    # ─── one certificate ─────────────────────────────────────────────────────────────────

    def certificate(self, agency: str, identifier: str) -> CertificateView | None:
        with self._sessions() as session:
            cert = session.scalar(
                select(Certificate).where(
                    Certificate.identifier == identifier, Certificate.agency_code == agency
                )
            )
            if cert is None:
                return None
            batch = session.get(Batch, cert.batch_id) if cert.batch_id else None
            return CertificateView(
                identifier=cert.identifier, type_code=cert.type_code, state=cert.state, status=cert.status,
                status_reason=cert.status_reason, status_note=cert.status_note, job_id=cert.job_id,
                version=cert.version, created_at=as_utc(cert.created_at), previous=cert.previous_identifier,
                superseded_by=cert.superseded_by, claim_expires_at=_maybe_utc(cert.claim_expires_at),
                claimed_at=_maybe_utc(cert.claimed_at), fields=self.fields(cert),
                anchor=_anchor(session, batch), history=_history(session, agency, cert, batch),
            )  # fmt: skip


@dataclass(frozen=True)
class JobRow:
    id: str
    type_code: str
    total: int
    created_at: dt.datetime
    counts: dict[str, int]

    @property
    def state(self) -> str:
        """Where the job is: the least advanced state any of its certificates is in."""
        for state in ("pending", "sealed", "anchored"):
            if self.counts.get(state):
                return state
        if self.counts.get("confirmed"):
            return "confirmed"
        if self.counts.get("refused"):
            return "refused"
        return "failed" if self.counts.get("failed") else "pending"


@dataclass(frozen=True)
class Anchor:
    state: str
    tx_hash: str | None
    block_number: int | None
    root: str
    index: int | None
    confirmed_at: dt.datetime | None
    refusal: str | None


@dataclass(frozen=True)
class Event:
    """One line of a certificate's history: `kind` names it (console_text `ev_<kind>`)."""

    at: dt.datetime | None
    kind: str
    actor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CertificateView:
    identifier: str
    type_code: str
    state: str
    status: str
    status_reason: int | None
    status_note: str | None
    job_id: str
    version: int
    created_at: dt.datetime
    previous: str | None
    superseded_by: str | None
    claim_expires_at: dt.datetime | None
    claimed_at: dt.datetime | None
    fields: dict[str, Any]
    anchor: Anchor | None
    history: list[Event]
    verifications: int | None = None  # the issuer does not see verifications (verifier nodes do)


def _maybe_utc(moment: dt.datetime | None) -> dt.datetime | None:
    return as_utc(moment) if moment is not None else None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _anchor(session: Session, batch: Batch | None) -> Anchor | None:
    if batch is None:
        return None
    return Anchor(batch.state, batch.tx_hash, batch.block_number, "0x" + batch.root.hex(), None,
                  _maybe_utc(batch.confirmed_at), batch.refusal)  # fmt: skip


AUDITED = ("issue", "print", "unmask", "propose", "approve", "reject", "status_change")


def _history(session: Session, agency: str, cert: Certificate, batch: Batch | None) -> list[Event]:
    """Issued; sealed and anchored (the batch's events: mined, confirmed, reorgs, refusals);
    status proposals and their decisions; every staff action on it in the audit trail."""
    events = [Event(as_utc(cert.created_at), "issued", None, {"job": cert.job_id, "version": cert.version})]
    if batch is not None:
        batch_events = session.scalars(
            select(BatchEvent).where(BatchEvent.batch_id == batch.id).order_by(BatchEvent.id)
        )
        events.extend(
            Event(as_utc(e.at), "batch", None, {
                "from": e.from_state, "to": e.to_state, "reason": e.reason, "block": e.block_number,
                "tx": batch.tx_hash if e.to_state in ("mined", "confirmed") else None})
            for e in batch_events
        )  # fmt: skip
    events.extend(proposal_events(session, cert))
    for entry in session.scalars(
        select(AuditLogEntry)
        .where(AuditLogEntry.agency == agency, AuditLogEntry.subject == cert.identifier,
               AuditLogEntry.action.in_(AUDITED))
        .order_by(AuditLogEntry.seq)
    ):  # fmt: skip
        details = _json(entry.details)
        keys: tuple[str, ...] = ("reason", "fields", "status", "what", "jobId")
        shown: dict[str, Any] = {k: details[k] for k in keys if k in details}
        events.append(Event(as_utc(entry.at), f"audit_{entry.action}", entry.actor, shown))
    events.sort(key=lambda e: e.at or dt.datetime.min.replace(tzinfo=dt.UTC))
    return events


def proposal_events(session: Session, cert: Certificate) -> list[Event]:
    """The status proposals naming this certificate (`issuer.proposals`: who proposed, who
    approved or rejected, and why). The hook reads the proposal tables only if they exist."""
    proposal = getattr(models, "StatusProposal", None)
    item = getattr(models, "StatusProposalItem", None)
    if proposal is None or item is None:
        return []
    staff = models.StaffMember
    names = {
        m.id: m.username for m in session.scalars(select(staff).where(staff.agency_code == cert.agency_code))
    }
    events = []
    rows: Sequence[Any] = session.scalars(
        select(proposal).join(item, item.proposal_id == proposal.id).where(item.certificate_id == cert.id)
        .order_by(proposal.id)
    ).all()  # fmt: skip
    for p in rows:
        events.append(Event(_maybe_utc(p.created_at), "proposed", names.get(p.proposer_id),
                            {"action": p.action, "reason": p.reason, "note": p.note, "proposal": p.id}))  # fmt: skip
        if p.decided_at is not None:
            kind = "rejected" if p.state == "rejected" else "approved"
            events.append(Event(_maybe_utc(p.decided_at), kind, names.get(p.approver_id),
                                {"action": p.action, "proposal": p.id, "note": p.reject_reason}))  # fmt: skip
        if getattr(p, "finished_at", None) is not None and p.state in ("confirmed", "failed"):
            events.append(Event(_maybe_utc(p.finished_at), f"proposal_{p.state}", None,
                                {"action": p.action, "proposal": p.id}))  # fmt: skip
    return events


def _json(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
