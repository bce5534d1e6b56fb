"""Decode contract reverts by selector into the Solidity custom error's name and arguments."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import keccak

from registry.contracts.artifacts import artifact
from registry.errors import ContractRevert

_PANIC = bytes.fromhex("4e487b71")
_ERROR_STRING = bytes.fromhex("08c379a0")


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(_type(i) for i in item['inputs'])})"


def _type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_type(c) for c in param['components'])}){kind[5:]}"
    return kind


@cache
def _errors(contract: str) -> dict[bytes, dict[str, Any]]:
    return {
        keccak(text=_signature(item))[:4]: item for item in artifact(contract).abi if item["type"] == "error"
    }


def decode_revert(data: bytes | str | None, contract: str = "CertificateRegistry") -> ContractRevert:
    """Turn raw revert data into a `ContractRevert` named after the Solidity error."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    data = data or b""
    selector, body = data[:4], data[4:]
    if selector == _ERROR_STRING:
        return ContractRevert("Error", {"message": decode(["string"], body)[0]})
    if selector == _PANIC:
        return ContractRevert("Panic", {"code": decode(["uint256"], body)[0]})
    item = _errors(contract).get(selector)
    if item is None:
        return ContractRevert("UnknownError", {"data": "0x" + data.hex()})
    values = decode([_type(i) for i in item["inputs"]], body)
    return ContractRevert(
        item["name"],
        {
            i["name"] or f"arg{n}": _plain(v)
            for n, (i, v) in enumerate(zip(item["inputs"], values, strict=False))
        },
    )


def _plain(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


# ─── what an anchoring worker does about a revert ────────────────────────────────────────

ANCHOR_DONE = frozenset({"CertificateRegistryRootAlreadyAnchored"})
"""The root is on chain already: the batch is anchored, whoever sent it."""

ANCHOR_REFUSED = frozenset({
    "TrustRegistryTypeNotGranted",  # the agency lost (or never had) the type
    "TrustRegistryKeyNotActive",  # the key is retired, compromised, not yet valid, or no agency's
    "TrustRegistryUnknownKey",
    "TrustRegistryUnknownAgency",
    "TrustRegistryAgencySuspended",  # until an authority reinstates it: a person decides, not a timer
    "CertificateRegistryInvalidBatch",  # a zero root or count: sending it again changes nothing
})  # fmt: skip
"""Refusals that the same transaction would meet again: never retried on their own."""


def anchor_outcome(revert: ContractRevert | None) -> str:
    """ "done", "refused" or "transient" for the revert of an `anchor` transaction (None: it
    failed without revert data, e.g. out of gas, which another attempt may get through)."""
    if revert is None:
        return "transient"
    if revert.name in ANCHOR_DONE:
        return "done"
    if revert.name in ANCHOR_REFUSED:
        return "refused"
    return "transient"  # Panic, Error(string), unknown selectors, node trouble
