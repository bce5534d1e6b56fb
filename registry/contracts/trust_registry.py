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
