"""What the index knows, as plain records with their history. Pure: no I/O.

Each record keeps its events in log order with the block time each happened; "as of T" folds
the events with time <= T, "now" folds them all. The folding rules are the contract's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import NationalKeyInfo
from registry.indexer.errors import CertificateIndexOutOfRange

StatusEvent = tuple[int, int, int, Status, int]  # (block time, word (-1: whole batch), mask, status, reason)


@dataclass(frozen=True)
class KeyStanding:
    """A key's record as the contract keeps it (0 = not set), and its agency."""

    address: str
    agency_code: str
    agency_index: int
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
class KeyHistory:
    """A key and every change to its record, with the block time each became known."""

    address: str
    agency_code: str
    agency_index: int
    valid_from: int
    added_at: int
    changes: tuple[tuple[int, str, int], ...]  # (block time, "retired" | "compromised", value), in log order

    @cached_property
    def current(self) -> KeyStanding:
        """The record now (computed once: the hot path of every verification)."""
        return self.standing(None)  # type: ignore[return-value]

    def standing(self, as_of: int | None = None) -> KeyStanding | None:
        """The record as the chain held it at `as_of` (None: now); None if the key was not added yet."""
        if as_of is not None and self.added_at > as_of:
            return None
        retired = compromised = 0
        for time, kind, value in self.changes:
            if as_of is not None and time > as_of:
                break
            if kind == "retired":
                retired = value
            else:
                compromised = value  # the event carries the record's value: the earliest `since` so far
        return KeyStanding(
            self.address, self.agency_code, self.agency_index, self.valid_from, retired, compromised
        )

    def known_bad_at(self, time: int) -> int | None:
        """The block time from which the record has said this key was not good at `time` (what a
        verifier shows as "known since"); None while it still says the key was good then."""
        if self.current.is_good_at(time):
            return None
        for when in sorted({self.added_at, *(change[0] for change in self.changes)}):
            standing = self.standing(when)
            if standing is not None and not standing.is_good_at(time):
                return when
        return self.added_at  # unreachable: the last change gives the current record


@dataclass(frozen=True)
class NationalKeyHistory:
    """An SM2 key (national co-seal) and every change to its record, as `KeyHistory` for the
    agency's secp256k1 keys: the same events, folded by the same rules."""

    key_id: bytes
    public_key: bytes
    agency_code: str
    valid_from: int
    added_at: int
    changes: tuple[tuple[int, str, int], ...]  # (block time, "retired" | "compromised", value), in log order

    @cached_property
    def current(self) -> NationalKeyInfo:
        return self.standing(None)  # type: ignore[return-value]

    def standing(self, as_of: int | None = None) -> NationalKeyInfo | None:
        """The record as the chain held it at `as_of` (None: now); None if the key was not added yet."""
        if as_of is not None and self.added_at > as_of:
            return None
        retired = compromised = 0
        for time, kind, value in self.changes:
            if as_of is not None and time > as_of:
                break
            if kind == "retired":
                retired = value
            else:
                compromised = value
        return NationalKeyInfo(
            self.key_id, self.public_key, self.agency_code, self.valid_from, retired, compromised
        )

    def known_bad_at(self, time: int) -> int | None:
        """The block time from which the record has said this key was not good at `time`; None
        while it still says the key was good then (as `KeyHistory.known_bad_at`)."""
        if self.current.is_good_at(time):
            return None
        for when in sorted({self.added_at, *(change[0] for change in self.changes)}):
            standing = self.standing(when)
            if standing is not None and not standing.is_good_at(time):
                return when
        return self.added_at  # unreachable: the last change gives the current record


@dataclass(frozen=True)
class AgencyHistory:
    """An agency, its keys, and its suspensions and type grants over time."""

    code: str
    agency_index: int
    region: int
    name: str
    registered_at: int
    suspensions: tuple[tuple[int, bool, str], ...]  # (block time, suspended, by)
    grants: tuple[tuple[int, str, bool], ...]  # (block time, type code, granted)
    keys: tuple[str, ...] = ()
    national_keys: tuple[bytes, ...] = ()  # SM2 key ids, in the order added

    def is_suspended_at(self, as_of: int | None = None) -> bool:
        suspended = False
        for time, value, _by in self.suspensions:
            if as_of is not None and time > as_of:
                break
            suspended = value
        return suspended

    def types_at(self, as_of: int | None = None) -> frozenset[str]:
        granted: set[str] = set()
        for time, type_code, value in self.grants:
            if as_of is not None and time > as_of:
                break
            (granted.add if value else granted.discard)(type_code)
        return frozenset(granted)


