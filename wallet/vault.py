"""The holder's certificates: claimed with a one-time code from the issuer, kept encrypted, shown
only to the holder whose ID number is the certificate's holder code, with the live status from
the verifier node (asked with a minimal disclosure: identifier and validity, never the person)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.model import CODE_TYPE_ID_NUMBER
from registry.certificate.presentation import Presentation
from registry.crypto import DataCipher
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, EcertError, NotAuthorised, NotFound
from wallet.holders import HolderView
from wallet.models import StoredCertificate
from wallet.services import IssuerClient, ServiceRefused, ServiceUnavailable, VerifierClient
from wallet.throttle import Throttle

log = logging.getLogger(__name__)
CLAIM_CODE = re.compile(r"[A-HJ-NP-Z2-9]{4}-?[A-HJ-NP-Z2-9]{4}-?[A-HJ-NP-Z2-9]{4}")
STATUS_PATHS = ("identifier", "validFrom", "validUntil")


@dataclass(frozen=True)
class Card:
    """A certificate in the wallet."""

    id: str
    identifier: str
    type_code: str
    digest: str
    presentation: Presentation
    claimed_at: dt.datetime

    @property
    def fields(self) -> dict[str, Any]:
        return self.presentation.fields()


@dataclass(frozen=True)
class StatusView:
    """What the verifier says now; `verdict` UNAVAILABLE when it could not be asked."""

    verdict: str
    reason: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    block: int | None = None
    checked_at: dt.datetime | None = None


def claim_code_from(text: str) -> str:
    """The code in what the holder typed or scanned (a bare code, or a link/QR text containing one)."""
    cleaned = re.sub(r"[\s\u3000]", "", text or "").upper()
    found = CLAIM_CODE.search(cleaned)
    if not found:
        raise CertificateError(
            "A claim code has 12 letters and digits, e.g. ABCD-EFGH-JKLM",
            code=ErrorCode.CLAIM_CODE_MALFORMED,
            field="code",
        )
    bare = found.group(0).replace("-", "")
    return "-".join(bare[i : i + 4] for i in (0, 4, 8))


class Vault:
    def __init__(self, sessions: sessionmaker[Session], cipher: DataCipher, issuer: IssuerClient, verifier: VerifierClient,
                 throttle: Throttle, *, claim_max_failures: int, status_cache_s: float) -> None:  # fmt: skip
        self._sessions = sessions
        self._cipher = cipher
        self._issuer = issuer
        self._verifier = verifier
        self._throttle = throttle
        self._claim_max_failures = claim_max_failures
        self._status_cache_s = status_cache_s
        self._status: dict[str, tuple[float, StatusView]] = {}
        self._lock = threading.Lock()

    # ─── claim ───────────────────────────────────────────────────────────────────────────

    def claim(self, holder: HolderView, text: str) -> Card:
        """Redeem a claim code at the issuer and keep the certificate if it is this holder's."""
        code = claim_code_from(text)
        # Counted before the issuer is asked (parallel guesses cannot all pass a check made first);
        # given back unless the code was wrong or someone else's.
        attempt = self._throttle.acquire(
            [(f"claim:{holder.holder_ref}", self._claim_max_failures, dt.timedelta(minutes=10))]
        )
        counts = False
        try:
            try:
                package = self._issuer.redeem_claim(code, holder.id_number)
            except ServiceRefused as exc:
                counts = True
                if exc.code == ErrorCode.CLAIM_NOT_YOURS:
                    raise NotAuthorised(
                        "This certificate belongs to someone else: it was not added",
                        code=ErrorCode.CLAIM_NOT_YOURS,
                    ) from exc
                raise EcertError(exc.message, code=exc.code if exc.code in (ErrorCode.CLAIM_INVALID, ErrorCode.CLAIM_EXPIRED) else ErrorCode.CLAIM_INVALID,
                                 field="code") from exc  # fmt: skip
            try:
                presentation = Presentation.from_json(package)
            except CertificateError as exc:
                raise CertificateError(
                    "The issuer sent a package this wallet cannot read", code=ErrorCode.CLAIM_PACKAGE_INVALID
                ) from exc
            try:
                card = self.add(holder, presentation)
            except NotAuthorised:
                counts = True
                raise
        finally:
            if not counts:
                self._throttle.refund(attempt)
        try:
            self._verifier.hold(holder.holder_ref, card.presentation.to_json())
        except EcertError as exc:  # the certificate is kept all the same: `bind` tells the node later
            log.warning("claimed certificate not yet bound at the verifier node: %s", exc.code)
        return card

    def add(self, holder: HolderView, presentation: Presentation) -> Card:
        """Keep a full holder package that hashes to its digest and names this holder."""
        if presentation.is_partial or presentation.computed_digest() != presentation.digest:
            raise CertificateError(
                "The package does not hash to its digest: not kept", code=ErrorCode.CERT_TAMPERED
            )
        holder_fields = presentation.fields().get("holder") or {}
        if (
            holder_fields.get("codeType", CODE_TYPE_ID_NUMBER) != CODE_TYPE_ID_NUMBER
            or holder_fields.get("code") != holder.id_number
        ):
            raise NotAuthorised(
                "This certificate belongs to someone else: it was not added", code=ErrorCode.CLAIM_NOT_YOURS
            )
        digest = "0x" + presentation.digest.hex()
        fields = presentation.fields()
        with self._sessions.begin() as session:
            existing = session.scalar(select(StoredCertificate).where(
                StoredCertificate.holder_id == holder.id, StoredCertificate.digest == digest))  # fmt: skip
            if existing is not None:
                return self._card(existing)
            card_id = secrets.token_hex(16)
            row = StoredCertificate(
                id=card_id, holder_id=holder.id, identifier=str(fields.get("identifier", "")), type_code=str(fields.get("typeCode", "")),
                digest=digest, package_enc=self._cipher.encrypt(json.dumps(presentation.to_json()).encode(), f"wallet-cert:{card_id}"),
                claimed_at=dt.datetime.now(dt.UTC),
            )  # fmt: skip
            session.add(row)
        return self._card(row)

    # ─── read ────────────────────────────────────────────────────────────────────────────

    def _card(self, row: StoredCertificate) -> Card:
        package = json.loads(self._cipher.decrypt(row.package_enc, f"wallet-cert:{row.id}"))
        claimed = row.claimed_at if row.claimed_at.tzinfo else row.claimed_at.replace(tzinfo=dt.UTC)
        return Card(
            row.id, row.identifier, row.type_code, row.digest, Presentation.from_json(package), claimed
        )

    def list(self, holder_id: int) -> list[Card]:
        with self._sessions() as session:
            rows = session.scalars(select(StoredCertificate).where(StoredCertificate.holder_id == holder_id)
                                   .order_by(StoredCertificate.claimed_at.desc())).all()  # fmt: skip
        return [self._card(row) for row in rows]

    def get(self, holder_id: int, card_id: str) -> Card:
        """The holder's certificate; another holder's or an unknown id are the same NOT_FOUND."""
        with self._sessions() as session:
            row = session.get(StoredCertificate, card_id) if len(card_id) <= 32 else None
        if row is None or row.holder_id != holder_id:
            raise NotFound("No such certificate in your wallet", code=ErrorCode.CERT_NOT_FOUND)
        return self._card(row)

    def bind(self, holder: HolderView, cards: Sequence[Card]) -> None:
        """Make sure the verifier node knows this wallet keeps these certificates for the holder
        (claimed while it was unreachable, or before it asked): it shows a holder's access log
        only for those. One refused (which the node would only do to a package it cannot read)
        leaves the others' log readable."""
        held = set(self._verifier.holdings(holder.holder_ref))
        for card in cards:
            if card.digest not in held:
                try:
                    self._verifier.hold(holder.holder_ref, card.presentation.to_json())
                except ServiceRefused as exc:
                    log.warning("certificate %s not bound at the verifier node: %s", card.id, exc.code)

    # ─── status ──────────────────────────────────────────────────────────────────────────

    def status(self, card: Card, *, fresh: bool = False) -> StatusView:
        """The verifier's verdict on this certificate now (cached a few seconds unless `fresh`)."""
        now = time.monotonic()
        with self._lock:
            cached = self._status.get(card.id)
        if cached and not fresh and now - cached[0] < self._status_cache_s:
            return cached[1]
        paths = [p for p in card.presentation.paths() if p in STATUS_PATHS]
        try:
            report = self._verifier.verify(card.presentation.disclose(paths).to_json())
        except (ServiceUnavailable, ServiceRefused) as exc:
            return StatusView("UNAVAILABLE", exc.code)
        view = StatusView(
            str(report.get("verdict", "ERROR")), report.get("reason"), list(report.get("checks") or []),
            report.get("block"), dt.datetime.now(dt.UTC),
        )  # fmt: skip
        with self._lock:
            self._status[card.id] = (now, view)
        return view
