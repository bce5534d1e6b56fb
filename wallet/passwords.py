"""Holder passwords: the wallet's rules (length, variety, not the ID number, not a common
password) in the holder's language; the scrypt hashes are `registry.password_hash`, shared with
the verifier's front-desk staff."""

from __future__ import annotations

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.staff_auth import common_passwords

MIN_LENGTH, MAX_LENGTH = 10, 128
RULE = {  # what `check_password_rules` enforces, in the holder's words (the demo and pages say this)
    "en": f"{MIN_LENGTH} to {MAX_LENGTH} characters, at least 3 different ones, not containing your ID number, not a common password",
    "zh": f"{MIN_LENGTH}至{MAX_LENGTH}个字符，至少3种不同字符，不能含身份证号，不能是常见密码",
}


class PasswordRejected(EcertError):
    code = ErrorCode.PASSWORD_WEAK


def is_common(password: str) -> bool:
    return password.lower() in common_passwords()


def check_password_rules(password: str, *, id_number: str) -> None:
    """10 to 128 characters, at least 3 different ones, not containing the ID number, not a common password (`RULE`)."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(
            f"The password needs at least {MIN_LENGTH} characters",
            code=ErrorCode.PASSWORD_TOO_SHORT,
            field="password",
        )
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(
            f"The password may have at most {MAX_LENGTH} characters",
            code=ErrorCode.PASSWORD_TOO_LONG,
            field="password",
        )
    if (id_number and id_number.lower() in password.lower()) or len(set(password)) < 3:
        raise PasswordRejected(
            "Choose a password with at least 3 different characters that does not contain your ID number",
            field="password",
        )
    if is_common(password):
        raise PasswordRejected(
            "This is one of the most common passwords: choose another",
            code=ErrorCode.PASSWORD_COMMON,
            field="password",
        )
