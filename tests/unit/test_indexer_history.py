"""The index's folding rules, without a chain: key standing, status replay, agency history, event rows.

The status replay is checked against a small model of the contract's storage (two bit fields
per word and a batch flag, revoked final) over random operation sequences.
"""

from __future__ import annotations

import random

import pytest
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3

from registry.contracts.artifacts import artifact
from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import to_bytes32
from registry.indexer.errors import CertificateIndexOutOfRange
from registry.indexer.events import ChainEvent, EventDecoder, rows_for
from registry.indexer.records import (
    AgencyHistory,
    BatchRecord,
    KeyHistory,
    KeyStanding,
    StatusEvent,
    batch_record,
    status_at,
)
from registry.indexer.store import StatusChange, TypeGrant

KEY = "0x" + "ab" * 20
FULL_WORD = (1 << 256) - 1
ANCHORED_AT = 1_000


def batch(count: int, events: list[StatusEvent]) -> BatchRecord:
    fields = {
        "root": b"\x01" * 32, "agency_code": "A", "agency_index": 1, "key": KEY, "type_code": "T", "count": count,
        "anchored_at": ANCHORED_AT, "block_number": 10, "log_index": 0, "tx_hash": b"\x02" * 32,
    }  # fmt: skip
    return batch_record(fields, [(11 + i, 0, event) for i, event in enumerate(events)])


# ─── keys ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("valid_from", "retired_at", "compromised_since", "at", "good"),
    [
        (100, 0, 0, 99, False),  # not yet valid
        (100, 0, 0, 100, True),
        (100, 200, 0, 200, True),  # the retirement second still counts
        (100, 200, 0, 201, False),
        (100, 0, 150, 149, True),
        (100, 0, 150, 150, False),  # the compromise second does not
        (100, 200, 150, 180, False),
    ],
)
def test_key_standing_is_the_contracts_rule(
    valid_from: int, retired_at: int, compromised_since: int, at: int, good: bool
) -> None:
    assert KeyStanding(KEY, "A", 1, valid_from, retired_at, compromised_since).is_good_at(at) is good


def test_a_key_record_as_known_at_a_time() -> None:
    key = KeyHistory(
        KEY, "A", 1, 100, 100, ((300, "compromised", 250), (400, "compromised", 120), (500, "retired", 500))
    )
    assert key.standing(99) is None  # not added yet
    assert (key.standing(299).compromised_since, key.standing(299).retired_at) == (0, 0)  # type: ignore[union-attr]
    assert key.standing(300).compromised_since == 250  # type: ignore[union-attr]
    assert key.standing(400).compromised_since == 120  # type: ignore[union-attr]
    assert key.current == KeyStanding(KEY, "A", 1, 100, 500, 120)


def test_agency_suspensions_and_grants_over_time() -> None:
    agency = AgencyHistory(
        "A",
        1,
        330100,
        "杭州",
        50,
        ((100, True, KEY), (200, False, KEY)),
        ((50, "T1", True), (60, "T2", True), (150, "T1", False)),
    )
    assert [agency.is_suspended_at(t) for t in (99, 100, 199, 200)] == [False, True, True, False]
    assert (
        agency.types_at(55) == {"T1"} and agency.types_at(149) == {"T1", "T2"} and agency.types_at() == {"T2"}
    )


# ─── certificate status ─────────────────────────────────────────────────────────────────


def test_status_replay_with_reason_and_since() -> None:
    record = batch(300, [
        (1100, 0, 0b10, Status.SUSPENDED, 2),
        (1200, 0, 0b10, Status.SUSPENDED, 99),  # again: keeps the first time and reason
        (1300, 0, 0b11, Status.ACTIVE, 1),
        (1400, 1, 1 << 3, Status.REVOKED, 7),  # index 259
        (1500, 1, 1 << 3, Status.REVOKED, 3),  # revoked again: no change
    ])  # fmt: skip
    assert status_at(record, 1, 999).anchored is False
    assert status_at(record, 1, 1000) == status_at(record, 0, 1000)
    assert (status_at(record, 1, 1000).status, status_at(record, 1, 1000).since) == (
        Status.ACTIVE,
        ANCHORED_AT,
    )
    suspended = status_at(record, 1, 1250)
    assert (suspended.status, suspended.reason, suspended.since) == (Status.SUSPENDED, 2, 1100)
    assert (status_at(record, 1, None).status, status_at(record, 1, None).reason) == (Status.ACTIVE, 1)
    assert (
        status_at(record, 0, None).reason is None
    )  # a reinstatement of an active certificate changes nothing
    assert (status_at(record, 259, None).status, status_at(record, 259, None).reason, status_at(record, 259, None).since) == (
        Status.REVOKED, 7, 1400,
    )  # fmt: skip
    with pytest.raises(CertificateIndexOutOfRange) as outside:
        status_at(record, 300, None)
    assert outside.value.code == "CERT_INDEX_OUT_OF_RANGE"


def test_a_batch_revocation_covers_every_index_and_is_final() -> None:
    record = batch(3, [(1100, 0, 0b1, Status.SUSPENDED, 2), (1200, -1, 0, Status.REVOKED, 3)])
    assert [record.status_now(i) for i in range(3)] == [Status.REVOKED] * 3
    assert status_at(record, 0, 1150).status == Status.SUSPENDED
    assert (status_at(record, 0, 1200).status, status_at(record, 0, 1200).reason) == (Status.REVOKED, 3)


