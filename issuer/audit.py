"""The staff audit log (issue 12, point 6): every staff action — sign-in, issue, unmask,
propose, approve, reject, print, key and staff changes — appended to a hash-chained log, one
chain per agency, whose head is anchored on chain so that a rewritten log is detectable.

Each entry commits to the one before it: `hash = SHA-256(prev_hash ‖ content)`, where `content` is
the RFC 8785 JSON of the entry's `seq`, `at`, `agency`, `actor`, `action`, `subject` and `details`
(`prev_hash` of an agency's first entry is 64 zeros). `verify` walks the chain and names the first
broken link: an entry changed in place (hash mismatch), an entry re-hashed or one before it
changed (prev mismatch), an entry removed (a gap in `seq`), the newest entries removed (the head
row disagrees). An attacker with write access to the database can re-hash the whole chain after
a change; the anchored heads catch that: `anchor` sends the head (entry `seq`'s hash) to the
registry contract (`anchorAuditHead`, event `AuditHeadAnchored`), and `verify` checks every head
anchored before — as recorded in `audit_anchors` and, given the chain, as the chain's own events
say (the database's record of anchors cannot hide one) — against the entry it names.

Appends are safe under concurrency, several threads and several processes (two issuer workers
on one PostgreSQL database, or on one SQLite file): each append is one transaction that first
increments the agency's row in `audit_heads` (a row lock on PostgreSQL, the database's write lock
on SQLite), then reads the head, inserts the entry and stores its hash as the new head. The
unique (agency, seq) constraint would refuse a fork even if that lock were ever bypassed.

Personal data: the log is read by auditors and exported, so entries never hold holder names or
ID numbers in clear. Name a certificate by its identifier (`subject`), a staff member by username,
an API key by `api-key:<id>`, an operator's command by `cli:<OS user>`; `append` refuses a subject
or details that hold what looks like a 公民身份号码 (a GB 11643 number with a valid check character).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import getpass
import hashlib
import io
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import rfc8785
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from issuer.models import AuditAnchor, AuditHead, AuditLogEntry
from registry.certificate.identifiers import parse_id_number
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import EcertError, IdentifierError, KeystoreError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from registry.contracts.certificate_registry import AnchoredAuditHead, CertificateRegistry

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # prev_hash of an agency's first entry
FORMAT_VERSION = 1  # in every entry's hashed content: a change of the content's shape bumps it
SYSTEM = "system"
API_KEY_PREFIX = "api-key:"
ACTOR = re.compile(r"^[^\s\x00-\x1f]{1,200}$")
CLI_PREFIX = "cli:"
ID_NUMBER_LIKE = re.compile(r"(?=(\d{17}[\dXx]))")  # overlapping: every 18-character run is tried
# an old 15-digit number: 6 region digits, a yymmdd birth date, 3 more digits
OLD_ID_NUMBER_LIKE = re.compile(r"(?<!\d)\d{6}\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}(?!\d)")
MAX_DETAILS = 16_000  # characters of canonical JSON: an entry records an action, not a payload


class AuditAction(enum.StrEnum):
    """What a staff member (or an API key, or the issuer itself) did."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    ISSUE = "issue"
    UNMASK = "unmask"  # personal fields of a certificate shown in clear
    PROPOSE = "propose"  # a change that needs a second person (four-eyes)
    APPROVE = "approve"
    REJECT = "reject"
    PRINT = "print"
    STATUS_CHANGE = "status_change"  # suspend, reinstate, revoke
    KEY_CHANGE = "key_change"  # agency signing keys and API keys
    STAFF_CHANGE = "staff_change"  # accounts, roles, second factors
    EXPORT = "export"  # the audit log or certificates exported
    CORRECTION_FIX = "correction_fix"  # a holder's correction request answered by a renewal
    CORRECTION_REFUSE = "correction_refuse"  # a holder's correction request refused, with a reason


@dataclass(frozen=True)
class AuditEntry:
    """One entry as stored (`details` parsed)."""

    id: int
    seq: int
    at: dt.datetime
    agency: str
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = _time_text(self.at)
        return data


@dataclass(frozen=True)
class BrokenLink:
    """The first place an agency's chain does not hold. `reason` is one of hash_mismatch,
    prev_mismatch, gap, head_mismatch, anchor_mismatch, anchor_beyond_log."""

    agency: str
    id: int | None  # the entry's row id (None: no such entry, e.g. removed)
    seq: int
    reason: str
    message: str


