"""Front-desk staff accounts (verifier/staff.py, issue 11 point 1) on a real database (SQLite
migrated by alembic): password and TOTP both needed, a code used once is refused again, wrong
tries are throttled per account, a disabled member is refused and their sessions end."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pyotp
import pytest

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from verifier.db import make_engine, migrate, sessions
from verifier.orgs import Organisations
from verifier.staff import PER_ACCOUNT, StaffAccounts

PASSWORD = "front-desk-pass-1"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def accounts(tmp_path: Path) -> tuple[StaffAccounts, int, Clock]:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    org_id, _ = Organisations(made, rate_per_min=60).add("某某银行杭州分行", "330100", "bank")
    clock = Clock()
    return StaffAccounts(made, secrets.token_bytes(32), secrets.token_bytes(32), clock=clock), org_id, clock


def _code(secret: str, clock: Clock) -> str:
    return pyotp.TOTP(secret).at(clock.now)


def test_sign_in_needs_the_password_and_the_current_totp_code_once(
    accounts: tuple[StaffAccounts, int, Clock],
) -> None:
    staff, org_id, clock = accounts
    made = staff.add(org_id, "wangfang", "王芳", PASSWORD)
    assert made.uri.startswith("otpauth://totp/") and made.secret in made.uri
    for password, code in ((PASSWORD, "000000" if _code(made.secret, clock) != "000000" else "111111"),
                           ("wrong-password-1", _code(made.secret, clock))):  # fmt: skip
        with pytest.raises(EcertError) as refused:
            staff.sign_in("wangfang", password, code, network="10.0.0.1")
        assert refused.value.code is ErrorCode.STAFF_LOGIN_FAILED
    token = staff.sign_in("WangFang", PASSWORD, _code(made.secret, clock), network="10.0.0.1")
    signed = staff.resolve(token)
    assert (
        signed is not None
        and signed.member.organisation == "某某银行杭州分行"
        and signed.member.display_name == "王芳"
    )
    with pytest.raises(EcertError) as replayed:  # the same code again: refused
        staff.sign_in("wangfang", PASSWORD, _code(made.secret, clock), network="10.0.0.1")
    assert replayed.value.code is ErrorCode.STAFF_LOGIN_FAILED
    clock.now += dt.timedelta(seconds=30)
    assert staff.resolve(staff.sign_in("wangfang", PASSWORD, _code(made.secret, clock), network="10.0.0.1"))
    staff.disable(made.id)
    assert staff.resolve(token) is None
    clock.now += dt.timedelta(seconds=30)
    with pytest.raises(EcertError):
        staff.sign_in("wangfang", PASSWORD, _code(made.secret, clock), network="10.0.0.1")


def test_wrong_codes_are_throttled_per_account(accounts: tuple[StaffAccounts, int, Clock]) -> None:
    staff, org_id, clock = accounts
    made = staff.add(org_id, "lisi", "李四", PASSWORD)
    wrong = "000000" if _code(made.secret, clock) != "000000" else "111111"
    for _ in range(PER_ACCOUNT):
        with pytest.raises(EcertError) as refused:
            staff.sign_in("lisi", PASSWORD, wrong, network="10.0.0.2")
        assert refused.value.code is ErrorCode.STAFF_LOGIN_FAILED
    with pytest.raises(EcertError) as limited:  # even the right code now waits
        staff.sign_in("lisi", PASSWORD, _code(made.secret, clock), network="10.0.0.2")
    assert limited.value.code is ErrorCode.RATE_LIMITED and limited.value.details["retryAfter"] > 0
    clock.now += dt.timedelta(minutes=16)
    assert staff.sign_in("lisi", PASSWORD, _code(made.secret, clock), network="10.0.0.2")


def test_usernames_are_unique_and_checked(accounts: tuple[StaffAccounts, int, Clock]) -> None:
    staff, org_id, _ = accounts
    staff.add(org_id, "zhao", "赵", PASSWORD)
    for username, code in (("zhao", ErrorCode.STAFF_EXISTS), ("赵 x", ErrorCode.USERNAME_INVALID)):
        with pytest.raises(EcertError) as refused:
            staff.add(org_id, username, "赵", PASSWORD)
        assert refused.value.code is code
    with pytest.raises(EcertError) as weak:
        staff.add(org_id, "qian", "钱", "short")
    assert weak.value.code is ErrorCode.PASSWORD_WEAK
