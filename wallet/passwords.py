"""Holder passwords: scrypt (RFC 7914) from the standard library, in a self-describing string
`scrypt$<n>$<r>$<p>$<salt>$<hash>` so the cost can be raised later (`needs_rehash`)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

from registry.error_codes import ErrorCode
from registry.errors import EcertError

R, P, SALT_BYTES, HASH_BYTES = 8, 1, 16, 32
MIN_LENGTH, MAX_LENGTH = 10, 128
COMMON_COUNT = 10_000  # the most common passwords refused, from zxcvbn's ranked list (leaked password sets)
RULE = {  # what `check_password_rules` enforces, in the holder's words (the demo and pages say this)
    "en": f"{MIN_LENGTH} to {MAX_LENGTH} characters, at least 3 different ones, not containing your ID number, not a common password",
    "zh": f"{MIN_LENGTH}至{MAX_LENGTH}个字符，至少3种不同字符，不能含身份证号，不能是常见密码",
}


class PasswordRejected(EcertError):
    code = ErrorCode.PASSWORD_WEAK


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * r * n + (1 << 20), dklen=HASH_BYTES
    )


def hash_password(password: str, *, n: int) -> str:
    salt = os.urandom(SALT_BYTES)
    return f"scrypt${n}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, n, R, P))}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, _unb64(salt), int(n), int(r), int(p)), _unb64(expected))
    except (ValueError, TypeError):
        return False


def needs_rehash(stored: str, *, n: int) -> bool:
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != "scrypt" or int(parts[1]) < n


@functools.cache
def common_passwords() -> frozenset[str]:
    """The `COMMON_COUNT` most common passwords, lower-case: the head of the frequency-ranked list
    zxcvbn ships (no download; loaded on first use)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranked: list[str] | str = FREQUENCY_LISTS["passwords"]  # a list, or one comma-separated string
    ranked = ranked.split(",") if isinstance(ranked, str) else ranked
    return frozenset(p.lower() for p in ranked[:COMMON_COUNT])


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


# A hash to compare against when no account matches, so a wrong ID number costs as long as a wrong password.
def dummy_hash(n: int) -> str:
    return f"scrypt${n}${R}${P}${_b64(b'0' * SALT_BYTES)}${_b64(b'0' * HASH_BYTES)}"
