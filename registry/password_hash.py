"""Password hashes of the people who sign in (wallet holders, front-desk staff): scrypt, stored as
`scrypt$<n>$<r>$<p>$<salt>$<hash>` so the cost can be raised later (`needs_rehash`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

R, P, SALT_BYTES, HASH_BYTES = 8, 1, 16, 32


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


def dummy_hash(n: int) -> str:
    """A hash to compare against when no account matches, so a wrong name costs as long as a wrong password."""
    return f"scrypt${n}${R}${P}${_b64(b'0' * SALT_BYTES)}${_b64(b'0' * HASH_BYTES)}"
