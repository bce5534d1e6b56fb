"""Encrypted keystores for root, authority and agency keys (Ethereum keystore v3, scrypt).

A private key is decrypted only inside `Keystore.unlocked()`, never logged, never returned as
text: callers get an `eth_account` account object for the duration of the block.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.error_codes import ErrorCode
from registry.errors import KeystoreError
from registry.secrets_files import private_folder

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Keystore:
    """A folder of encrypted keys, one JSON file per named key."""

    def __init__(self, directory: Path, password: str, *, scrypt_n: int = 2**16) -> None:
        self._dir = Path(directory)
        self._password = password
        self._scrypt_n = scrypt_n

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise KeystoreError(f"Invalid key name {name!r}: use letters, digits, '.', '_' or '-'")
        return self._dir / f"{name}.json"

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
        tmp = path.with_suffix(".tmp")
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
