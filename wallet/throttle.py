"""Rate limits by counting attempts in a sliding window, in the database (so they hold across
workers and restarts). Keys are HMACs of what is limited: no IP address or ID number is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.problems import RateLimited
from wallet.models import Attempt


class Throttle:
    def __init__(self, sessions: sessionmaker[Session], key: bytes, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._sessions = sessions
        self._key = key
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def _hash(self, name: str) -> str:
        return hmac.new(self._key, f"throttle:{name}".encode(), hashlib.sha256).hexdigest()

    def check(self, limits: Iterable[tuple[str, int, dt.timedelta]]) -> None:
        """Raise RATE_LIMITED (with `retryAfter` seconds) if any key has reached its limit."""
        now = self._clock()
        with self._sessions() as session:
            for name, limit, window in limits:
                key = self._hash(name)
                count, oldest = session.execute(
                    select(func.count(Attempt.id), func.min(Attempt.at)).where(Attempt.key == key, Attempt.at > now - window)
                ).one()
                if count >= limit:
                    first = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
                    retry = max(int((first + window - now).total_seconds()) + 1, 1)
                    raise RateLimited("Too many attempts: wait a few minutes and try again", retryAfter=retry)

    def hit(self, names: Iterable[str]) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            session.add_all(Attempt(key=self._hash(name), at=now) for name in names)
            session.execute(delete(Attempt).where(Attempt.at < now - dt.timedelta(days=1)))

    def clear(self, names: Iterable[str]) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(Attempt).where(Attempt.key.in_([self._hash(n) for n in names])))
