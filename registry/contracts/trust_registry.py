"""Typed binding of the trust registry: authorities, agencies, types and keys.

Codes (统一社会信用代码, type codes) travel as ASCII left-aligned in a bytes32; regions as the
six-digit number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from registry.chain.client import ChainClient, Receipt
from registry.contracts.artifacts import artifact


def to_bytes32(text: str) -> bytes:
    """ASCII code → bytes32, left-aligned (as Solidity `bytes32("…")`)."""
    raw = text.encode("ascii")
    if not raw or len(raw) > 32:
        raise ValueError(f"{text!r} does not fit a bytes32")
    return raw.ljust(32, b"\0")


def from_bytes32(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii")


@dataclass(frozen=True)
class KeyInfo:
    address: str
    agency_code: str
    valid_from: int
    retired_at: int
    compromised_since: int


@dataclass(frozen=True)
class NationalKeyInfo:
    """An SM2 key (national co-seal) of an agency and its record (0 = not set), as the registry
    keeps it: the same record for the chain, the index and the offline snapshot."""

    key_id: bytes  # keccak256(public_key)
    public_key: bytes  # 64 bytes X ‖ Y
    agency_code: str
    valid_from: int
    retired_at: int
    compromised_since: int

    def is_good_at(self, time: int) -> bool:
        """Exactly `TrustRegistry._isGoodAt`: retirement second included, compromise second excluded."""
        return (
            self.valid_from <= time
            and (self.retired_at == 0 or time <= self.retired_at)
            and (self.compromised_since == 0 or time < self.compromised_since)
        )


@dataclass(frozen=True)
class AgencyInfo:
    code: str
    region: int
    suspended: bool
    name: str


class TrustRegistry:
    """Calls of the trust registry part of the deployed contract."""

    contract_name = "CertificateRegistry"

    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        self.address = client.w3.to_checksum_address(address)
        self.contract: Contract = client.w3.eth.contract(
            address=self.address, abi=artifact(self.contract_name).abi
        )

    def _send(self, account: LocalAccount, fn: str, *args: Any, gas: int | None = None) -> Receipt:
        return self.client.transact(
            account, getattr(self.contract.functions, fn)(*args), gas=gas, contract=self.contract_name
        )

    def _view(self, fn: str, *args: Any) -> Any:
        return self.client.call(getattr(self.contract.functions, fn)(*args), contract=self.contract_name)

    # root
    def add_authority(self, root: LocalAccount, account: str, region: int, name: str) -> Receipt:
        return self._send(root, "addAuthority", account, region, name)

    def remove_authority(self, root: LocalAccount, account: str) -> Receipt:
        return self._send(root, "removeAuthority", account)

    # authorities
    def register_agency(
        self, authority: LocalAccount, code: str, region: int, name: str, key: str, type_codes: list[str]
    ) -> Receipt:
        return self._send(
            authority,
            "registerAgency",
            to_bytes32(code),
            region,
            name,
            key,
            [to_bytes32(t) for t in type_codes],
        )

    def grant_types(self, authority: LocalAccount, code: str, type_codes: list[str]) -> Receipt:
        return self._send(authority, "grantTypes", to_bytes32(code), [to_bytes32(t) for t in type_codes])

    def revoke_types(self, authority: LocalAccount, code: str, type_codes: list[str]) -> Receipt:
        return self._send(authority, "revokeTypes", to_bytes32(code), [to_bytes32(t) for t in type_codes])

    def suspend_agency(self, authority: LocalAccount, code: str) -> Receipt:
        return self._send(authority, "suspendAgency", to_bytes32(code))

    def reinstate_agency(self, authority: LocalAccount, code: str) -> Receipt:
        return self._send(authority, "reinstateAgency", to_bytes32(code))

    # authorities or the agency
    def add_key(self, actor: LocalAccount, code: str, key: str, valid_from: int = 0) -> Receipt:
        return self._send(actor, "addKey", to_bytes32(code), key, valid_from)

    def retire_key(self, actor: LocalAccount, key: str) -> Receipt:
        return self._send(actor, "retireKey", key)

    def compromise_key(self, actor: LocalAccount, key: str, since: int) -> Receipt:
        return self._send(actor, "compromiseKey", key, since)

    def add_national_key(
        self, actor: LocalAccount, code: str, public_key: bytes, valid_from: int = 0
    ) -> Receipt:
        return self._send(actor, "addNationalKey", to_bytes32(code), bytes(public_key), valid_from)

    def retire_national_key(self, actor: LocalAccount, key_id: bytes) -> Receipt:
        return self._send(actor, "retireNationalKey", bytes(key_id))

    def compromise_national_key(self, authority: LocalAccount, key_id: bytes, since: int) -> Receipt:
        return self._send(authority, "compromiseNationalKey", bytes(key_id), since)

    # views
    def authority_region(self, account: str) -> int:
        region: int = self._view("authorityRegion", account)
        return region

    def agency(self, code: str) -> AgencyInfo:
        raw = self._view("agency", to_bytes32(code))
        return AgencyInfo(from_bytes32(raw[0]), raw[1], raw[2], raw[3])

    def agency_keys(self, code: str) -> list[str]:
        return list(self._view("agencyKeys", to_bytes32(code)))

    def key_info(self, key: str) -> KeyInfo:
        record, code = self._view("keyRecord", key)
        return KeyInfo(key, from_bytes32(code), record[1], record[2], record[3])

    def is_granted(self, code: str, type_code: str) -> bool:
        granted: bool = self._view("isGranted", to_bytes32(code), to_bytes32(type_code))
        return granted

    def agency_national_keys(self, code: str) -> list[bytes]:
        """The ids of the agency's SM2 keys, oldest first."""
        return [bytes(key_id) for key_id in self._view("agencyNationalKeys", to_bytes32(code))]

    def national_key_info(self, key_id: bytes) -> NationalKeyInfo:
        record, code, public_key = self._view("nationalKeyRecord", bytes(key_id))
        return NationalKeyInfo(
            bytes(key_id), bytes(public_key), from_bytes32(code), record[1], record[2], record[3]
        )

    def national_keys(self, code: str) -> list[NationalKeyInfo]:
        """The agency's SM2 keys with their records, oldest first."""
        return [self.national_key_info(key_id) for key_id in self.agency_national_keys(code)]

    def was_national_key_valid_at(self, key_id: bytes, time: int) -> bool:
        valid: bool = self._view("wasNationalKeyValidAt", bytes(key_id), time)
        return valid
