"""Staff sign-in shared by the services that have staff (the verifier's front desk, the issuer's
agency console): password and TOTP, server-side sessions, CSRF tokens and sign-in throttling, on
whatever SQLAlchemy tables the service keeps them in (`StaffTables` names them).

* Passwords: scrypt (`registry.password_hash`); a wrong username costs as long as a wrong
  password (a dummy hash is compared).
* TOTP (RFC 6238, pyotp): 30-second steps, one step of drift either way; a code's step must be
  later than the last one accepted, so a code seen over a shoulder cannot be used again. The
  secret is kept sealed (AES-GCM, `staff:<username>` as associated data) with the service's data
  key, and shown once when the account is made.
* Throttle: an attempt is counted before the password is checked, in the database (all workers,
  restarts), per username and per client network; a successful sign-in gives its attempts back.
  Keys are HMACs: no username or address is stored in the clear.
* Sessions: 256 random bits in the cookie, only their SHA-256 stored; idle and absolute timeouts;
  a new session at each sign-in (no fixation); `end_sessions` when an account is disabled.
* CSRF: every form carries HMAC(key, binding), bound to the session, or before sign-in to a
  random pre-session cookie; compared in constant time.

The tables (any declarative models with these columns):

* member: `id`, `username` (unique), `password_hash`, `totp_secret` (bytes), `last_totp_step`
  (int), `disabled_at` (datetime or NULL), plus whatever the service adds (organisation, role…);
* session: `token_hash` (primary key, 64 hex), `staff_id`, `created_at`, `last_seen_at`, `expires_at`;
* attempt: `id`, `key` (64 hex), `at` (indexed together with `key`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyotp
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.database import as_utc
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised
from registry.password_hash import dummy_hash, hash_password, verify_password
from registry.problems import RateLimited

Clock = Callable[[], dt.datetime]
V = TypeVar("V")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD, MAX_PASSWORD = 10, 128
COMMON_COUNT = 10_000  # the most common passwords refused (the wallet's rule), from zxcvbn's ranked list


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def address_key(ip: str) -> str:
    """What a per-address limit counts: an IPv4 address, or the /64 network of an IPv6 one (one
    subscriber's share, which they can fill with addresses at will)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The `COMMON_COUNT` most common passwords, lower-case: the head of the frequency-ranked list
    zxcvbn ships (no download; loaded on first use)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranked: list[str] | str = FREQUENCY_LISTS["passwords"]  # a list, or one comma-separated string
    ranked = ranked.split(",") if isinstance(ranked, str) else ranked
    return frozenset(p.lower() for p in ranked[:COMMON_COUNT])


@dataclass(frozen=True)
class StaffTables:
    """The service's three declarative models (see the module's docstring for their columns)."""

    member: type[Any]
    session: type[Any]
    attempt: type[Any]


@dataclass(frozen=True)
class AuthPolicy:
    totp_issuer: str  # what an authenticator app shows above the code
    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=10)  # one working day
    window: dt.timedelta = dt.timedelta(minutes=15)
    per_account: int = 5  # sign-in attempts per window and username
    per_network: int = 30  # … and per client network
    scrypt_n: int = 2**14
    refuse_common: bool = False  # refuse the most common passwords (`common_passwords`)


@dataclass(frozen=True)
class Credentials:
    """What a new account stores (`password_hash`, `totp_secret`) and shows once (`secret`, `uri`)."""

    username: str
    password_hash: str
    totp_secret: bytes
    secret: str
    uri: str


@dataclass(frozen=True)
class SignIn:
    token: str  # for the cookie, never stored
    token_hash: str
    staff_id: int


