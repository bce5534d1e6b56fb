"""Correction requests: a holder flags a wrong field of a certificate, or asks for its renewal,
with a message; the wallet sends it to the issuing agency with the full holder package (every
salt: the proof of possession) and the holder's ID number, and keeps the request, its token
(encrypted: it is the only key to the answer) and the last known answer. Opening the list asks
the issuer again about the requests still waiting (a few, briefly); a renewal that fixed one is
kept as the holder's certificate the same way a claim keeps one, linked to the version it replaces."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.identifiers import parse_licence_id
from registry.certificate.labels import is_technical
from registry.certificate.presentation import Presentation
from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotFound
from wallet.holders import HolderView
from wallet.models import CorrectionRequest
from wallet.services import IssuerClient, ServiceRefused, ServiceUnavailable, VerifierClient
from wallet.sharing import FieldChoice, field_choices
from wallet.vault import Card, Vault

log = logging.getLogger(__name__)
KINDS = ("field", "renewal")
STATUSES = ("open", "fixed", "refused")
MAX_MESSAGE = 1000
REFRESH_LIMIT = 10  # requests asked about per page view: the open ones, newest first
REFRESH_TIMEOUT_S = 3.0  # a page does not wait longer than this per request for the issuer
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Not offered on the form: the twin shown instead of the ID number (flag `holder.code`) and the
# certificate's own identity, which a correction makes anew.
NOT_CORRECTABLE = ("holder.codeMasked", "identifier", "previousIdentifier")

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class CorrectionView:
    """A request as the wallet last knew it; `answer` is the agency's reason (refused) or note (fixed)."""

    id: str
    certificate_id: str | None
    identifier: str
    kind: str
    field: str | None
    message: str
    status: str
    created_at: dt.datetime
    due_at: dt.datetime
    answered_at: dt.datetime | None
    answer: str | None
    new_identifier: str | None
    new_certificate_id: str | None
    checked_at: dt.datetime | None

    def overdue(self, now: dt.datetime) -> bool:
        """Still open after the agency's deadline."""
        return self.status == "open" and now >= self.due_at

    def hours_left(self, now: dt.datetime) -> int:
        """Whole hours until the deadline, rounded up (at least 1 while it is not yet due)."""
        return max(1, math.ceil((self.due_at - now).total_seconds() / 3600))

    def state(self, now: dt.datetime) -> str:
        """open | overdue | fixed | refused: what the holder's list shows."""
        return "overdue" if self.overdue(now) else self.status


@dataclass(frozen=True)
class Refreshed:
    """The holder's requests after asking the issuer; `unavailable` when it could not be asked
    (the list then shows the last known answers)."""

    items: list[CorrectionView]
    unavailable: bool
    checked: int


@dataclass(frozen=True)
class Versions:
    """Where a certificate stands among its versions in this wallet."""

    version: int
    replaces: Card | None  # the older version kept in this wallet
    replaces_version: int | None
    replaced_by: Card | None  # the newer version kept in this wallet
    replaced_by_version: int | None


def version_of(identifier: str) -> int:
    try:
        return parse_licence_id(identifier, strict=False).version
    except EcertError:
        return 1


def versions(card: Card, cards: Sequence[Card]) -> Versions:
    """The version of `card` and the versions it replaces and is replaced by, as far as the
    wallet holds them (`previousIdentifier` of the newer package names the older one)."""
    previous = str(card.fields.get("previousIdentifier") or "")
    older = next((c for c in cards if previous and c.identifier == previous), None)
    newer = next((c for c in cards if c.fields.get("previousIdentifier") == card.identifier), None)
    return Versions(
        version_of(card.identifier), older, version_of(older.identifier) if older else (version_of(previous) if previous else None),
        newer, version_of(newer.identifier) if newer else None,
    )  # fmt: skip


def correctable(presentation: Presentation) -> list[FieldChoice]:
    """The fields a holder may flag: those a person reads on the face (not codes and hashes),
    a list item by item (`ext.scope[1]`: the issuer takes a field of the certificate by its path)."""
    paths = set(presentation.paths())
    choices: list[FieldChoice] = []
    for c in field_choices(presentation):
        if is_technical(c.path) or c.path in NOT_CORRECTABLE:
            continue
        if c.path in paths:
            choices.append(c)
        else:  # a list: one choice per item
            choices.extend(
                replace(c, path=f"{c.path}[{i}]", values=(value,)) for i, value in enumerate(c.values)
            )
    return choices


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