class ContractModel:
    """CertificateRegistry's status storage, to compare the index's folding with."""

    def __init__(self, count: int) -> None:
        self.count, self.suspended, self.revoked, self.whole = count, {}, {}, False  # type: ignore[var-annotated]

    def apply(self, word: int, mask: int, status: Status) -> bool:
        """False where the contract reverts (so no event is emitted)."""
        if word < 0:
            self.whole = True
            return True
        if status == Status.REVOKED:
            self.revoked[word] = self.revoked.get(word, 0) | mask
            return True
        if self.whole or self.revoked.get(word, 0) & mask:
            return False
        bits = self.suspended.get(word, 0)
        self.suspended[word] = bits | mask if status == Status.SUSPENDED else bits & ~mask
        return True

    def status_of(self, index: int) -> Status:
        word, bit = index >> 8, 1 << (index & 0xFF)
        if self.whole or self.revoked.get(word, 0) & bit:
            return Status.REVOKED
        return Status.SUSPENDED if self.suspended.get(word, 0) & bit else Status.ACTIVE


@pytest.mark.parametrize("seed", range(20))
def test_folded_bits_and_replay_agree_with_the_contract(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([1, 5, 256, 300, 600])
    model, events = ContractModel(count), []
    for step in range(rng.randint(1, 40)):
        if rng.random() < 0.03:
            word, mask, status = -1, 0, Status.REVOKED
        else:
            word = rng.randint(0, (count - 1) >> 8)
            used = min(256, count - word * 256)
            mask = rng.getrandbits(used) or 1
            status = rng.choice([Status.ACTIVE, Status.SUSPENDED, Status.SUSPENDED, Status.REVOKED])
        if model.apply(word, mask, status):
            events.append((ANCHORED_AT + step, word, mask, status, rng.choice([1, 2, 3, 7, 99])))
    record = batch(count, events)
    for index in range(count):
        assert record.status_now(index) == model.status_of(index) == status_at(record, index, None).status


# ─── event rows ─────────────────────────────────────────────────────────────────────────


def event(name: str, **args: object) -> ChainEvent:
    return ChainEvent(name, args, 42, b"\x03" * 32, 7, b"\x04" * 32)


def no_agency_lookup(index: int, key: str) -> str:
    raise AssertionError("not needed by these events")


def test_event_rows_keep_position_and_time() -> None:
    changed = event("StatusChanged", root=b"\x01" * 32, word=1, mask=(1 << 255) | 1, status=1, reason=2)
    [(model, values)] = rows_for(changed, 9, no_agency_lookup)
    assert model is StatusChange
    assert (values["block_number"], values["log_index"], values["block_time"]) == (42, 7, 9)
    assert int.from_bytes(values["mask"], "big") == (1 << 255) | 1 and values["tx_hash"] == b"\x04" * 32
    granted = rows_for(
        event("TypesGranted", code=to_bytes32("A"), typeCodes=[to_bytes32("T1"), to_bytes32("T2")]),
        9,
        no_agency_lookup,
    )
    assert [(m, v["position"], v["type_code"], v["granted"]) for m, v in granted] == [
        (TypeGrant, 0, "T1", True),
        (TypeGrant, 1, "T2", True),
    ]
    assert (
        rows_for(event("RoleGranted", role=b"\x00" * 32, account=KEY, sender=KEY), 9, no_agency_lookup) == []
    )


def test_bulk_revocations_are_status_changes() -> None:
    revoked = event("CertificatesRevoked", root=b"\x01" * 32, word=3, mask=(1 << 255) | 1, reason=7)
    [(model, values)] = rows_for(revoked, 9, no_agency_lookup)
    assert model is StatusChange
    assert (values["root"], values["word"], values["status"], values["reason"]) == (
        b"\x01" * 32,
        3,
        Status.REVOKED,
        7,
    )
    assert int.from_bytes(values["mask"], "big") == (1 << 255) | 1 and values["tx_hash"] == b"\x04" * 32


@pytest.mark.parametrize("root", [b"\x01" * 32, keccak(text="BatchRevoked(bytes32,uint8)")])
def test_the_anonymous_revocation_event_is_told_by_its_single_topic(root: bytes) -> None:
    """Its only topic is a root, which may even equal another event's signature hash."""
    address = "0x" + "cd" * 20
    contract = Web3().eth.contract(
        address=Web3.to_checksum_address(address), abi=artifact("CertificateRegistry").abi
    )
    decoder = EventDecoder(contract)
    log = {
        "address": address, "topics": [HexBytes(root)], "data": HexBytes(encode(["uint256", "uint256", "uint8"], [3, FULL_WORD, 7])),
        "blockNumber": 42, "blockHash": HexBytes(b"\x03" * 32), "logIndex": 7, "transactionHash": HexBytes(b"\x04" * 32),
        "transactionIndex": 0,
    }  # fmt: skip
    decoded = decoder.decode(log)
    assert decoded is not None and decoded.name == "CertificatesRevoked"
    assert (
        bytes(decoded.args["root"]),
        decoded.args["word"],
        decoded.args["mask"],
        decoded.args["reason"],
    ) == (root, 3, FULL_WORD, 7)
    assert decoder.decode(log | {"address": "0x" + "ef" * 20}) is None
    named = log | {
        "topics": [HexBytes(keccak(text="BatchRevoked(bytes32,uint8)")), HexBytes(root)],
        "data": HexBytes(encode(["uint8"], [7])),
    }
    assert decoder.decode(named).name == "BatchRevoked"  # type: ignore[union-attr]
