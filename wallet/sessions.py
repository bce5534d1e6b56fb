"""Signed-in sessions kept on the server, and CSRF tokens.

* The session cookie carries 256 random bits; the table keeps only their SHA-256, with an idle
  timeout (sliding) and an absolute lifetime. Signing in makes a new session (no fixation);
  signing out deletes it.
* CSRF: every form carries `csrf_token` = HMAC(session key, binding), where the binding is the
  session (signed in) or a random pre-session cookie (sign-in and registration forms). Posts
  without the right token are refused before anything else happens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from registry.database import as_utc
from wallet.models import LoginSession

Clock = Callable[[], dt.datetime]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    token_hash: str
    holder_id: int


class LoginSessions:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        idle: dt.timedelta,
        lifetime: dt.timedelta,
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._idle = idle
        self._lifetime = lifetime
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def create(self, holder_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions.begin() as session:
            session.add(LoginSession(token_hash=token_hash(token), holder_id=holder_id, created_at=now, last_seen_at=now,
                                     expires_at=now + self._lifetime))  # fmt: skip
        return token

    def resolve(self, token: str | None) -> SignedIn | None:
        """The live session behind a cookie (its idle clock restarted), or None."""
        if not token or len(token) > 100:
            return None
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(LoginSession, token_hash(token))
            if row is None:
                return None
            if as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + self._idle <= now:
                session.delete(row)
                return None
            if now - as_utc(row.last_seen_at) > dt.timedelta(seconds=30):  # write at most twice a minute
                row.last_seen_at = now
            return SignedIn(row.token_hash, row.holder_id)

    def end(self, token: str | None) -> None:
        if token:
            with self._sessions.begin() as session:
                session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(token)))

    def end_all(self, holder_id: int) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(LoginSession).where(LoginSession.holder_id == holder_id))

    def count(self, holder_id: int) -> int:
        with self._sessions() as session:
            return len(
                session.scalars(
                    select(LoginSession.token_hash).where(LoginSession.holder_id == holder_id)
                ).all()
            )


class Csrf:
    """Tokens bound to a session or pre-session; compared in constant time."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, binding: str) -> str:
        return hmac.new(self._key, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()

    def check(self, binding: str | None, given: str | None) -> bool:
        return (
            bool(binding)
            and bool(given)
            and hmac.compare_digest(self.token(binding or "").encode(), (given or "").encode())
        )
