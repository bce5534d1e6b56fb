"""Data at rest: AES-256-GCM with a context string (e.g. a certificate identifier) as associated
data, so a ciphertext cannot be moved to another row unnoticed."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.error_codes import ErrorCode
from registry.errors import EcertError

_NONCE = 12


class DataCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode())
        except InvalidTag as exc:
            raise EcertError(
                "Stored personal data does not decrypt: wrong data key?", code=ErrorCode.DATA_KEY_MISMATCH
            ) from exc
