"""Rate limits by counting attempts in a sliding window, in the database (so they hold across
workers and restarts). Keys are HMACs of what is limited: no IP address or ID number is stored.

An attempt is counted *before* the work it guards (`acquire`), atomically: the attempt's rows are
inserted and then counted in one transaction that holds the keys' locks (SQLite: the database's
single write lock, taken by the insert; PostgreSQL: a transaction-level advisory lock per key), so
N parallel requests against a limit of L run at most L expensive checks. What turns out not to
count (a right password, a claim the issuer could not answer) is given back with `refund`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from registry.problems import RateLimited
from wallet.models import Attempt


def address_key(ip: str) -> str:
    """What an address limit counts: an IPv4 address, or the /64 network of an IPv6 one (one
    subscriber's share, which they can fill with addresses at will)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Throttle:
    def __init__(
        self, sessions: sessionmaker[Session], key: bytes, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self._sessions = sessions
        self._key = key
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def _hash(self, name: str) -> str:
        return hmac.new(self._key, f"throttle:{name}".encode(), hashlib.sha256).hexdigest()

    def acquire(self, limits: Iterable[tuple[str, int, dt.timedelta]]) -> list[int]:
        """Count one attempt against each key and return the attempts' ids (for `refund`); if any
        key had already reached its limit, count nothing and raise RATE_LIMITED (`retryAfter`)."""
        limits = [(self._hash(name), limit, window) for name, limit, window in limits]
        now = self._clock()
        with self._sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                for key in sorted({key for key, _, _ in limits}):  # one order everywhere: no deadlock
                    session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": int(key[:15], 16)})
            rows = [Attempt(key=key, at=now) for key, _, _ in limits]
            session.add_all(rows)  # on SQLite this insert takes the write lock: the counts below are final
            session.flush()
            for key, limit, window in limits:
                count, oldest = session.execute(
                    select(func.count(Attempt.id), func.min(Attempt.at)).where(
                        Attempt.key == key, Attempt.at > now - window
                    )
                ).one()
                if count > limit:  # leaving the block by raising rolls this attempt back
                    first = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
                    retry = max(int((first + window - now).total_seconds()) + 1, 1)
                    raise RateLimited("Too many attempts: wait a few minutes and try again", retryAfter=retry)
            session.execute(delete(Attempt).where(Attempt.at < now - dt.timedelta(days=1)))
            return [row.id for row in rows]

    def refund(self, attempts: Iterable[int]) -> None:
        """Take back attempts counted by `acquire` that turned out not to count."""
        attempts = list(attempts)
        if attempts:
            with self._sessions.begin() as session:
                session.execute(delete(Attempt).where(Attempt.id.in_(attempts)))

    def check(self, limits: Iterable[tuple[str, int, dt.timedelta]]) -> None:
        """Raise RATE_LIMITED (with `retryAfter` seconds) if any key has reached its limit."""
        now = self._clock()
        with self._sessions() as session:
            for name, limit, window in limits:
                key = self._hash(name)
                count, oldest = session.execute(
                    select(func.count(Attempt.id), func.min(Attempt.at)).where(
                        Attempt.key == key, Attempt.at > now - window
                    )
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