@dataclass(frozen=True)
class Verification:
    """The outcome of `AuditLog.verify` for one agency."""

    agency: str
    count: int  # entries walked
    head: str | None  # hash of the newest entry walked
    anchors_checked: int
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class AnchorRecord:
    """An anchored head as recorded in `audit_anchors`."""

    agency: str
    seq: int
    head: str
    tx_hash: str
    block_number: int
    anchored_at: dt.datetime


# ─── hashing ─────────────────────────────────────────────────────────────────────────────


def operator_actor() -> str:
    """The actor of a command run at the server (`cli:<OS user>`): the operating-system account
    is who is accountable for an `ecert issuer …` command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid-{os.getuid()}"
    return CLI_PREFIX + (re.sub(r"[\s\x00-\x1f]", "_", user)[:100] or "unknown")


def _time_text(moment: dt.datetime) -> str:
    """The one text of an entry's time in its hash: UTC, microseconds, `Z`."""
    return as_utc(moment).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_bytes(
    seq: int, at: dt.datetime, agency: str, actor: str, action: str, subject: str | None, details: Any
) -> bytes:
    """The RFC 8785 JSON of an entry's content: what its hash commits to, with `prev_hash`."""
    return rfc8785.dumps(
        {"v": FORMAT_VERSION, "seq": seq, "at": _time_text(at), "agency": agency, "actor": actor,
         "action": action, "subject": subject, "details": details}
    )  # fmt: skip


