"""API keys of agency staff: each bound to one agency and a set of scopes.

A token is `ek_` + 32 random bytes (URL-safe base64) shown once when created; only its SHA-256
is stored, so a leaked database yields no usable key. Scopes:

- `issue`  — submit certificates and batches, renew, create claim codes;
- `status` — suspend, reinstate, revoke;
- `admin`  — everything the agency may do (implies the other two).

Reading the agency's own jobs and certificates needs a valid key of that agency, any scope.

    NotAuthorised
    ├── AuthRequired   AUTH_REQUIRED   no key sent (401)
    ├── AuthInvalid    AUTH_INVALID    unknown or revoked key (401)
    └── ScopeMissing   SCOPE_MISSING   the key lacks the scope (403)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from issuer.audit import SYSTEM, AuditAction, AuditLog
from issuer.models import Agency, ApiKey
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised

__all__ = [
    "SCOPES",
    "ApiKeyInfo",
    "AuthInvalid",
    "AuthRequired",
    "Principal",
    "ScopeMissing",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "parse_scopes",
    "revoke_api_key",
]

SCOPES = ("issue", "status", "admin")
TOKEN_PREFIX = "ek_"  # noqa: S105 - a public prefix that marks our keys in logs and scanners, not a secret


class AuthRequired(NotAuthorised):
    code = ErrorCode.AUTH_REQUIRED


class AuthInvalid(NotAuthorised):
    code = ErrorCode.AUTH_INVALID


class ScopeMissing(NotAuthorised):
    code = ErrorCode.SCOPE_MISSING


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's agency and scopes."""

    agency_code: str
    scopes: frozenset[str]
    key_id: int

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise ScopeMissing(
                f"This API key lacks the {scope!r} scope: ask an admin for a key with it", scope=scope
            )


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    agency_code: str
    scopes: tuple[str, ...]
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from `issue,status` or a list; unknown or none is `SCOPE_INVALID`."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise EcertError(
            f"Unknown scope(s) {unknown}: use a comma list of {', '.join(SCOPES)}" if unknown else "Give at least one scope",
            code=ErrorCode.SCOPE_INVALID, field="scopes",
        )  # fmt: skip
    return wanted


def create_api_key(
    sessions: sessionmaker[Session],
    agency_code: str,
    scopes: str | Iterable[str],
    label: str = "",
    *,
    actor: str = SYSTEM,
) -> str:
    """A new key for a served agency; the token is returned once and never stored. The agency's
    audit log records who made it (`actor`), its id and scopes (not the label: free text)."""
    wanted = parse_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with sessions.begin() as session:
        if session.get(Agency, agency_code) is None:
            raise EcertError(
                f"Agency {agency_code} is not served by this issuer",
                code=ErrorCode.AGENCY_UNKNOWN,
                field="agency",
            )
        key = ApiKey(agency_code=agency_code, key_hash=_digest(token), scopes=",".join(wanted), label=label)
        session.add(key)
        session.flush()
        key_id = key.id
    AuditLog(sessions).append(
        agency_code,
        actor,
        AuditAction.KEY_CHANGE,
        f"api-key:{key_id}",
        {"event": "created", "scopes": list(wanted)},
    )
    return token


def authenticate(sessions: sessionmaker[Session], token: str | None) -> Principal:
    """The principal of a bearer token; `AUTH_REQUIRED` if none, `AUTH_INVALID` if unknown or revoked."""
    if not token:
        raise AuthRequired("Send an API key: `Authorization: Bearer ek_…` or `X-API-Key: ek_…`")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthInvalid("Unknown or revoked API key")
    digest = _digest(token)
    with sessions() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None:
        raise AuthInvalid("Unknown or revoked API key")
    return Principal(key.agency_code, frozenset(key.scopes.split(",")), key.id)


def revoke_api_key(sessions: sessionmaker[Session], key_id: int, *, actor: str = SYSTEM) -> ApiKeyInfo:
    """Revoke a key by id (from `list_api_keys`); revoking twice keeps the first time (and is
    logged once, in the agency's audit log, with `actor`)."""
    with sessions.begin() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise EcertError(
                f"No API key {key_id}: see `ecert issuer api-key list`",
                code=ErrorCode.API_KEY_NOT_FOUND,
                field="id",
            )
        first = key.revoked_at is None
        if first:
            key.revoked_at = dt.datetime.now(dt.UTC)
        info = _info(key)
    if first:
        AuditLog(sessions).append(info.agency_code, actor, AuditAction.KEY_CHANGE, f"api-key:{key_id}",
                                  {"event": "revoked"})  # fmt: skip
    return info


def list_api_keys(sessions: sessionmaker[Session], agency_code: str | None = None) -> list[ApiKeyInfo]:
    query = select(ApiKey).order_by(ApiKey.id)
    if agency_code:
        query = query.where(ApiKey.agency_code == agency_code)
    with sessions() as session:
        return [_info(key) for key in session.scalars(query)]


def _info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key.id, key.agency_code, tuple(key.scopes.split(",")), key.label, key.created_at, key.revoked_at
    )
