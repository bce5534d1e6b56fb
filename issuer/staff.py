"""Agency staff of the issuer (issue 12, point 1): people who sign in to the console (`/console`)
with a password and a TOTP code, each in one role of one agency. API keys stay for systems.

Roles (`Role`), each allowed only what it names — no role includes another, so the clerk who
proposes a change is never the approver who accepts it:

* clerk — issues certificates and drafts status changes;
* approver — approves or rejects what a clerk proposed;
* auditor — reads only: the audit trail and the dashboard;
* admin — manages the agency's staff and API keys.

Sign-in, sessions, CSRF and throttling are `registry.staff_auth` (the verifier's front desk uses
the same), with the wallet's password rule: 10 to 128 characters, at least 3 different, not one
of the 10 000 most common passwords.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from issuer.audit import AuditAction, AuditLog
from issuer.models import Agency, StaffAttempt, StaffMember, StaffSession
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotFound
from registry.staff_auth import AuthPolicy, SignIn, StaffAuth, StaffTables

if TYPE_CHECKING:
    from issuer.runtime import IssuerRuntime

Clock = Callable[[], dt.datetime]
POLICY = AuthPolicy("ecert 签发机构控制台", refuse_common=True)  # the name an authenticator app shows
TABLES = StaffTables(member=StaffMember, session=StaffSession, attempt=StaffAttempt)
HMAC_KEY_FILE = "staff-hmac.key"  # in <home>/issuer: CSRF tokens and throttle keys


class Role(enum.StrEnum):
    CLERK = "clerk"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


ROLE_HELP = {
    Role.CLERK: "issues certificates and drafts status changes",
    Role.APPROVER: "approves or rejects what a clerk proposed",
    Role.AUDITOR: "reads only: the audit trail and the dashboard",
    Role.ADMIN: "manages the agency's staff and API keys",
}


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise EcertError(
            f"Unknown role {text[:20]!r}: one of {names}", code=ErrorCode.STAFF_ROLE_INVALID, field="role"
        ) from None


@dataclass(frozen=True)
class NewStaff:
    """What `add` returns, shown once: the TOTP secret and its provisioning URI (a QR for the app)."""

    id: int
    username: str
    role: Role
    secret: str
    uri: str


@dataclass(frozen=True)
class StaffView:
    id: int
    username: str
    display_name: str
    role: Role
    agency_code: str
    agency_name: str
    disabled: bool


@dataclass(frozen=True)
class SignedInStaff:
    token_hash: str
    member: StaffView


class IssuerStaff:
    """Staff accounts, sign-in and sessions; every change of an account and every sign-in,
    refused sign-in and sign-out is written to the agency's audit trail (`issuer.audit`)."""

    def __init__(self, sessions: sessionmaker[Session], data_key: bytes, hmac_key: bytes,
                 clock: Clock | None = None) -> None:  # fmt: skip
        self._sessions = sessions
        self.auth = StaffAuth(sessions, TABLES, data_key, hmac_key, POLICY, clock)
        self.audit = AuditLog(sessions, clock=clock) if clock else AuditLog(sessions)

    # ─── accounts (the CLI) ─────────────────────────────────────────────────────────────

    def add(
        self, agency_code: str, role: Role | str, username: str, display_name: str, password: str
    ) -> NewStaff:
        role = parse_role(role)
        made = self.auth.credentials(username, password)
        try:
            with self._sessions.begin() as session:
                if session.get(Agency, agency_code) is None:
                    raise NotFound(f"Agency {agency_code} is not served here (`ecert issuer api-key create` registers it)",
                                   code=ErrorCode.AGENCY_UNKNOWN, field="agency")  # fmt: skip
                row = StaffMember(
                    agency_code=agency_code, role=role.value, username=made.username,
                    display_name=display_name.strip() or made.username, password_hash=made.password_hash,
                    totp_secret=made.totp_secret, last_totp_step=0, created_at=self.auth.clock(),
                )  # fmt: skip
                session.add(row)
                session.flush()
                staff_id = row.id
        except IntegrityError as exc:
            raise EcertError(
                f"The username {made.username} is taken", code=ErrorCode.STAFF_EXISTS, field="username"
            ) from exc
        self.audit.append(agency_code, "system", AuditAction.STAFF_CHANGE, made.username,
                          {"change": "added", "role": role.value, "staffId": staff_id})  # fmt: skip
        return NewStaff(staff_id, made.username, role, made.secret, made.uri)

    def members(self, agency_code: str | None = None) -> list[StaffView]:
        with self._sessions() as session:
            query = select(StaffMember, Agency).join(Agency, Agency.code == StaffMember.agency_code)
            if agency_code is not None:
                query = query.where(StaffMember.agency_code == agency_code)
            return [_view(m, a) for m, a in session.execute(query.order_by(StaffMember.id))]

    def disable(self, staff_id: int) -> StaffView:
        """Refuse the member's sign-ins from now on and end their sessions."""
        with self._sessions.begin() as session:
            member = session.get(StaffMember, staff_id)
            if member is None:
                raise NotFound(f"No staff member {staff_id} (`ecert issuer staff list`)",
                               code=ErrorCode.STAFF_NOT_FOUND, field="id")  # fmt: skip
            member.disabled_at = member.disabled_at or self.auth.clock()
            self.auth.end_sessions(session, staff_id)
            agency = session.get(Agency, member.agency_code)
            assert agency is not None  # a foreign key
            view = _view(member, agency)
        self.audit.append(view.agency_code, "system", AuditAction.STAFF_CHANGE, view.username,
                          {"change": "disabled", "staffId": view.id})  # fmt: skip
        return view

    # ─── signing in (the console) ───────────────────────────────────────────────────────

    def sign_in(self, username: str, password: str, code: str, *, network: str) -> SignIn:
        """A new session for the member if the password and the TOTP code are right and the
        account is enabled; `STAFF_LOGIN_FAILED` otherwise, `RATE_LIMITED` after too many tries
        for the username or from the network (`registry.staff_auth.address_key`). Both are audited
        in the member's agency (a refusal for a username nobody has is in no agency's trail)."""
        try:
            done = self.auth.sign_in(username, password, code, network=network)
        except EcertError as exc:
            # A throttled try checks nothing and costs the attacker nothing: not written (the
            # limit's own rows count them), or anyone could grow the trail without bound
            member = None if exc.code is ErrorCode.RATE_LIMITED else self._member_named(username)
            if member is not None:
                self.audit.append(member.agency_code, member.username, AuditAction.SIGN_IN_FAILED, member.username,
                                  {"code": exc.code.value, "network": network})  # fmt: skip
            raise
        with self._sessions() as session:
            signed = session.get(StaffMember, done.staff_id)
            assert signed is not None  # it just signed in
            self.audit.append(signed.agency_code, signed.username, AuditAction.SIGN_IN, signed.username,
                              {"network": network})  # fmt: skip
        return done

    def _member_named(self, username: str) -> StaffMember | None:
        with self._sessions() as session:
            return session.scalars(
                select(StaffMember).where(StaffMember.username == username.strip().lower())
            ).first()

    def resolve(self, token: str | None) -> SignedInStaff | None:
        """The live session behind a cookie (its idle clock restarted), or None."""
        found = self.auth.resolve(token, _member_view)
        return SignedInStaff(*found) if found else None

    def sign_out(self, token: str | None) -> None:
        signed = self.resolve(token)
        self.auth.sign_out(token)
        if signed is not None:
            m = signed.member
            self.audit.append(m.agency_code, m.username, AuditAction.SIGN_OUT, m.username, {})

    def csrf_token(self, binding: str) -> str:
        return self.auth.csrf_token(binding)

    def csrf_ok(self, binding: str | None, given: str | None) -> bool:
        return self.auth.csrf_ok(binding, given)


def staff_accounts(runtime: IssuerRuntime) -> IssuerStaff:
    """The runtime's staff accounts: TOTP secrets sealed with the issuer's data key, CSRF and
    throttle keys from `<home>/issuer/staff-hmac.key` (made 0600 on first use)."""
    from registry.secrets_files import load_or_create_secret

    core = runtime.workspace.settings
    return IssuerStaff(
        runtime.sessions,
        runtime.settings.load_data_key(core),
        load_or_create_secret(core.home / "issuer" / HMAC_KEY_FILE),
    )


def _member_view(session: Session, member: StaffMember) -> StaffView | None:
    agency = session.get(Agency, member.agency_code)
    return _view(member, agency) if agency is not None else None


def _view(member: StaffMember, agency: Agency) -> StaffView:
    return StaffView(member.id, member.username, member.display_name, Role(member.role), agency.code,
                     agency.name, member.disabled_at is not None)  # fmt: skip
