"""Agency signing keys for a running issuer: each decrypted from the keystore once per process
and kept in memory only (never logged, never written)."""

from __future__ import annotations

import threading

from eth_account.signers.local import LocalAccount

from registry.keys import Keystore
from registry.workspace import agency_key_name


class SignerPool:
    def __init__(self, keystore: Keystore) -> None:
        self._keystore = keystore
        self._accounts: dict[str, LocalAccount] = {}
        self._national: dict[str, tuple[bytes, bytes]] = {}  # agency → (public, private) SM2 key
        self._lock = threading.Lock()

    def __call__(self, agency_code: str) -> LocalAccount:
        """The agency's current key: `ecert agency rotate-key` replaces the keystore entry while the
        issuer runs, so the entry's address is read each time and a new key is unlocked once."""
        name = agency_key_name(agency_code)
        address = self._keystore.address(name)
        with self._lock:
            cached = self._accounts.get(agency_code)
            if cached is None or cached.address != address:
                with self._keystore.unlocked(name) as account:
                    self._accounts[agency_code] = account
            return self._accounts[agency_code]

    def national_key(self, agency_code: str) -> bytes | None:
        """The agency's current SM2 private key (32 bytes; the national co-seal and the OFD
        licence's seal), or None for an agency without one (registered before the co-seal and
        not yet given one by `ecert agency add-national-key`). Like `__call__`, the keystore's
        public key is read each time, so a rotated key is unlocked once."""
        name = agency_key_name(agency_code)
        if not self._keystore.has_national(name):
            return None
        public = self._keystore.national_public_key(name)
        with self._lock:
            cached = self._national.get(agency_code)
            if cached is None or cached[0] != public:
                with self._keystore.unlocked_national(name) as private:
                    self._national[agency_code] = (public, bytes(private))
            return self._national[agency_code][1]

    def __repr__(self) -> str:  # never show keys
        return f"SignerPool({len(self._accounts)} agencies, {len(self._national)} SM2 keys)"
