"""Holder passwords: scrypt (RFC 7914) from the standard library, in a self-describing string
`scrypt$<n>$<r>$<p>$<salt>$<hash>` so the cost can be raised later (`needs_rehash`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from registry.errors import EcertError

R, P, SALT_BYTES, HASH_BYTES = 8, 1, 16, 32
MIN_LENGTH, MAX_LENGTH = 8, 128
RULE = {  # what `check_password_rules` enforces, in the holder's words (the demo and pages say this)
    "en": f"{MIN_LENGTH} to {MAX_LENGTH} characters, not your ID number, not one character repeated",
    "zh": f"{MIN_LENGTH}至{MAX_LENGTH}个字符，不能含身份证号，不能只用同一个字符",
}


class PasswordRejected(EcertError):
    code = "PASSWORD_WEAK"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * r * n + (1 << 20), dklen=HASH_BYTES)


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


def check_password_rules(password: str, *, id_number: str) -> None:
    """8 to 128 characters, not the ID number, not one character repeated."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"The password needs at least {MIN_LENGTH} characters", code="PASSWORD_TOO_SHORT", field="password")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"The password may have at most {MAX_LENGTH} characters", code="PASSWORD_TOO_LONG", field="password")
    if id_number and id_number.lower() in password.lower() or len(set(password)) < 3:
        raise PasswordRejected("Choose a password that is not your ID number and not one repeated character", field="password")


# A hash to compare against when no account matches, so a wrong ID number costs as long as a wrong password.
def dummy_hash(n: int) -> str:
    return f"scrypt${n}${R}${P}${_b64(b'0' * SALT_BYTES)}${_b64(b'0' * HASH_BYTES)}"
