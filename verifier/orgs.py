"""Organisations (banks, agencies of other provinces, wallets) and their API keys, with a rate
limit per key. Keys are looked up by SHA-256 and cached, so a request costs no database read."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.errors import EcertError, NotAuthorised
from registry.problems import RateLimited
from verifier.models import Organisation, OrgKey

KINDS = ("bank", "agency", "wallet", "node")


@dataclass(frozen=True)
class Caller:
    organisation_id: int
    name: str
    region: str
    kind: str
    key_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Organisations:
    def __init__(self, sessions: sessionmaker[Session], *, rate_per_min: int) -> None:
        self._sessions = sessions
        self._cache: dict[str, Caller] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._rate = rate_per_min / 60.0
        self._burst = max(rate_per_min / 6.0, 10.0)
        self._lock = threading.Lock()

    def add(self, name: str, region: str, kind: str, label: str = "") -> tuple[int, str]:
        """Register an organisation with a first key; the key is returned once."""
        if kind not in KINDS:
            raise EcertError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}", code="ORG_KIND_INVALID", field="kind")
        token = "vk_" + secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            org = Organisation(name=name, region=region, kind=kind)
            session.add(org)
            session.flush()
            session.add(OrgKey(organisation_id=org.id, key_hash=_hash(token), label=label))
            return org.id, token

    def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise NotAuthorised("An API key is required: send Authorization: Bearer <key>", code="AUTH_REQUIRED")
        key_hash = _hash(token)
        caller = self._cache.get(key_hash)
        if caller is None:
            with self._sessions() as session:
                row = session.execute(
                    select(OrgKey, Organisation)
                    .join(Organisation, Organisation.id == OrgKey.organisation_id)
                    .where(OrgKey.key_hash == key_hash, OrgKey.revoked_at.is_(None))
                ).first()
            if row is None:
                raise NotAuthorised("Unknown or revoked API key", code="AUTH_INVALID")
            org = row.Organisation
            caller = Caller(org.id, org.name, org.region, org.kind, key_hash)
            self._cache[key_hash] = caller
        self._take(key_hash)
        return caller

    def _take(self, key_hash: str) -> None:
        """Token bucket per key: `rate_per_min` sustained, a sixth of it as burst."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_hash, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < 1:
                self._buckets[key_hash] = (tokens, now)
                wait_s = math.ceil((1 - tokens) / self._rate) if self._rate > 0 else 60
                raise RateLimited("Too many requests for this API key: slow down and retry", code="RATE_LIMITED", retryAfter=wait_s)
            self._buckets[key_hash] = (tokens - 1, now)

    def revoke_all(self, organisation_id: int) -> None:
        import datetime as dt

        with self._sessions.begin() as session:
            for key in session.scalars(select(OrgKey).where(OrgKey.organisation_id == organisation_id)):
                key.revoked_at = dt.datetime.now(dt.UTC)
                self._cache.pop(key.key_hash, None)