@dataclass(frozen=True)
class BatchRecord:
    """An anchored batch and every status event of it, in (block, log index) order.

    `events` hold `(block time, word, mask, status, reason)`; a batch revocation has word -1.
    The bit fields are the events folded as the contract stores them (built by `batch_record`).
    """

    root: bytes
    agency_code: str
    agency_index: int
    key: str
    type_code: str
    count: int
    anchored_at: int
    block_number: int
    log_index: int
    tx_hash: bytes
    events: tuple[StatusEvent, ...] = ()
    suspended_bits: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    revoked_bits: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    revoked_whole: bool = False

    def status_now(self, index: int) -> Status:
        """The current status from the folded bit fields (the contract's `_statusOf`)."""
        word, bit = index >> 8, 1 << (index & 0xFF)
        if self.revoked_whole or self.revoked_bits.get(word, 0) & bit:
            return Status.REVOKED
        return Status.SUSPENDED if self.suspended_bits.get(word, 0) & bit else Status.ACTIVE


def batch_record(batch: dict[str, Any], events: list[tuple[int, int, StatusEvent]]) -> BatchRecord:
    """A `BatchRecord` from a batch row and its `(block, log index, event)` list, bits folded as on chain."""
    events = sorted(events, key=lambda e: (e[0], e[1]))
    suspended: dict[int, int] = {}
    revoked: dict[int, int] = {}
    for _block, _log, (_time, word, mask, status, _reason) in events:
        if word < 0:
            continue
        if status == Status.REVOKED:
            revoked[word] = revoked.get(word, 0) | mask
        elif status == Status.SUSPENDED:
            suspended[word] = suspended.get(word, 0) | mask
        else:
            suspended[word] = suspended.get(word, 0) & ~mask
    return BatchRecord(
        **batch, events=tuple(e[2] for e in events), suspended_bits=suspended, revoked_bits=revoked,
        revoked_whole=any(e[2][1] < 0 for e in events),
    )  # fmt: skip


@dataclass(frozen=True)
class StatusAt:
    """A certificate's status at a time, the GB reason code and the time it took that status.

    `anchored` is False when the batch was not (yet) anchored at that time; then the rest is None.
    `reason` is None and `since` the anchoring time for a certificate never changed.
    """

    anchored: bool
    status: Status | None = None
    reason: int | None = None
    since: int | None = None

    @property
    def is_active(self) -> bool:
        return self.anchored and self.status == Status.ACTIVE


def status_at(batch: BatchRecord, index: int, at: int | None) -> StatusAt:
    """Replay the batch's status events that cover `index`, up to `at` (None: all), as the contract applies them."""
    if at is not None and batch.anchored_at > at:
        return StatusAt(False)
    if not 0 <= index < batch.count:
        raise CertificateIndexOutOfRange(
            f"Batch 0x{batch.root.hex()} has {batch.count} certificates, no index {index}",
            root=batch.root.hex(),
            index=index,
        )
    word, bit = index >> 8, 1 << (index & 0xFF)
    status, reason, since = Status.ACTIVE, None, batch.anchored_at
    for when, event_word, mask, event_status, event_reason in batch.events:
        if at is not None and when > at:
            break
        covers = event_word < 0 or (event_word == word and mask & bit)
        if not covers or status == Status.REVOKED or event_status == status:
            continue  # revoked is final; a repeated status keeps its first time and reason
        status, reason, since = event_status, event_reason, when
    return StatusAt(True, status, reason, since)


@dataclass(frozen=True)
class TrustView:
    """Agencies by code and index, keys by lower-case address, current authorities, SM2 keys by id."""

    agencies: dict[str, AgencyHistory]
    agencies_by_index: dict[int, AgencyHistory]
    keys: dict[str, KeyHistory]
    authorities: dict[str, tuple[int, str]]  # account -> (region, name)
    national_keys: dict[bytes, NationalKeyHistory] = field(default_factory=dict)
