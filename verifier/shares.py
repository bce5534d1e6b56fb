"""Shares: a holder's chosen disclosure behind a ≥128-bit random link that expires, can be
single-use, can be withdrawn, and (dynamic) only opens with a code that changes every 30 s.
A share belongs to the wallet organisation that made it and to the holder it named: no other
wallet, and not that wallet for another holder, can see, list, withdraw or get codes of it.

Only the token's SHA-256 is stored, and the disclosure is encrypted at rest. A share that has
expired or was withdrawn no longer serves its fields: `open` returns its state, not its data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from registry.certificate.presentation import Presentation
from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, EcertError, NotFound
from verifier.models import Share

MIN_LIFETIME = dt.timedelta(minutes=5)
MAX_LIFETIME = dt.timedelta(days=30)
DYNAMIC_WINDOW_S = 30


class ShareNeedsIdentity(EcertError):
    """An anonymous visitor opened a share meant for identified organisations only."""

    code = ErrorCode.SHARE_IDENTIFIED_ONLY


@dataclass(frozen=True)
class ShareState:
    """What a share is now; `presentation` is None unless it may still be shown."""

    id: str
    holder_ref: str
    fields: tuple[str, ...]
    purpose: str
    expires_at: dt.datetime
    single_use: bool
    dynamic: bool
    used: bool
    withdrawn: bool
    expired: bool
    digest: str
    presentation: Presentation | None
    identified_only: bool = False  # an anonymous visitor gets a sign-in prompt, not the fields

    @property
    def problem(self) -> ErrorCode | None:
        """Why the share cannot be shown, as a stable code, or None."""
        if self.withdrawn:
            return ErrorCode.SHARE_WITHDRAWN
        if self.expired:
            return ErrorCode.SHARE_EXPIRED
        if self.used:
            return ErrorCode.SHARE_USED
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "fields": list(self.fields), "purpose": self.purpose,
            "expiresAt": self.expires_at.isoformat(), "singleUse": self.single_use, "dynamic": self.dynamic,
            "used": self.used, "withdrawn": self.withdrawn, "expired": self.expired, "digest": self.digest,
            "identifiedOnly": self.identified_only,
        }  # fmt: skip


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Shares:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        data_key: bytes,
        hmac_key: bytes,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = DataCipher(data_key)
        self._hmac_key = hmac_key
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def create(
        self, wallet_org_id: int, holder_ref: str, presentation: Presentation, *, purpose: str,
        lifetime: dt.timedelta, single_use: bool = False, dynamic: bool = False, identified_only: bool = False,
    ) -> tuple[ShareState, str]:  # fmt: skip
        """Store a share of the wallet `wallet_org_id` for its holder `holder_ref` and return it
        with its token (shown once: only its hash is kept)."""
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise CertificateError(
                "A share lasts from 5 minutes to 30 days",
                code=ErrorCode.SHARE_LIFETIME_INVALID,
                field="expiresIn",
            )
        token = secrets.token_urlsafe(24)  # 192 bits
        share_id = uuid.uuid4().hex
        now = self._clock()
        row = Share(
            id=share_id, token_hash=_hash(token), wallet_org_id=wallet_org_id, holder_ref=holder_ref,
            digest="0x" + presentation.digest.hex(),
            presentation=self._cipher.encrypt(json.dumps(presentation.to_json()).encode(), share_id),
            fields=json.dumps(presentation.paths(), ensure_ascii=False), purpose=purpose, single_use=single_use,
            dynamic=dynamic, identified_only=identified_only, created_at=now, expires_at=now + lifetime,
        )  # fmt: skip
        with self._sessions.begin() as session:
            session.add(row)
        return self._state(row), token

    def _state(self, row: Share, *, reveal: bool = False) -> ShareState:
        expired = as_utc(row.expires_at) <= self._clock()
        withdrawn, used = row.withdrawn_at is not None, row.single_use and row.used_at is not None
        shown = reveal and not (expired or withdrawn or used)
        presentation = (
            Presentation.from_json(json.loads(self._cipher.decrypt(row.presentation, row.id)))
            if shown
            else None
        )
        return ShareState(
            row.id, row.holder_ref, tuple(json.loads(row.fields)), row.purpose, as_utc(row.expires_at), row.single_use,
            row.dynamic, used, withdrawn, expired, row.digest, presentation, bool(row.identified_only),
        )  # fmt: skip

    def open(
        self, token: str, *, code: str | None = None, consume: bool = True, identified: bool = True
    ) -> ShareState:
        """The share behind a link. Unknown tokens (a guessed or altered link) are NOT_FOUND; a
        dynamic share needs the code of the current 30-second window; a share for identified
        organisations only is, for an anonymous visitor (`identified=False`), SHARE_IDENTIFIED_ONLY
        (nothing consumed, nothing shown); a single-use share is consumed by its first opening:
        one conditional update (`used_at IS NULL`) decides which opening that is, so however many
        arrive at once, exactly one is shown the fields."""
        with self._sessions() as session:
            row = session.scalar(select(Share).where(Share.token_hash == _hash(token)))
        if row is None:
            raise NotFound(
                "No such share: the link is wrong or was never issued", code=ErrorCode.SHARE_NOT_FOUND
            )
        if row.dynamic and not (
            code and hmac.compare_digest(code.encode(), self.dynamic_code(row.id).encode())
        ):
            raise NotFound(
                "This QR code has expired: ask the holder to show the current one",
                code=ErrorCode.SHARE_CODE_EXPIRED,
            )
        if row.identified_only and not identified:
            raise ShareNeedsIdentity(
                "The holder shared this only with identified organisations: sign in or use an API key",
                code=ErrorCode.SHARE_IDENTIFIED_ONLY,
            )
        state = self._state(row)
        if not (consume and row.single_use and state.problem is None):
            return self._state(row, reveal=True)
        with (
            self._sessions.begin() as session
        ):  # its first statement writes: SQLite waits for the lock, never a stale read
            taken = cast("CursorResult[Any]", session.execute(  # an UPDATE's result is a CursorResult
                update(Share).where(Share.id == row.id, Share.used_at.is_(None), Share.withdrawn_at.is_(None)).values(used_at=self._clock())
            )).rowcount  # fmt: skip
        if taken == 1:
            return self._state(row, reveal=True)
        with (
            self._sessions() as session
        ):  # another opening was first (or the holder withdrew it): its state, not its data
            return self._state(session.get_one(Share, row.id))

    def dynamic_code(self, share_id: str, at: dt.datetime | None = None) -> str:
        """The code of a dynamic share for the 30-second window containing `at` (default now)."""
        window = int((at or self._clock()).timestamp()) // DYNAMIC_WINDOW_S
        return hmac.new(self._hmac_key, f"{share_id}:{window}".encode(), hashlib.sha256).hexdigest()[:16]

    def _owned(self, session: Session, wallet_org_id: int, holder_ref: str, share_id: str) -> Share:
        """The share if it is this wallet's for this holder; any other is as unknown (never 403:
        that would tell another wallet the share exists)."""
        row = session.get(Share, share_id)
        if row is None or row.wallet_org_id != wallet_org_id or row.holder_ref != holder_ref:
            raise NotFound("No such share of this holder", code=ErrorCode.SHARE_NOT_FOUND)
        return row

    def withdraw(self, wallet_org_id: int, holder_ref: str, share_id: str) -> ShareState:
        with self._sessions.begin() as session:
            row = self._owned(session, wallet_org_id, holder_ref, share_id)
            row.withdrawn_at = row.withdrawn_at or self._clock()
            return self._state(row)

    def get(self, wallet_org_id: int, holder_ref: str, share_id: str) -> ShareState:
        with self._sessions() as session:
            return self._state(self._owned(session, wallet_org_id, holder_ref, share_id))

    def list(self, wallet_org_id: int, holder_ref: str) -> list[ShareState]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Share)
                .where(Share.wallet_org_id == wallet_org_id, Share.holder_ref == holder_ref)
                .order_by(Share.created_at.desc())
            ).all()
            return [self._state(row) for row in rows]

    def presentation_for_node(self, token: str, code: str | None = None) -> ShareState:
        """For a trusted node of another region: the share's disclosure (a single-use share is
        used up by that node's fetch, and a dynamic one needs its current code, exactly as a
        visit here)."""
        return self.open(token, code=code)
