"""Holdings: which certificates a wallet keeps for which of its holders, and so which access log
it may read for whom.

A wallet binds a certificate to a holder by showing its full holder package (what the issuer
gave at the claim), which must hash to its digest: a disclosure is not enough, since banks and
link visitors are given disclosures. Through a wallet, a holder's access log is the log of the
digests that wallet holds for them and of the shares it made for them; nothing else, and
nothing of another wallet's or another holder's (as unknown: 404, never 403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.presentation import Presentation
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, NotFound, TamperedError
from verifier.models import Holding, Share


@dataclass(frozen=True)
class HoldingView:
    digest: str
    since: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "since": self.since.isoformat()}


class Holdings:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def hold(
        self, wallet_org_id: int, holder_ref: str, presentation: Presentation
    ) -> tuple[HoldingView, bool]:
        """Bind the certificate of this full holder package to the wallet's holder; the binding
        and whether it is new (binding again changes nothing)."""
        if presentation.is_partial:
            raise CertificateError(
                "Send the full holder package the holder claimed, not a disclosure",
                code=ErrorCode.CERT_PARTIAL,
                field="presentation",
            )
        if presentation.computed_digest() != presentation.digest:
            raise TamperedError("The package does not hash to its digest", field="presentation")
        digest = "0x" + presentation.digest.hex()
        key = (wallet_org_id, holder_ref, digest)
        with self._sessions() as session:
            found = session.get(Holding, key)
        if found is not None:
            return HoldingView(digest, as_utc(found.created_at)), False
        row = Holding(wallet_org_id=wallet_org_id, holder_ref=holder_ref, digest=digest,
                      created_at=dt.datetime.now(dt.UTC))  # fmt: skip
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:  # the same binding, made by a request at the same moment
            with self._sessions() as session:
                found = session.get(Holding, key)
            if found is None:
                raise
            return HoldingView(digest, as_utc(found.created_at)), False
        return HoldingView(digest, as_utc(row.created_at)), True

    def held(self, wallet_org_id: int, holder_ref: str) -> list[HoldingView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Holding)
                .where(Holding.wallet_org_id == wallet_org_id, Holding.holder_ref == holder_ref)
                .order_by(Holding.created_at, Holding.digest)
            ).all()
        return [HoldingView(r.digest, as_utc(r.created_at)) for r in rows]

    def log_scope(
        self,
        wallet_org_id: int,
        holder_ref: str,
        *,
        digests: Iterable[str] = (),
        share_ids: Iterable[str] = (),
    ) -> tuple[list[str], list[str]]:
        """The digests and share ids whose access log this wallet may read for this holder: all
        of them, or only those named, each of which must be theirs (ACCESS_LOG_NOT_FOUND)."""
        with self._sessions() as session:
            held = set(session.scalars(select(Holding.digest).where(
                Holding.wallet_org_id == wallet_org_id, Holding.holder_ref == holder_ref)))  # fmt: skip
            shared = set(session.scalars(select(Share.id).where(
                Share.wallet_org_id == wallet_org_id, Share.holder_ref == holder_ref)))  # fmt: skip
        named_digests, named_shares = list(dict.fromkeys(digests)), list(dict.fromkeys(share_ids))
        if not named_digests and not named_shares:
            return sorted(held), sorted(shared)
        if not held.issuperset(named_digests) or not shared.issuperset(named_shares):
            raise NotFound(
                "No access log of this holder's for that certificate or share at this wallet",
                code=ErrorCode.ACCESS_LOG_NOT_FOUND,
            )
        return named_digests, named_shares