def entry_hash(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


def _recomputed(row: AuditLogEntry) -> str | None:
    """The hash `row` should have, or None when its stored content cannot even be read."""
    try:
        details = json.loads(row.details)
        # the stored text must be the canonical text: another spelling of "the same" details
        # (a duplicate key, which SQL's JSON functions read otherwise) is a change
        if rfc8785.dumps(details).decode() != row.details:
            return None
        content = content_bytes(row.seq, row.at, row.agency, row.actor, row.action, row.subject, details)
        return entry_hash(row.prev_hash, content)
    except (ValueError, TypeError, rfc8785.CanonicalizationError):
        return None


# ─── checks of what is appended ──────────────────────────────────────────────────────────


def _check_action(action: str) -> str:
    try:
        return AuditAction(action).value
    except ValueError:
        known = ", ".join(a.value for a in AuditAction)
        raise EcertError(
            f"Unknown audit action {action!r}: use one of {known}", code=ErrorCode.AUDIT_ACTION_INVALID
        ) from None


def _looks_like_id_number(text: str) -> bool:
    """Any 公民身份号码 inside the text, however spelt: full-width digits, spaces or hyphens
    between groups, letters around it (a 15-digit old-style number too)."""
    folded = re.sub(r"[\s\-_]", "", unicodedata.normalize("NFKC", text))
    if OLD_ID_NUMBER_LIKE.search(folded):
        return True
    for match in ID_NUMBER_LIKE.finditer(folded):
        try:
            parse_id_number(match.group(1).upper())
            return True
        except IdentifierError:
            continue
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _check_entry(agency: str, actor: str, subject: str | None, details: dict[str, Any]) -> str:
    """The canonical JSON text of `details`, once the entry is known to be fit to log."""
    if not re.fullmatch(r"[0-9A-Z]{18}", agency):
        raise EcertError(
            f"Not an agency code: {agency!r}", code=ErrorCode.AUDIT_ENTRY_INVALID, field="agency"
        )
    if not ACTOR.match(actor):
        raise EcertError(
            "The actor is a staff username, api-key:<id>, cli:<user> or system (no spaces, at most 200 characters)",
            code=ErrorCode.AUDIT_ENTRY_INVALID, field="actor",
        )  # fmt: skip
    if subject is not None and not 0 < len(subject) <= 200:
        raise EcertError(
            "The subject is 1 to 200 characters", code=ErrorCode.AUDIT_ENTRY_INVALID, field="subject"
        )
    if not isinstance(details, dict):
        raise EcertError("Details are a JSON object", code=ErrorCode.AUDIT_ENTRY_INVALID, field="details")
    try:
        text = rfc8785.dumps(details).decode()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EcertError(
            f"Details are not plain JSON: {exc}", code=ErrorCode.AUDIT_ENTRY_INVALID, field="details"
        ) from exc
    if len(text) > MAX_DETAILS:
        raise EcertError(
            f"Details take {len(text)} characters, more than {MAX_DETAILS}",
            code=ErrorCode.AUDIT_ENTRY_INVALID, field="details",
        )  # fmt: skip
    for where, texts in (("subject", [subject or ""]), ("details", _strings(details))):
        if any(_looks_like_id_number(t) for t in texts):
            raise EcertError(
                f"{'The subject holds' if where == 'subject' else 'The details hold'} what looks like a 公民身份号码: "
                "the audit log names a certificate "
                "by its identifier, never a holder",
                code=ErrorCode.AUDIT_ENTRY_INVALID, field=where,
            )  # fmt: skip
    return text


def _entry(row: AuditLogEntry) -> AuditEntry:
    return AuditEntry(
        row.id, row.seq, as_utc(row.at), row.agency, row.actor, row.action, row.subject,
        json.loads(row.details), row.prev_hash, row.hash,
    )  # fmt: skip


# ─── the log ─────────────────────────────────────────────────────────────────────────────


class AuditLog:
    """Append to, read, verify and anchor the agencies' audit logs in the issuer's database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def append(
        self, agency: str, actor: str, action: str, subject: str | None, details: dict[str, Any]
    ) -> AuditEntry:
        """Append one action to `agency`'s log and return the entry.

        `actor`: a staff username, `api-key:<id>`, `cli:<user>` or `system`. `action`: an `AuditAction`
        value. `subject`: what was acted on — a certificate identifier, a job id, a staff
        username, a key address — or None. `details`: a JSON object of whatever else matters
        (a reason code, a count, the fields unmasked by path); never personal data in clear:
        no holder names, no ID numbers (refused when recognised), the certificate identifier
        instead. Safe to call from many threads and processes at once.
        """
        action = _check_action(action)
        details_text = _check_entry(agency, actor, subject, details)
        parsed = json.loads(details_text)
        for _ in range(3):  # the head row is made on an agency's first append, by one of the racers
            with self._sessions.begin() as session:
                locked = session.execute(
                    update(AuditHead).where(AuditHead.agency == agency).values(seq=AuditHead.seq + 1)
                )
                if getattr(locked, "rowcount", 0) == 1:
                    seq, prev = session.execute(
                        select(AuditHead.seq, AuditHead.hash).where(AuditHead.agency == agency)
                    ).one()
                    at = self._clock().astimezone(dt.UTC)
                    digest = entry_hash(prev, content_bytes(seq, at, agency, actor, action, subject, parsed))
                    row = AuditLogEntry(
                        agency=agency, seq=seq, at=at, actor=actor, action=action, subject=subject,
                        details=details_text, prev_hash=prev, hash=digest,
                    )  # fmt: skip
                    session.add(row)
                    session.flush()
                    session.execute(update(AuditHead).where(AuditHead.agency == agency).values(hash=digest))
                    return AuditEntry(row.id, seq, at, agency, actor, action, subject, parsed, prev, digest)
            self._make_head(agency)
        raise EcertError(f"Could not start the audit log of {agency}", code=ErrorCode.INTERNAL)

    def _make_head(self, agency: str) -> None:
        try:
            with self._sessions.begin() as session:
                session.add(AuditHead(agency=agency, seq=0, hash=GENESIS))
        except IntegrityError:
            pass  # another append made it first

    # ─── reading ─────────────────────────────────────────────────────────────────────────

    def agencies(self) -> list[str]:
        """Every agency with a log (or whose log's head row is left)."""
        with self._sessions() as session:
            logged = set(session.scalars(select(AuditLogEntry.agency).distinct()))
            logged |= set(session.scalars(select(AuditHead.agency)))
        return sorted(logged)

    def logged_agencies(self) -> list[str]:
        """The agencies with a head row: one row each, cheap enough to ask every minute."""
        with self._sessions() as session:
            return sorted(session.scalars(select(AuditHead.agency).where(AuditHead.seq > 0)))

    def head(self, agency: str) -> tuple[int, str]:
        """(seq, hash) of `agency`'s newest entry; (0, GENESIS) for an empty log."""
        with self._sessions() as session:
            row = session.execute(
                select(AuditHead.seq, AuditHead.hash).where(AuditHead.agency == agency)
            ).first()
        return (row[0], row[1]) if row else (0, GENESIS)

    def entries(
        self,
        agency: str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        batch: int = 1000,
    ) -> Iterator[AuditEntry]:
        """Entries in order (agency, seq), filtered; `since` inclusive, `until` exclusive."""
        query = select(AuditLogEntry).order_by(AuditLogEntry.agency, AuditLogEntry.seq)
        if agency is not None:
            query = query.where(AuditLogEntry.agency == agency)
        if since is not None:
            query = query.where(AuditLogEntry.at >= since)
        if until is not None:
            query = query.where(AuditLogEntry.at < until)
        if actor is not None:
            query = query.where(AuditLogEntry.actor == actor)
        if action is not None:
            query = query.where(AuditLogEntry.action == _check_action(action))
        with self._sessions() as session:
            for row in session.scalars(query.execution_options(yield_per=batch)):
                yield _entry(row)

    def anchors(self, agency: str) -> list[AnchorRecord]:
        with self._sessions() as session:
            rows = session.scalars(
                select(AuditAnchor)
                .where(AuditAnchor.agency == agency)
                .order_by(AuditAnchor.seq, AuditAnchor.id)
            ).all()
        return [
            AnchorRecord(r.agency, r.seq, r.head, r.tx_hash, r.block_number, as_utc(r.anchored_at))
            for r in rows
        ]

    # ─── verifying ───────────────────────────────────────────────────────────────────────

    def verify(
        self, agency: str, *, chain_heads: Iterable[AnchoredAuditHead] = (), batch: int = 1000
    ) -> Verification:
        """Walk `agency`'s chain from its first entry and return the first broken link, or OK
        with the number of entries and the head hash. Checks each entry's hash, its link to the
        one before, that `seq` has no gap, that the head row agrees with the newest entry, and
        that every anchored head — those recorded in the database and `chain_heads` (what the
        chain says the agency anchored: `CertificateRegistry.audit_heads`) — is still the hash
        of the entry it names."""
        anchored: dict[int, list[tuple[str, str]]] = {}
        for record in self.anchors(agency):
            anchored.setdefault(record.seq, []).append(
                (record.head, f"recorded anchor (tx {record.tx_hash})")
            )
        for event in chain_heads:
            anchored.setdefault(event.count, []).append(
                (
                    event.head.hex(),
                    f"head anchored on chain in tx {event.tx_hash}, block {event.block_number}",
                )
            )
        checked = 0
        count, prev, last_seq = 0, GENESIS, 0

        def broken(row_id: int | None, seq: int, reason: str, message: str) -> Verification:
            return Verification(
                agency,
                count,
                prev if count else None,
                checked,
                BrokenLink(agency, row_id, seq, reason, message),
            )

        query = (
            select(AuditLogEntry)
            .where(AuditLogEntry.agency == agency)
            .order_by(AuditLogEntry.seq)
            .execution_options(yield_per=batch)
        )
        with self._sessions() as session:
            for row in session.scalars(query):
                expected = last_seq + 1
                if row.seq != expected:
                    missing = f"{expected}" if row.seq == expected + 1 else f"{expected} to {row.seq - 1}"
                    return broken(row.id, expected, "gap",
                                  f"entry {missing} is missing before entry {row.seq} (id {row.id}): removed from the log")  # fmt: skip
                if row.prev_hash != prev:
                    return broken(row.id, row.seq, "prev_mismatch",
                                  f"entry {row.seq} (id {row.id}) does not link to the entry before it: "
                                  f"prev_hash {row.prev_hash}, but that entry's hash is {prev}")  # fmt: skip
                recomputed = _recomputed(row)
                if recomputed != row.hash:
                    return broken(row.id, row.seq, "hash_mismatch",
                                  f"entry {row.seq} (id {row.id}) was changed: its content does not hash to its stored hash {row.hash}")  # fmt: skip
                for head, where in anchored.pop(row.seq, []):
                    checked += 1
                    if head != row.hash:
                        return broken(row.id, row.seq, "anchor_mismatch",
                                      f"entry {row.seq} (id {row.id}) hashes to {row.hash}, but the {where} "
                                      f"says {head}: the log was rewritten up to entry {row.seq}")  # fmt: skip
                count, prev, last_seq = count + 1, row.hash, row.seq
            head_row = session.execute(
                select(AuditHead.seq, AuditHead.hash).where(AuditHead.agency == agency)
            ).first()
        head_seq, head_hash = (head_row[0], head_row[1]) if head_row else (0, GENESIS)
        if (head_seq, head_hash) != (last_seq, prev):
            return broken(None, last_seq + 1 if head_seq > last_seq else head_seq, "head_mismatch",
                          f"the log ends at entry {last_seq} ({prev}), but its head row says entry {head_seq} "
                          f"({head_hash}): newest entries were removed or the head row was changed")  # fmt: skip
        if anchored:
            seq = min(anchored)
            return broken(None, seq, "anchor_beyond_log",
                          f"entry {seq} was anchored ({anchored[seq][0][1]}) but the log ends at entry {last_seq}: "
                          "entries were removed")  # fmt: skip
        return Verification(agency, count, prev if count else None, checked, None)

    # ─── anchoring ───────────────────────────────────────────────────────────────────────

    def latest_anchor(self, agency: str) -> AnchorRecord | None:
        with self._sessions() as session:
            r = session.scalars(
                select(AuditAnchor)
                .where(AuditAnchor.agency == agency)
                .order_by(AuditAnchor.anchored_at.desc(), AuditAnchor.id.desc())
                .limit(1)
            ).first()
        return (
            AnchorRecord(r.agency, r.seq, r.head, r.tx_hash, r.block_number, as_utc(r.anchored_at))
            if r
            else None
        )

    def anchor(
        self, agency: str, registry: CertificateRegistry, signer: LocalAccount, *, force: bool = False
    ) -> AnchorRecord | None:
        """Anchor `agency`'s head on chain with the agency's key and record it; None when the log
        is empty, or (unless `force`) when its head is already anchored."""
        seq, head = self.head(agency)
        latest = self.latest_anchor(agency)
        if seq == 0 or (not force and latest is not None and latest.seq == seq and latest.head == head):
            return None
        receipt = registry.anchor_audit_head(signer, bytes.fromhex(head), seq)
        at = self._clock().astimezone(dt.UTC)
        with self._sessions.begin() as session:
            session.add(AuditAnchor(agency=agency, seq=seq, head=head, tx_hash=receipt.tx_hash,
                                    block_number=receipt.block_number, anchored_at=at))  # fmt: skip
        log.info("anchored the audit log head of %s at entry %d in tx %s", agency, seq, receipt.tx_hash)
        return AnchorRecord(agency, seq, head, receipt.tx_hash, receipt.block_number, at)

    def due(self, agency: str, interval: dt.timedelta, now: dt.datetime | None = None) -> bool:
        """Whether `agency`'s head moved since its last anchor and that anchor is `interval` old."""
        seq, head = self.head(agency)
        if seq == 0:
            return False
        latest = self.latest_anchor(agency)
        if latest is None:
            return True
        if latest.seq == seq and latest.head == head:
            return False
        return (now or self._clock()) - latest.anchored_at >= interval


class AuditAnchorer:
    """The worker's periodic anchor of every agency's audit log head: called after each pass of
    the anchoring loop, it looks at the database at most every `check_every_s` and anchors the
    head of each agency whose key it holds, once it moved and `interval` passed since the last
    anchor (a first anchor at once). Failures are logged and tried at the next check."""

    def __init__(
        self,
        log: AuditLog,
        registry: CertificateRegistry,
        signer_for: Callable[[str], LocalAccount],
        interval: dt.timedelta,
        *,
        check_every_s: float = 60.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._log = log
        self._registry = registry
        self._signer_for = signer_for
        self.interval = interval
        self._check_every = dt.timedelta(seconds=check_every_s)
        self._clock = clock
        self._next_check: dt.datetime | None = None

    def __call__(self) -> int:
        """Anchor what is due; the number of heads anchored."""
        now = self._clock()
        if self.interval <= dt.timedelta(0) or (self._next_check is not None and now < self._next_check):
            return 0
        self._next_check = now + self._check_every
        anchored = 0
        for agency in self._log.logged_agencies():
            try:
                if not self._log.due(agency, self.interval, now):
                    continue
                signer = self._signer_for(agency)
                if self._log.anchor(agency, self._registry, signer) is not None:
                    anchored += 1
            except KeystoreError:
                log.debug("no key of %s in this keystore: its audit log head is anchored elsewhere", agency)
            except Exception:
                log.exception("anchoring the audit log head of %s failed; trying again later", agency)
        return anchored


# ─── export ──────────────────────────────────────────────────────────────────────────────

EXPORT_FIELDS = ("id", "seq", "at", "agency", "actor", "action", "subject", "details", "prev_hash", "hash")


def export_lines(entries: Iterable[AuditEntry], fmt: str) -> Iterator[str]:
    """The entries as CSV (a header, then one row each; details as canonical JSON text) or JSON
    Lines (one object each), line by line. A CSV cell a spreadsheet would run as a formula
    (starting with =, +, -, @) gets a leading quote: such a cell no longer hashes as stored, so
    check hashes against the JSON Lines export."""
    if fmt == "jsonl":
        for entry in entries:
            yield json.dumps(entry.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    if fmt != "csv":
        raise EcertError(f"Unknown export format {fmt!r}: use csv or jsonl", code=ErrorCode.REQUEST_INVALID)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(EXPORT_FIELDS)
    for entry in entries:
        data = entry.to_json()
        data["details"] = rfc8785.dumps(entry.details).decode()
        yield line(_csv_safe(data[name]) for name in EXPORT_FIELDS)


def _csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (=, +, -, @ at the start get a quote)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
