"""Organisations (banks, agencies of other provinces, wallets) and their API keys, with a rate
limit per key. Keys are looked up by SHA-256 and cached, so a request costs no database read but
one per key every `KEY_CACHE_S`: a key revoked or rotated away (`ecert verifier org revoke|rotate-key`,
another process) is refused by every worker process of the node within that time."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised, NotFound
from registry.problems import RateLimited
from verifier.models import Organisation, OrgKey

KINDS = ("bank", "agency", "wallet", "node")
# How long a worker trusts a key it has looked up before it reads it again: a revocation reaches
# every worker within this (well inside the 5 s promised), at one indexed read per key and period.
KEY_CACHE_S = 2.0


@dataclass(frozen=True)
class Caller:
    organisation_id: int
    name: str
    region: str
    kind: str
    key_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return "vk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class OrgView:
    id: int
    name: str
    region: str
    kind: str
    active_keys: int


class Organisations:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        rate_per_min: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: dict[
            str, tuple[Caller, float]
        ] = {}  # key hash → (caller, read again after this clock time)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._rate = rate_per_min / 60.0
        self._burst = max(rate_per_min / 6.0, 10.0)
        self._lock = threading.Lock()

    def add(self, name: str, region: str, kind: str, label: str = "") -> tuple[int, str]:
        """Register an organisation with a first key; the key is returned once."""
        if kind not in KINDS:
            raise EcertError(
                f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}",
                code=ErrorCode.ORG_KIND_INVALID,
                field="kind",
            )
        token = _new_token()
        with self._sessions.begin() as session:
            org = Organisation(name=name, region=region, kind=kind)
            session.add(org)
            session.flush()
            session.add(OrgKey(organisation_id=org.id, key_hash=_hash(token), label=label))
            return org.id, token

    def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise NotAuthorised(
                "An API key is required: send Authorization: Bearer <key>", code=ErrorCode.AUTH_REQUIRED
            )
        key_hash = _hash(token)
        now = self._clock()
        cached = self._cache.get(key_hash)
        caller = cached[0] if cached is not None and now < cached[1] else self._look_up(key_hash, now)
        self._take(key_hash)
        return caller

    def _look_up(self, key_hash: str, now: float) -> Caller:
        """Read the key (again): unknown, revoked, or past the end of its rotation's grace → refused."""
        with self._sessions() as session:
            row = session.execute(
                select(OrgKey, Organisation)
                .join(Organisation, Organisation.id == OrgKey.organisation_id)
                .where(OrgKey.key_hash == key_hash)
            ).first()
        ends_in = KEY_CACHE_S
        if row is not None and row.OrgKey.revoked_at is not None:
            ends_in = min(ends_in, (as_utc(row.OrgKey.revoked_at) - dt.datetime.now(dt.UTC)).total_seconds())
        if row is None or ends_in <= 0:
            self._cache.pop(key_hash, None)
            raise NotAuthorised("Unknown or revoked API key", code=ErrorCode.AUTH_INVALID)
        org = row.Organisation
        caller = Caller(org.id, org.name, org.region, org.kind, key_hash)
        self._cache[key_hash] = (caller, now + ends_in)
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
                raise RateLimited(
                    "Too many requests for this API key: slow down and retry",
                    code=ErrorCode.RATE_LIMITED,
                    retryAfter=wait_s,
                )
            self._buckets[key_hash] = (tokens - 1, now)

    def list(self) -> list[OrgView]:
        """Every organisation, with how many of its keys still work."""
        now = dt.datetime.now(dt.UTC)
        with self._sessions() as session:
            orgs = session.scalars(select(Organisation).order_by(Organisation.id)).all()
            keys = session.scalars(select(OrgKey)).all()
            active: dict[int, int] = {}
            for key in keys:
                if key.revoked_at is None or as_utc(key.revoked_at) > now:
                    active[key.organisation_id] = active.get(key.organisation_id, 0) + 1
            return [OrgView(o.id, o.name, o.region, o.kind, active.get(o.id, 0)) for o in orgs]

    def _organisation(self, session: Session, organisation_id: int) -> Organisation:
        org = session.get(Organisation, organisation_id)
        if org is None:
            raise NotFound(
                f"No organisation {organisation_id} at this node (`ecert verifier org list`)",
                code=ErrorCode.ORG_NOT_FOUND,
                field="id",
            )
        return org

    def revoke(self, organisation_id: int) -> int:
        """Revoke every key of the organisation now; how many were still working. Every worker
        of a running node refuses them within `KEY_CACHE_S`."""
        with self._sessions.begin() as session:
            self._organisation(session, organisation_id)
            return self._revoke_keys(session, organisation_id, dt.datetime.now(dt.UTC))

    def revoke_key(self, token: str) -> Caller:
        """Revoke one key, given the key itself; whose it was."""
        key_hash = _hash(token)
        with self._sessions.begin() as session:
            row = session.execute(
                select(OrgKey, Organisation)
                .join(Organisation, Organisation.id == OrgKey.organisation_id)
                .where(OrgKey.key_hash == key_hash)
            ).first()
            if row is None:
                raise NotFound("No such API key at this node", code=ErrorCode.ORG_KEY_NOT_FOUND, field="key")
            now = dt.datetime.now(dt.UTC)
            if row.OrgKey.revoked_at is None or as_utc(row.OrgKey.revoked_at) > now:
                row.OrgKey.revoked_at = now
            org = row.Organisation
            self._cache.pop(key_hash, None)
            return Caller(org.id, org.name, org.region, org.kind, key_hash)

    def rotate_key(
        self, organisation_id: int, *, grace: dt.timedelta = dt.timedelta(0), label: str = ""
    ) -> str:
        """A new key for the organisation (returned once); its other keys stop working after
        `grace` (at once by default)."""
        token = _new_token()
        with self._sessions.begin() as session:
            self._organisation(session, organisation_id)
            self._revoke_keys(session, organisation_id, dt.datetime.now(dt.UTC) + grace)
            session.add(OrgKey(organisation_id=organisation_id, key_hash=_hash(token), label=label))
        return token

    def _revoke_keys(self, session: Session, organisation_id: int, at: dt.datetime) -> int:
        """Set the end of every still-working key of the organisation to `at` (never later than it was)."""
        now = dt.datetime.now(dt.UTC)
        count = 0
        for key in session.scalars(select(OrgKey).where(OrgKey.organisation_id == organisation_id)):
            if key.revoked_at is None or as_utc(key.revoked_at) > max(at, now):
                count += 1
                key.revoked_at = at
            self._cache.pop(key.key_hash, None)
        return count
