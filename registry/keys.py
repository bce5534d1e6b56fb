"""Encrypted keystores for root, authority and agency keys (Ethereum keystore v3, scrypt).

A private key is decrypted only inside `Keystore.unlocked()`, never logged, never returned as
text: callers get an `eth_account` account object for the duration of the block.

An agency's SM2 key (national co-seal) sits beside its secp256k1 key as `<name>.sm2`: JSON
holding the public key in clear (read without the password) and the 32-byte private key
sealed with AES-256-GCM under a key derived from the keystore password by scrypt (the same
cost as the keystore v3 files), the public key bound as associated data. Decrypted only inside
`Keystore.unlocked_national()`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.error_codes import ErrorCode
from registry.errors import KeystoreError
from registry.secrets_files import private_folder

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SM2_FORMAT = "ecert-sm2-key"
_SM2_AAD = b"ecert-sm2-key/1"


class Keystore:
    """A folder of encrypted keys, one JSON file per named key."""

    def __init__(self, directory: Path, password: str, *, scrypt_n: int = 2**16) -> None:
        self._dir = Path(directory)
        self._password = password
        self._scrypt_n = scrypt_n

    def _path(self, name: str, suffix: str = ".json") -> Path:
        if not _NAME.match(name):
            raise KeystoreError(f"Invalid key name {name!r}: use letters, digits, '.', '_' or '-'")
        return self._dir / f"{name}{suffix}"

    def create(self, name: str) -> str:
        """Create a new random key under `name` and return its address."""
        path = self._path(name)
        if path.exists():
            raise KeystoreError(f"Key {name!r} already exists in {self._dir}", code=ErrorCode.KEY_EXISTS)
        account: LocalAccount = Account.create()
        self._write(
            path, Account.encrypt(account.key, self._password, kdf="scrypt", iterations=self._scrypt_n)
        )
        return account.address

    def _write(self, path: Path, keyfile: dict[str, Any]) -> None:
        private_folder(self._dir)  # 0700 (and any parent it makes), whatever the umask
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode through O_TRUNC
            json.dump(keyfile, handle)
        tmp.replace(path)

    def rename(self, name: str, new_name: str) -> None:
        target = self._path(new_name)
        if target.exists():
            raise KeystoreError(f"Key {new_name!r} already exists in {self._dir}", code=ErrorCode.KEY_EXISTS)
        self._path(name).replace(target)

    # ─── SM2 keys (national co-seal) ─────────────────────────────────────────────────────

    def create_national(self, name: str) -> bytes:
        """Create a new random SM2 key under `name` (file `<name>.sm2`) and return its public key."""
        from registry.national import generate_private_key, public_key

        path = self._path(name, ".sm2")
        if path.exists():
            raise KeystoreError(f"SM2 key {name!r} already exists in {self._dir}", code=ErrorCode.KEY_EXISTS)
        private = generate_private_key()
        public = public_key(private)
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(self._sm2_kek(salt, self._scrypt_n)).encrypt(nonce, private, _SM2_AAD + public)
        del private
        self._write(path, {
            "format": SM2_FORMAT, "version": 1, "publicKey": public.hex(),
            "kdf": "scrypt", "kdfparams": {"n": self._scrypt_n, "r": 8, "p": 1, "salt": salt.hex()},
            "cipher": "aes-256-gcm", "nonce": nonce.hex(), "ciphertext": sealed.hex(),
        })  # fmt: skip
        return public

    def has_national(self, name: str) -> bool:
        return self._path(name, ".sm2").exists()

    def national_public_key(self, name: str) -> bytes:
        """The SM2 public key (64 bytes X ‖ Y), read without decrypting."""
        return bytes.fromhex(self._read_national(name)["publicKey"])

    def rename_national(self, name: str, new_name: str) -> None:
        target = self._path(new_name, ".sm2")
        if target.exists():
            raise KeystoreError(
                f"SM2 key {new_name!r} already exists in {self._dir}", code=ErrorCode.KEY_EXISTS
            )
        self._path(name, ".sm2").replace(target)

    @contextmanager
    def unlocked_national(self, name: str) -> Iterator[bytes]:
        """Decrypt SM2 key `name` for the duration of the block: its 32-byte private key."""
        from registry.national import public_key

        keyfile = self._read_national(name)
        try:
            public = bytes.fromhex(keyfile["publicKey"])
            params = keyfile["kdfparams"]
            kek = self._sm2_kek(bytes.fromhex(params["salt"]), int(params["n"]))
            private = AESGCM(kek).decrypt(
                bytes.fromhex(keyfile["nonce"]), bytes.fromhex(keyfile["ciphertext"]), _SM2_AAD + public
            )
        except InvalidTag as exc:
            raise KeystoreError(
                f"Cannot decrypt SM2 key {name!r}: wrong ECERT_KEYSTORE_PASSWORD?",
                code=ErrorCode.KEY_DECRYPT_FAILED,
            ) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(
                f"SM2 key file {name!r} is damaged", code=ErrorCode.KEY_DECRYPT_FAILED
            ) from exc
        if public_key(private) != public:
            raise KeystoreError(
                f"SM2 key {name!r} does not match its public key", code=ErrorCode.KEY_DECRYPT_FAILED
            )
        try:
            yield private
        finally:
            del private

    def _sm2_kek(self, salt: bytes, n: int) -> bytes:
        return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(self._password.encode("utf-8"))

    def _read_national(self, name: str) -> dict[str, Any]:
        path = self._path(name, ".sm2")
        if not path.exists():
            raise KeystoreError(
                f"No SM2 key {name!r} in {self._dir}: run `ecert agency add-national-key`",
                code=ErrorCode.KEY_NOT_FOUND,
            )
        keyfile: dict[str, Any] = json.loads(path.read_text())
        if keyfile.get("format") != SM2_FORMAT:
            raise KeystoreError(f"{path.name} is not an SM2 key file", code=ErrorCode.KEY_DECRYPT_FAILED)
        return keyfile

    def has(self, name: str) -> bool:
        return self._path(name).exists()

    def address(self, name: str) -> str:
        """The address of a key, read without decrypting it."""
        return _checksum(self._read(name)["address"])

    def names(self) -> list[str]:
        return sorted(p.stem for p in self._dir.glob("*.json")) if self._dir.exists() else []

    def _read(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        if not path.exists():
            raise KeystoreError(f"No key {name!r} in {self._dir}", code=ErrorCode.KEY_NOT_FOUND)
        keyfile: dict[str, Any] = json.loads(path.read_text())
        return keyfile

    @contextmanager
    def unlocked(self, name: str) -> Iterator[LocalAccount]:
        """Decrypt key `name` for the duration of the block."""
        keyfile = self._read(name)
        try:
            private_key = Account.decrypt(keyfile, self._password)
        except ValueError as exc:
            raise KeystoreError(
                f"Cannot decrypt key {name!r}: wrong ECERT_KEYSTORE_PASSWORD?",
                code=ErrorCode.KEY_DECRYPT_FAILED,
            ) from exc
        account = Account.from_key(private_key)
        try:
            yield account
        finally:
            del account, private_key


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address if address.startswith("0x") else "0x" + address)
