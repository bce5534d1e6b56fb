"""Front-desk staff of the organisations registered at this node (issue 11, point 1): accounts,
sign-in with a password and a TOTP code, server-side sessions, CSRF tokens and sign-in throttling.

The mechanics are `registry.staff_auth` (shared with the issuer's agency console):

* Passwords: scrypt (RFC 7914) in a self-describing string `scrypt$n$r$p$salt$hash`; a wrong
  username costs as long as a wrong password (a dummy hash is compared).
* TOTP (RFC 6238, pyotp): 30-second steps, one step of drift either way; a code's step must be
  later than the last one accepted, so a code seen over a shoulder cannot be used again. The
  secret is kept sealed (AES-GCM) with the node's data key and shown once, by the CLI.
* Throttle: an attempt is counted before the password is checked, in the database (all workers,
  restarts), per username and per client network; a successful sign-in gives its attempts back.
* Sessions: 256 random bits in the cookie, only their SHA-256 stored; idle and absolute timeouts;
  a new session at each sign-in (no fixation); disabling a member ends their sessions.
* CSRF: every form carries HMAC(key, binding), bound to the session, or before sign-in to a
  random pre-session cookie; compared in constant time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotFound
from registry.staff_auth import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    USERNAME,
    AuthPolicy,
    StaffAuth,
    StaffTables,
    token_hash,
)
from verifier.models import Organisation, StaffAttempt, StaffMember, StaffSession

__all__ = [
    "IDLE", "LIFETIME", "MAX_PASSWORD", "MIN_PASSWORD", "PER_ACCOUNT", "PER_NETWORK", "USERNAME", "WINDOW",
    "NewStaff", "SignedInStaff", "StaffAccounts", "StaffView", "token_hash",
]  # fmt: skip

Clock = Callable[[], dt.datetime]
SCRYPT_N = 2**14
ISSUER_NAME = "ecert 核验前台"  # what an authenticator app shows above the code
IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=10)  # one working day
WINDOW = dt.timedelta(minutes=15)
PER_ACCOUNT, PER_NETWORK = 5, 30  # sign-in attempts per window
POLICY = AuthPolicy(ISSUER_NAME, idle=IDLE, lifetime=LIFETIME, window=WINDOW, per_account=PER_ACCOUNT,
                    per_network=PER_NETWORK, scrypt_n=SCRYPT_N)  # fmt: skip
TABLES = StaffTables(member=StaffMember, session=StaffSession, attempt=StaffAttempt)


@dataclass(frozen=True)
class NewStaff:
    """What `add` returns, shown once: the TOTP secret and its provisioning URI (a QR for the app)."""

    id: int
    username: str
    secret: str
    uri: str


@dataclass(frozen=True)
class StaffView:
    id: int
    username: str
    display_name: str
    organisation_id: int
    organisation: str
    organisation_region: str
    disabled: bool


@dataclass(frozen=True)
class SignedInStaff:
    token_hash: str
    member: StaffView


class StaffAccounts:
    def __init__(self, sessions: sessionmaker[Session], data_key: bytes, hmac_key: bytes,
                 clock: Clock | None = None) -> None:  # fmt: skip
        self._sessions = sessions
        self._auth = StaffAuth(sessions, TABLES, data_key, hmac_key, POLICY, clock)
        self._clock = self._auth.clock

    # ─── accounts (the CLI) ─────────────────────────────────────────────────────────────

    def add(self, organisation_id: int, username: str, display_name: str, password: str) -> NewStaff:
        made = self._auth.credentials(username, password)
        try:
            with self._sessions.begin() as session:
                if session.get(Organisation, organisation_id) is None:
                    raise NotFound(f"No organisation {organisation_id} at this node (`ecert verifier org list`)",
                                   code=ErrorCode.ORG_NOT_FOUND, field="org")  # fmt: skip
                row = StaffMember(
                    organisation_id=organisation_id, username=made.username,
                    display_name=display_name.strip() or made.username, password_hash=made.password_hash,
                    totp_secret=made.totp_secret, last_totp_step=0, created_at=self._clock(),
                )  # fmt: skip
                session.add(row)
                session.flush()
                staff_id = row.id
        except IntegrityError as exc:
            raise EcertError(
                f"The username {made.username} is taken", code=ErrorCode.STAFF_EXISTS, field="username"
            ) from exc
        return NewStaff(staff_id, made.username, made.secret, made.uri)

    def members(self, organisation_id: int | None = None) -> list[StaffView]:
        with self._sessions() as session:
            query = select(StaffMember, Organisation).join(
                Organisation, Organisation.id == StaffMember.organisation_id
            )
            if organisation_id is not None:
                query = query.where(StaffMember.organisation_id == organisation_id)
            return [_view(m, o) for m, o in session.execute(query.order_by(StaffMember.id))]

    def disable(self, staff_id: int) -> StaffView:
        """Refuse the member's sign-ins from now on and end their sessions."""
        with self._sessions.begin() as session:
            member = session.get(StaffMember, staff_id)
            if member is None:
                raise NotFound(f"No staff member {staff_id} (`ecert verifier staff list`)",
                               code=ErrorCode.STAFF_NOT_FOUND, field="id")  # fmt: skip
            member.disabled_at = member.disabled_at or self._clock()
            self._auth.end_sessions(session, staff_id)
            org = session.get(Organisation, member.organisation_id)
            assert org is not None  # a foreign key
            return _view(member, org)

    # ─── signing in ──────────────────────────────────────────────────────────────────────

    def sign_in(self, username: str, password: str, code: str, *, network: str) -> str:
        """A new session's token for the member, if the password and the TOTP code are right;
        `STAFF_LOGIN_FAILED` otherwise (whichever was wrong), `RATE_LIMITED` after too many tries."""
        return self._auth.sign_in(username, password, code, network=network).token

    def _totp_step(self, member: StaffMember, code: str, now: dt.datetime) -> int | None:
        """The 30-second step `code` belongs to (now, or one either side), if later than the last used."""
        return self._auth.totp_step(member, code, now)

    def resolve(self, token: str | None) -> SignedInStaff | None:
        """The live session behind a cookie (its idle clock restarted), or None."""
        found = self._auth.resolve(token, _member_view)
        return SignedInStaff(*found) if found else None

    def sign_out(self, token: str | None) -> None:
        self._auth.sign_out(token)

    # ─── CSRF ────────────────────────────────────────────────────────────────────────────

    def csrf_token(self, binding: str) -> str:
        return self._auth.csrf_token(binding)

    def csrf_ok(self, binding: str | None, given: str | None) -> bool:
        return self._auth.csrf_ok(binding, given)

    # ─── throttle ────────────────────────────────────────────────────────────────────────

    def _hash(self, name: str) -> str:
        return self._auth.throttle_key(name)

    def _acquire(self, names: list[str]) -> list[int]:
        """Count one attempt per key (see `registry.staff_auth.StaffAuth.acquire`)."""
        return self._auth.acquire(names)

    def _refund(self, attempts: list[int]) -> None:
        self._auth.refund(attempts)


def _member_view(session: Session, member: StaffMember) -> StaffView | None:
    org = session.get(Organisation, member.organisation_id)
    return _view(member, org) if org is not None else None


def _view(member: StaffMember, org: Organisation) -> StaffView:
    return StaffView(member.id, member.username, member.display_name, org.id, org.name, org.region,
                     member.disabled_at is not None)  # fmt: skip
