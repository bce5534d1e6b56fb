"""Front-desk staff of the organisations registered at this node (issue 11, point 1): accounts,
sign-in with a password and a TOTP code, server-side sessions, CSRF tokens and sign-in throttling.

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
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised, NotFound
from registry.password_hash import dummy_hash, hash_password, verify_password
from registry.problems import RateLimited
from verifier.models import Organisation, StaffAttempt, StaffMember, StaffSession

Clock = Callable[[], dt.datetime]
SCRYPT_N = 2**14
MIN_PASSWORD, MAX_PASSWORD = 10, 128
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
ISSUER_NAME = "ecert 核验前台"  # what an authenticator app shows above the code
IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=10)  # one working day
WINDOW = dt.timedelta(minutes=15)
PER_ACCOUNT, PER_NETWORK = 5, 30  # sign-in attempts per window


_DUMMY = dummy_hash(SCRYPT_N)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        self._cipher = DataCipher(data_key)
        self._key = hmac_key
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    # ─── accounts (the CLI) ─────────────────────────────────────────────────────────────

    def add(self, organisation_id: int, username: str, display_name: str, password: str) -> NewStaff:
        username = username.strip().lower()
        if not USERNAME.match(username):
            raise EcertError("A username is 2–64 of a-z 0-9 . _ -, starting with a letter or digit",
                             code=ErrorCode.USERNAME_INVALID, field="username")  # fmt: skip
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or len(set(password)) < 3:
            raise EcertError(f"A staff password has {MIN_PASSWORD} to {MAX_PASSWORD} characters, at least 3 different",
                             code=ErrorCode.PASSWORD_WEAK, field="password")  # fmt: skip
        secret = pyotp.random_base32()
        try:
            with self._sessions.begin() as session:
                if session.get(Organisation, organisation_id) is None:
                    raise NotFound(f"No organisation {organisation_id} at this node (`ecert verifier org list`)",
                                   code=ErrorCode.ORG_NOT_FOUND, field="org")  # fmt: skip
                row = StaffMember(
                    organisation_id=organisation_id, username=username, display_name=display_name.strip() or username,
                    password_hash=hash_password(password, n=SCRYPT_N), totp_secret=self._cipher.encrypt(secret.encode(), f"staff:{username}"),
                    last_totp_step=0, created_at=self._clock(),
                )  # fmt: skip
                session.add(row)
                session.flush()
                staff_id = row.id
        except IntegrityError as exc:
            raise EcertError(
                f"The username {username} is taken", code=ErrorCode.STAFF_EXISTS, field="username"
            ) from exc
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER_NAME)
        return NewStaff(staff_id, username, secret, uri)

    def members(self, organisation_id: int | None = None) -> list[StaffView]:
        with self._sessions() as session:
            query = select(StaffMember, Organisation).join(
                Organisation, Organisation.id == StaffMember.organisation_id
            )
            if organisation_id is not None:
                query = query.where(StaffMember.organisation_id == organisation_id)
            return [_view(m, o) for m, o in session.execute(query.order_by(StaffMember.id)).tuples()]

    def disable(self, staff_id: int) -> StaffView:
        """Refuse the member's sign-ins from now on and end their sessions."""
        with self._sessions.begin() as session:
            member = session.get(StaffMember, staff_id)
            if member is None:
                raise NotFound(f"No staff member {staff_id} (`ecert verifier staff list`)",
                               code=ErrorCode.STAFF_NOT_FOUND, field="id")  # fmt: skip
            member.disabled_at = member.disabled_at or self._clock()
            session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
            org = session.get(Organisation, member.organisation_id)
            assert org is not None  # a foreign key
            return _view(member, org)

    # ─── signing in ──────────────────────────────────────────────────────────────────────

    def sign_in(self, username: str, password: str, code: str, *, network: str) -> str:
        """A new session's token for the member, if the password and the TOTP code are right;
        `STAFF_LOGIN_FAILED` otherwise (whichever was wrong), `RATE_LIMITED` after too many tries."""
        username = username.strip().lower()[:64]
        attempts = self._acquire([f"user:{username}", f"net:{network}"])
        now = self._clock()
        with self._sessions.begin() as session:
            member = session.scalar(select(StaffMember).where(StaffMember.username == username))
            good = verify_password(password, member.password_hash if member else _DUMMY)
            step = self._totp_step(member, code, now) if member and good else None
            if member is None or not good or step is None or member.disabled_at is not None:
                raise NotAuthorised(
                    "Wrong username, password or one-time code", code=ErrorCode.STAFF_LOGIN_FAILED
                )
            member.last_totp_step = step
            token = secrets.token_urlsafe(32)
            session.add(StaffSession(token_hash=token_hash(token), staff_id=member.id, created_at=now,
                                     last_seen_at=now, expires_at=now + LIFETIME))  # fmt: skip
        self._refund(attempts)
        return token

    def _totp_step(self, member: StaffMember, code: str, now: dt.datetime) -> int | None:
        """The 30-second step `code` belongs to (now, or one either side), if later than the last used."""
        secret = self._cipher.decrypt(member.totp_secret, f"staff:{member.username}").decode()
        totp = pyotp.TOTP(secret)
        code = code.strip().replace(" ", "")
        current = int(now.timestamp()) // totp.interval
        for step in (current - 1, current, current + 1):
            if step > member.last_totp_step and hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def resolve(self, token: str | None) -> SignedInStaff | None:
        """The live session behind a cookie (its idle clock restarted), or None."""
        if not token or len(token) > 100:
            return None
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(StaffSession, token_hash(token))
            if row is None:
                return None
            if as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + IDLE <= now:
                session.delete(row)
                return None
            member = session.get(StaffMember, row.staff_id)
            org = session.get(Organisation, member.organisation_id) if member else None
            if member is None or org is None or member.disabled_at is not None:
                session.delete(row)
                return None
            if now - as_utc(row.last_seen_at) > dt.timedelta(seconds=30):  # write at most twice a minute
                row.last_seen_at = now
            return SignedInStaff(row.token_hash, _view(member, org))

    def sign_out(self, token: str | None) -> None:
        if token:
            with self._sessions.begin() as session:
                session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))

    # ─── CSRF ────────────────────────────────────────────────────────────────────────────

    def csrf_token(self, binding: str) -> str:
        return hmac.new(self._key, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, binding: str | None, given: str | None) -> bool:
        return (
            bool(binding) and bool(given) and hmac.compare_digest(self.csrf_token(binding or ""), given or "")
        )

    # ─── throttle ────────────────────────────────────────────────────────────────────────

    def _hash(self, name: str) -> str:
        return hmac.new(self._key, f"throttle:{name}".encode(), hashlib.sha256).hexdigest()

    def _acquire(self, names: list[str]) -> list[int]:
        """Count one attempt per key, atomically with counting them (SQLite: the insert takes
        the write lock; PostgreSQL: an advisory lock per key); over the limit, none counts and
        `RATE_LIMITED` is raised with `retryAfter`."""
        limits = [(self._hash(n), PER_ACCOUNT if n.startswith("user:") else PER_NETWORK) for n in names]
        now = self._clock()
        with self._sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                for key in sorted(k for k, _ in limits):
                    session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": int(key[:15], 16)})
            rows = [StaffAttempt(key=key, at=now) for key, _ in limits]
            session.add_all(rows)
            session.flush()
            for key, limit in limits:
                count, oldest = session.execute(
                    select(func.count(StaffAttempt.id), func.min(StaffAttempt.at)).where(
                        StaffAttempt.key == key, StaffAttempt.at > now - WINDOW
                    )
                ).one()
                if count > limit:
                    retry = max(int((as_utc(oldest) + WINDOW - now).total_seconds()) + 1, 1)
                    raise RateLimited(
                        "Too many sign-in attempts: wait a few minutes and try again", retryAfter=retry
                    )
            session.execute(delete(StaffAttempt).where(StaffAttempt.at < now - dt.timedelta(days=1)))
            return [row.id for row in rows]

    def _refund(self, attempts: list[int]) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(StaffAttempt).where(StaffAttempt.id.in_(attempts)))


def _view(member: StaffMember, org: Organisation) -> StaffView:
    return StaffView(member.id, member.username, member.display_name, org.id, org.name, org.region,
                     member.disabled_at is not None)  # fmt: skip
