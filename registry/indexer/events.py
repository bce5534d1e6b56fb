"""Registry logs → typed events → index rows. Pure: no I/O, so it is tested without a chain.

Logs are decoded by their first topic against the contract's generated ABI (never a hand-typed
signature), so a new event in the contract is seen here as "unknown" and skipped, never misread.
An anonymous event (`CertificatesRevoked`, which saves its signature topic) is told apart by its
number of topics instead, which no other event of the contract shares (checked at start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3.contract import Contract

from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import from_bytes32
from registry.indexer.store import (
    Agency,
    AgencySuspension,
    AuthorityChange,
    Batch,
    BatchRevocation,
    EventRow,
    Key,
    KeyChange,
    NationalKey,
    NationalKeyChange,
    StatusChange,
    TypeGrant,
)

log = logging.getLogger(__name__)

Row = tuple[type[EventRow], dict[str, Any]]
AgencyCodeOf = Callable[[int, str], str]  # (agency index, anchoring key) -> agency code


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log of the registry."""

    name: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: bytes
    log_index: int
    tx_hash: bytes


class EventDecoder:
    """Decodes the registry's logs by topic; logs of other events (or contracts) give None."""

    def __init__(self, contract: Contract) -> None:
        self._address = contract.address.lower()
        # web3 annotates `ContractEvents.__iter__` as returning an Iterable, not an Iterator
        events = list(contract.events.__iter__())
        self._by_topic = {
            bytes(HexBytes(event.topic)): event for event in events if not event.abi.get("anonymous")
        }
        self._anonymous_by_topic_count = {
            _topic_count(event.abi): event for event in events if event.abi.get("anonymous")
        }
        named_counts = {_topic_count(event.abi) for event in events if not event.abi.get("anonymous")}
        if len(self._anonymous_by_topic_count) != sum(
            1 for event in events if event.abi.get("anonymous")
        ) or (named_counts & self._anonymous_by_topic_count.keys()):
            raise ValueError(
                "an anonymous event shares its number of topics with another event: logs would be ambiguous"
            )

    def decode(self, raw: Mapping[str, Any]) -> ChainEvent | None:
        topics = raw.get("topics") or []
        if not topics or str(raw["address"]).lower() != self._address:
            return None
        # by the number of topics first: an anonymous event's first topic is data (a root), which
        # may equal another event's signature hash
        event = self._anonymous_by_topic_count.get(len(topics)) or self._by_topic.get(bytes(topics[0]))
        if event is None:
            return None
        data = event.process_log(raw)
        return ChainEvent(
            data["event"],
            data["args"],
            raw["blockNumber"],
            bytes(raw["blockHash"]),
            raw["logIndex"],
            bytes(raw["transactionHash"]),
        )


def _topic_count(event_abi: Mapping[str, Any]) -> int:
    indexed = sum(1 for item in event_abi["inputs"] if item.get("indexed"))
    return indexed if event_abi.get("anonymous") else indexed + 1


def rows_for(event: ChainEvent, block_time: int, agency_code_of: AgencyCodeOf) -> list[Row]:
    """The rows one event adds to the index (none for events the index does not follow)."""
    a = event.args
    where = {"block_number": event.block_number, "log_index": event.log_index, "block_time": block_time}
    name = event.name
    if name == "BatchAnchored":
        return [(Batch, where | {
            "root": bytes(a["root"]), "agency_index": a["agency"], "agency_code": agency_code_of(a["agency"], a["key"]),
            "key": a["key"], "type_code": from_bytes32(a["typeCode"]), "count": a["count"],
            "anchored_at": block_time, "tx_hash": event.tx_hash,
        })]  # fmt: skip
    if name == "StatusChanged":
        return [(StatusChange, where | {
            "root": bytes(a["root"]), "word": a["word"], "mask": a["mask"].to_bytes(32, "big"),
            "status": a["status"], "reason": a["reason"], "tx_hash": event.tx_hash,
        })]  # fmt: skip
    if name == "CertificatesRevoked":
        return [(StatusChange, where | {
            "root": bytes(a["root"]), "word": a["word"], "mask": a["mask"].to_bytes(32, "big"),
            "status": int(Status.REVOKED), "reason": a["reason"], "tx_hash": event.tx_hash,
        })]  # fmt: skip
    if name == "BatchRevoked":
        return [
            (
                BatchRevocation,
                where | {"root": bytes(a["root"]), "reason": a["reason"], "tx_hash": event.tx_hash},
            )
        ]
    if name in ("AgencySuspended", "AgencyReinstated"):
        suspended = name == "AgencySuspended"
        return [
            (
                AgencySuspension,
                where | {"code": from_bytes32(a["code"]), "suspended": suspended, "by": a["by"]},
            )
        ]
    if name in ("KeyRetired", "KeyCompromised"):
        kind, value = ("retired", a["retiredAt"]) if name == "KeyRetired" else ("compromised", a["since"])
        return [
            (
                KeyChange,
                where
                | {"address": a["key"], "agency_code": from_bytes32(a["code"]), "kind": kind, "value": value},
            )
        ]
    if name == "KeyAdded":
        return [
            (
                Key,
                where
                | {"address": a["key"], "agency_code": from_bytes32(a["code"]), "valid_from": a["validFrom"]},
            )
        ]
    if name == "NationalKeyAdded":
        return [(NationalKey, where | {
            "key_id": bytes(a["keyId"]), "public_key": bytes(a["publicKey"]), "agency_code": from_bytes32(a["code"]),
            "valid_from": a["validFrom"],
        })]  # fmt: skip
    if name in ("NationalKeyRetired", "NationalKeyCompromised"):
        kind, value = (
            ("retired", a["retiredAt"]) if name == "NationalKeyRetired" else ("compromised", a["since"])
        )
        return [(NationalKeyChange, where | {
            "key_id": bytes(a["keyId"]), "agency_code": from_bytes32(a["code"]), "kind": kind, "value": value,
        })]  # fmt: skip
    if name == "AgencyRegistered":
        return [(Agency, where | {
            "code": from_bytes32(a["code"]), "agency_index": a["agency"], "region": a["region"], "name": a["name"],
        })]  # fmt: skip
    if name in ("TypesGranted", "TypesRevoked"):
        granted = name == "TypesGranted"
        code = from_bytes32(a["code"])
        return [
            (
                TypeGrant,
                where | {"position": i, "code": code, "type_code": from_bytes32(t), "granted": granted},
            )
            for i, t in enumerate(a["typeCodes"])
        ]
    if name in ("AuthorityAdded", "AuthorityRemoved"):
        added = name == "AuthorityAdded"
        return [
            (
                AuthorityChange,
                where
                | {"account": a["account"], "region": a["region"], "name": a.get("name", ""), "added": added},
            )
        ]
    log.debug("not indexed: %s at block %d", name, event.block_number)
    return []


def group_rows(rows: Iterable[Row]) -> dict[type[EventRow], list[dict[str, Any]]]:
    """Rows by table, in log order, for one bulk insert per table."""
    grouped: dict[type[EventRow], list[dict[str, Any]]] = {}
    for model, values in rows:
        grouped.setdefault(model, []).append(values)
    return grouped