class StaffAuth:
    def __init__(self, sessions: sessionmaker[Session], tables: StaffTables, data_key: bytes, hmac_key: bytes,
                 policy: AuthPolicy, clock: Clock | None = None) -> None:  # fmt: skip
        self.sessions = sessions
        self.tables = tables
        self.policy = policy
        self._cipher = DataCipher(data_key)
        self._key = hmac_key
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._dummy = dummy_hash(policy.scrypt_n)

    # ─── accounts ───────────────────────────────────────────────────────────────────────

    @staticmethod
    def check_username(username: str) -> str:
        """The username in its stored form (trimmed, lower case), or `USERNAME_INVALID`."""
        username = username.strip().lower()
        if not USERNAME.match(username):
            raise EcertError("A username is 2–64 of a-z 0-9 . _ -, starting with a letter or digit",
                             code=ErrorCode.USERNAME_INVALID, field="username")  # fmt: skip
        return username

    def check_password(self, password: str) -> None:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or len(set(password)) < 3:
            raise EcertError(f"A staff password has {MIN_PASSWORD} to {MAX_PASSWORD} characters, at least 3 different",
                             code=ErrorCode.PASSWORD_WEAK, field="password")  # fmt: skip
        if self.policy.refuse_common and password.lower() in common_passwords():
            raise EcertError("This is one of the most common passwords: choose another",
                             code=ErrorCode.PASSWORD_COMMON, field="password")  # fmt: skip

    def credentials(self, username: str, password: str) -> Credentials:
        """A checked username and password, hashed, and a new TOTP secret, sealed."""
        username = self.check_username(username)
        self.check_password(password)
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=self.policy.totp_issuer)
        return Credentials(
            username, hash_password(password, n=self.policy.scrypt_n),
            self._cipher.encrypt(secret.encode(), f"staff:{username}"), secret, uri,
        )  # fmt: skip

    def end_sessions(self, session: Session, staff_id: int) -> None:
        """End every session of a member (in the caller's transaction: disabling them)."""
        model = self.tables.session
        session.execute(delete(model).where(model.staff_id == staff_id))

    # ─── signing in ──────────────────────────────────────────────────────────────────────

    def sign_in(self, username: str, password: str, code: str, *, network: str) -> SignIn:
        """A new session for the member, if the password and the TOTP code are right and the
        account is not disabled; `STAFF_LOGIN_FAILED` otherwise (whichever was wrong),
        `RATE_LIMITED` (with `retryAfter`) after too many tries by username or network."""
        member_model = self.tables.member
        username = username.strip().lower()[:64]
        attempts = self.acquire([f"user:{username}", f"net:{network}"])
        now = self.clock()
        with self.sessions.begin() as session:
            member = session.scalar(select(member_model).where(member_model.username == username))
            good = verify_password(password, member.password_hash if member else self._dummy)
            step = self.totp_step(member, code, now) if member and good else None
            if member is None or not good or step is None or member.disabled_at is not None:
                raise NotAuthorised(
                    "Wrong username, password or one-time code", code=ErrorCode.STAFF_LOGIN_FAILED
                )
            # Claim the step with one conditional UPDATE: of sign-ins racing with the same code,
            # one moves `last_totp_step` and the others find it moved (read-then-write let five in)
            claimed = session.execute(
                update(member_model)
                .where(member_model.id == member.id, member_model.last_totp_step < step)
                .values(last_totp_step=step)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise NotAuthorised(
                    "Wrong username, password or one-time code", code=ErrorCode.STAFF_LOGIN_FAILED
                )
            token = secrets.token_urlsafe(32)
            made = SignIn(token, token_hash(token), int(member.id))
            session.add(self.tables.session(token_hash=made.token_hash, staff_id=member.id, created_at=now,
                                            last_seen_at=now, expires_at=now + self.policy.lifetime))  # fmt: skip
        self.refund(attempts)
        return made

    def totp_step(self, member: Any, code: str, now: dt.datetime) -> int | None:
        """The 30-second step `code` belongs to (now, or one either side), if later than the last used."""
        secret = self._cipher.decrypt(member.totp_secret, f"staff:{member.username}").decode()
        totp = pyotp.TOTP(secret)
        # full-width digits from a Chinese input method are digits; anything else is no code
        code = unicodedata.normalize("NFKC", code).strip().replace(" ", "")
        if not (code.isascii() and code.isdigit()):
            return None
        current = int(now.timestamp()) // totp.interval
        for step in (current - 1, current, current + 1):
            if step > member.last_totp_step and hmac.compare_digest(
                totp.generate_otp(step).encode(), code.encode()
            ):
                return step
        return None

    def resolve(self, token: str | None, view: Callable[[Session, Any], V | None]) -> tuple[str, V] | None:
        """The live session behind a cookie (its idle clock restarted): its token hash and
        `view(session, member)`; None (and the session ended) if it expired, the member is
        disabled or gone, or `view` gives None."""
        if not token or len(token) > 100:
            return None
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(self.tables.session, token_hash(token))
            if row is None:
                return None
            if as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + self.policy.idle <= now:
                session.delete(row)
                return None
            member = session.get(self.tables.member, row.staff_id)
            seen = view(session, member) if member is not None else None
            if member is None or seen is None or member.disabled_at is not None:
                session.delete(row)
                return None
            if now - as_utc(row.last_seen_at) > dt.timedelta(seconds=30):  # write at most twice a minute
                row.last_seen_at = now
            return str(row.token_hash), seen

    def sign_out(self, token: str | None) -> None:
        if token:
            model = self.tables.session
            with self.sessions.begin() as session:
                session.execute(delete(model).where(model.token_hash == token_hash(token)))

    # ─── CSRF ────────────────────────────────────────────────────────────────────────────

    def csrf_token(self, binding: str) -> str:
        return hmac.new(self._key, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, binding: str | None, given: str | None) -> bool:
        return (
            bool(binding)
            and bool(given)
            # bytes: compare_digest raises on a str that is not ASCII (a hostile form field)
            and hmac.compare_digest(self.csrf_token(binding or "").encode(), (given or "").encode())
        )

    # ─── throttle ────────────────────────────────────────────────────────────────────────

    def throttle_key(self, name: str) -> str:
        return hmac.new(self._key, f"throttle:{name}".encode(), hashlib.sha256).hexdigest()

    def acquire(self, names: list[str]) -> list[int]:
        """Count one attempt per name (`user:…` limited per account, others per network),
        atomically with counting them (SQLite: the insert takes the write lock; PostgreSQL: an
        advisory lock per key); over the limit, none counts and `RATE_LIMITED` is raised with
        `retryAfter`."""
        model, policy = self.tables.attempt, self.policy
        limits = [
            (self.throttle_key(n), policy.per_account if n.startswith("user:") else policy.per_network)
            for n in names
        ]
        now = self.clock()
        with self.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                for key in sorted(k for k, _ in limits):
                    session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": int(key[:15], 16)})
            rows = [model(key=key, at=now) for key, _ in limits]
            session.add_all(rows)
            session.flush()
            for key, limit in limits:
                count, oldest = session.execute(
                    select(func.count(model.id), func.min(model.at)).where(
                        model.key == key, model.at > now - policy.window
                    )
                ).one()
                if count > limit:
                    retry = max(int((as_utc(oldest) + policy.window - now).total_seconds()) + 1, 1)
                    raise RateLimited(
                        "Too many sign-in attempts: wait a few minutes and try again", retryAfter=retry
                    )
            session.execute(delete(model).where(model.at < now - dt.timedelta(days=1)))
            return [int(row.id) for row in rows]

    def refund(self, attempts: list[int]) -> None:
        model = self.tables.attempt
        with self.sessions.begin() as session:
            session.execute(delete(model).where(model.id.in_(attempts)))


def same_origin(origin: str | None, host: str, public_url: str | None = None) -> bool:
    """Whether a POST's `Origin` header is this site (defence in depth besides the CSRF token):
    no header is a same-origin form of an older browser; "null" never is. With `public_url`
    (a proxy rewrites Host) the origin must be that URL's."""
    if not origin or origin == "null":
        return origin is None
    if public_url:
        return origin.rstrip("/") == public_url.rstrip("/")
    return urlsplit(origin).netloc == host