class Corrections:
    def __init__(self, sessions: sessionmaker[Session], cipher: DataCipher, issuer: IssuerClient, vault: Vault,
                 verifier: VerifierClient, *, clock: Clock | None = None) -> None:  # fmt: skip
        self._sessions = sessions
        self._cipher = cipher
        self._issuer = issuer
        self._vault = vault
        self._verifier = verifier
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        return self._clock()

    # ─── ask ─────────────────────────────────────────────────────────────────────────────

    def request(self, holder: HolderView, card: Card, kind: str, field: str | None, message: str,
                nonce: str | None = None) -> CorrectionView:  # fmt: skip
        """Send the request to the issuing agency and keep it. `nonce` is the form's: the same
        form posted twice (a double tap, a retry after a time-out) is one request at the issuer.
        ServiceUnavailable if the issuer cannot be reached (nothing is kept: the page keeps the
        holder's draft); ServiceRefused with the issuer's code if it refuses."""
        message = message.strip()
        if kind not in KINDS:
            raise EcertError("Choose a field or renewal", code=ErrorCode.REQUEST_INVALID, field="target")
        if kind == "field":
            if field not in {c.path for c in correctable(card.presentation)}:
                raise EcertError(
                    "That field is not on this certificate", code=ErrorCode.FIELD_UNKNOWN, field="target"
                )
        else:
            field = None
        if not message or len(message) > MAX_MESSAGE:
            raise EcertError(
                f"Say what is wrong (1 to {MAX_MESSAGE} characters)", code=ErrorCode.REQUEST_INVALID, field="message"
            )  # fmt: skip
        # The issuer's idempotency key: bound to the holder, so no one can replay another's form.
        key = (
            hashlib.sha256(f"wallet-correction:{holder.holder_ref}:{nonce}".encode()).hexdigest()[:48]
            if nonce and NONCE.fullmatch(nonce)
            else None
        )
        answer = self._issuer.request_correction(
            card.presentation.to_json(), holder.id_number, kind, field, message, key
        )
        request_id, token = str(answer.get("id") or ""), str(answer.get("token") or "")
        created, due = _moment(answer.get("createdAt")), _moment(answer.get("dueAt"))
        if not request_id or len(request_id) > 64 or created is None or due is None:
            raise ServiceUnavailable(
                "The issuer answered a correction request the wallet cannot read", code=ErrorCode.ISSUER_UNAVAILABLE
            )  # fmt: skip
        with self._sessions.begin() as session:
            row = session.get(CorrectionRequest, request_id)
            if row is not None:  # the same form again: the issuer answered its first request
                if row.holder_id != holder.id:
                    raise NotFound("No such correction request", code=ErrorCode.NOT_FOUND)
                return self._view(row)
            if not token:
                raise ServiceUnavailable(
                    "The issuer sent no token for the request", code=ErrorCode.ISSUER_UNAVAILABLE
                )
            row = CorrectionRequest(
                id=request_id, holder_id=holder.id, certificate_id=card.id,
                identifier=str(answer.get("identifier") or card.identifier)[:120],
                token_enc=self._cipher.encrypt(token.encode(), f"wallet-correction:{request_id}:token"),
                kind=kind, field=field,
                message_enc=self._cipher.encrypt(message.encode(), f"wallet-correction:{request_id}:message"),
                status="open", created_at=created, due_at=due, checked_at=self._clock(),
            )  # fmt: skip
            session.add(row)
        return self._view(row)

    # ─── read ────────────────────────────────────────────────────────────────────────────

    def _view(self, row: CorrectionRequest) -> CorrectionView:
        message = self._cipher.decrypt(row.message_enc, f"wallet-correction:{row.id}:message").decode()
        answer = (
            self._cipher.decrypt(row.answer_enc, f"wallet-correction:{row.id}:answer").decode()
            if row.answer_enc is not None
            else None
        )
        return CorrectionView(
            row.id, row.certificate_id, row.identifier, row.kind, row.field, message, row.status,
            as_utc(row.created_at), as_utc(row.due_at), as_utc(row.answered_at) if row.answered_at else None,
            answer, row.new_identifier, row.new_certificate_id, as_utc(row.checked_at) if row.checked_at else None,
        )  # fmt: skip

    def list(self, holder_id: int) -> list[CorrectionView]:
        """The holder's requests, newest first."""
        with self._sessions() as session:
            rows = session.scalars(select(CorrectionRequest).where(CorrectionRequest.holder_id == holder_id)
                                   .order_by(CorrectionRequest.created_at.desc())).all()  # fmt: skip
        return [self._view(row) for row in rows]

    def get(self, holder_id: int, request_id: str) -> CorrectionView:
        """The holder's request; another holder's or an unknown id are the same NOT_FOUND."""
        with self._sessions() as session:
            row = session.get(CorrectionRequest, request_id) if len(request_id) <= 64 else None
        if row is None or row.holder_id != holder_id:
            raise NotFound("No such correction request", code=ErrorCode.NOT_FOUND)
        return self._view(row)

    # ─── the agency's answer ─────────────────────────────────────────────────────────────

    def _waiting(self, item: CorrectionView) -> bool:
        """Worth asking the issuer about: not answered yet, or fixed with the new version not yet kept."""
        return item.status == "open" or (item.status == "fixed" and item.new_certificate_id is None)

    def refresh(self, holder: HolderView, *, only: str | None = None, limit: int = REFRESH_LIMIT,
                timeout_s: float = REFRESH_TIMEOUT_S) -> Refreshed:  # fmt: skip
        """Ask the issuer about the holder's waiting requests (at most `limit`, newest first, or
        just `only`); once it does not answer, the rest keep their last known state."""
        items = self.list(holder.id)
        waiting = [i for i in items if self._waiting(i) and (only is None or i.id == only)][:limit]
        unavailable, checked = False, 0
        for item in waiting:
            try:
                self._refresh_one(holder, item, timeout_s)
                checked += 1
            except ServiceUnavailable as exc:
                log.warning("correction requests not refreshed: %s", exc.code)
                unavailable = True
                break
            except ServiceRefused as exc:  # e.g. 404: the issuer no longer knows it; keep what we know
                log.warning("correction request %s not refreshed: %s", item.id, exc.code)
        return Refreshed(self.list(holder.id) if checked else items, unavailable, checked)

    def _refresh_one(self, holder: HolderView, item: CorrectionView, timeout_s: float) -> None:
        with self._sessions() as session:
            row = session.get_one(CorrectionRequest, item.id)
            token = self._cipher.decrypt(row.token_enc, f"wallet-correction:{row.id}:token").decode()
        answer = self._issuer.correction(item.id, token, timeout_s=timeout_s)
        status = str(answer.get("status") or "")
        new_card_id: str | None = None
        package = answer.get("package")
        if status == "fixed" and isinstance(package, dict) and item.new_certificate_id is None:
            new_card_id = self._keep_renewal(holder, package)
        with self._sessions.begin() as session:
            row = session.get_one(CorrectionRequest, item.id)
            if status in STATUSES:
                row.status = status
            row.answered_at = _moment(answer.get("answeredAt")) or row.answered_at
            reason = answer.get("reason")
            if isinstance(reason, str) and reason:
                row.answer_enc = self._cipher.encrypt(reason.encode(), f"wallet-correction:{row.id}:answer")
            new_identifier = answer.get("newIdentifier")
            if isinstance(new_identifier, str) and new_identifier:
                row.new_identifier = new_identifier[:120]
            if new_card_id is not None:
                row.new_certificate_id = new_card_id
            due = _moment(answer.get("dueAt"))
            if due is not None:
                row.due_at = due
            row.checked_at = self._clock()

    def _keep_renewal(self, holder: HolderView, package: dict[str, Any]) -> str | None:
        """Keep the renewed package as the holder's certificate (as a claim does: it must hash to
        its digest and name this holder), and tell the verifier node the wallet holds it."""
        try:
            card = self._vault.add(holder, Presentation.from_json(package))
        except EcertError as exc:  # CertificateError, NotAuthorised: not kept, asked again next time
            log.warning("renewed certificate not kept: %s", exc.code)
            return None
        try:
            self._verifier.hold(holder.holder_ref, card.presentation.to_json())
        except EcertError as exc:  # kept all the same: the access log page binds it later
            log.warning("renewed certificate not yet bound at the verifier node: %s", exc.code)
        return card.id
