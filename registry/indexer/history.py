"""Questions a verifier asks of the index: status, key standing and the `inspect` facts, now or as of T.

"As of T" means what the registry said at the last block whose timestamp is <= T: batches anchored
later do not exist yet, status changes and suspensions logged later have not happened. Keys are the
exception: whether the sealing and anchoring keys were good at anchor time is judged with
everything known now, whatever T (a key declared compromised since before the anchor makes the
certificate invalid at every T; `key_known_bad` says when that became known).
`key_standing_at(key, t)` likewise asks "was the key good at t?" with everything known now,
unless `as_of` says otherwise.

`facts` answers exactly what `CertificateRegistry.inspect` would (the same `Inspection`), from
memory, with no RPC: the verifier can use the index as a drop-in for the chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine, select

from registry.certificate.merkle import encode_batch_leaf, standard_leaf_hash, verify_proof
from registry.contracts.certificate_registry import Inspection, Status
from registry.contracts.trust_registry import NationalKeyInfo
from registry.indexer.indexer import Freshness, index_scope
from registry.indexer.records import AgencyHistory, BatchRecord, KeyStanding, StatusAt, TrustView, status_at
from registry.indexer.snapshot import Snapshot
from registry.indexer.store import Block, table
from registry.regions import in_regions, region_prefixes

ZERO_ADDRESS = "0x" + "00" * 20
NOT_ANCHORED = Inspection(False, False, False, False, False, Status.ACTIVE, "", 0, "", ZERO_ADDRESS, 0, 0)


@dataclass(frozen=True)
class KeyStandingAt:
    """Whether a key was good at `at`, and the record that says so (None: key unknown)."""

    record: KeyStanding | None
    at: int
    valid: bool


class History:
    """The index, read through an in-memory `Snapshot` refreshed at most every `max_age_s`."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_age_s: float = 1.0,
        max_batches: int = 200_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snapshot = Snapshot(engine, max_batches=max_batches)
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._checked = monotonic()

    @property
    def indexed_block(self) -> int:
        """The block every answer rests on (the verifier reports it)."""
        return self.snapshot.block_number

    def freshness(self, head_block: int) -> Freshness:
        """How far this view is behind `head_block` (the caller's `eth_blockNumber`, cached as it likes).

        A verifier must check this (`.require(max_lag_blocks)`) before trusting a "not anchored":
        an empty or stale index knows nothing of recent batches.
        """
        view = self._view()
        return Freshness(
            view.block_number, head_block, max(0, head_block - view.block_number), view.indexed_at
        )

    def refresh(self) -> bool:
        """Follow the indexer now; True if the index had moved."""
        self._checked = self._monotonic()
        return self.snapshot.refresh()

    def warm(self, count: int | None = None) -> int:
        """Load the most recent batches in bulk (at start-up), so their first verification skips the database."""
        return self._view().warm(count)

    def _view(self) -> Snapshot:
        if self._monotonic() - self._checked >= self.max_age_s:
            self.refresh()
        return self.snapshot

    # ─── records ─────────────────────────────────────────────────────────────────────────

    def batch(self, root: bytes) -> BatchRecord | None:
        return self._view().batch(bytes(root))

    def agency(self, code: str) -> AgencyHistory | None:
        return self._view().trust.agencies.get(code)

    def agency_of_key(self, key: str) -> AgencyHistory | None:
        """The agency a (secp256k1) key was registered to, if the index knows the key."""
        trust = self._view().trust
        history = trust.keys.get(key.lower())
        return trust.agencies.get(history.agency_code) if history is not None else None

    @cached_property
    def regions(self) -> tuple[str, ...]:
        """The regions whose batches the index holds (a regional node's); () = every region."""
        return index_scope(self.snapshot.engine)

    def holds(self, region: int) -> bool:
        """Whether the batches of an agency of `region` are in this index."""
        return not self.regions or in_regions(region, region_prefixes(self.regions))

    def block_time(self, number: int) -> int | None:
        """The chain time of block `number`, if the index recorded that block (range ends, event blocks)."""
        blocks = table(Block)
        with self.snapshot.engine.connect() as conn:
            found = conn.execute(select(blocks.c.timestamp).where(blocks.c.number == number)).scalar()
        return int(found) if found is not None else None

    def authorities(self) -> dict[str, tuple[int, str]]:
        """Current authorities: account → (region, name)."""
        return dict(self._view().trust.authorities)

    # ─── questions ───────────────────────────────────────────────────────────────────────

    def certificate_status_at(self, root: bytes, index: int, at: int | None = None) -> StatusAt:
        """Active / suspended / revoked at unix time `at` (None: now), with reason and since-when."""
        batch = self.batch(root)
        return StatusAt(False) if batch is None else status_at(batch, index, at)

    def key_standing_at(self, key: str, at: int, *, as_of: int | None = None) -> KeyStandingAt:
        """Was `key` good at `at`, by what was known at `as_of` (None: now)?"""
        history = self._view().trust.keys.get(key.lower())
        record = history.standing(as_of) if history is not None else None
        return KeyStandingAt(record, at, record is not None and record.is_good_at(at))

    def key_known_bad(self, key: str, at: int) -> tuple[KeyStanding, int] | None:
        """If `key` is, by what is known now, not good at `at`: its record and the block time
        from which the registry has said so. None if it is good then (or unknown)."""
        history = self._view().trust.keys.get(key.lower()) if isinstance(key, str) else None
        if history is None:
            return None
        known_at = history.known_bad_at(at)
        return None if known_at is None else (history.current, known_at)

    def national_keys(self, agency_code: str, *, as_of: int | None = None) -> list[NationalKeyInfo]:
        """The agency's SM2 keys, oldest first, with their records as known at `as_of` (None: now;
        a verifier judges a seal with everything known now, as for the anchoring key). Empty for
        an unknown agency or one without SM2 keys."""
        trust = self._view().trust
        agency = trust.agencies.get(agency_code)
        if agency is None:
            return []
        found = []
        for key_id in agency.national_keys:
            history = trust.national_keys.get(key_id)
            record = history.standing(as_of) if history is not None else None
            if record is not None:
                found.append(record)
        return found

    def national_key_known_bad(self, key_id: bytes, at: int) -> tuple[NationalKeyInfo, int] | None:
        """If the SM2 key `key_id` is, by what is known now, not good at `at`: its record and the
        block time from which the registry has said so. None if good then (or unknown)."""
        history = self._view().trust.national_keys.get(bytes(key_id))
        if history is None:
            return None
        known_at = history.known_bad_at(at)
        return None if known_at is None else (history.current, known_at)

    def facts(
        self,
        root: bytes,
        index: int,
        digest: bytes,
        proof: Sequence[bytes],
        signer: str,
        at: int | None = None,
    ) -> Inspection:
        """What `inspect(root, index, digest, proof, signer)` answers (as of `at`, None: now), from memory."""
        view = self._view()
        batch = view.batch(bytes(root))
        if batch is None or (at is not None and batch.anchored_at > at):
            return NOT_ANCHORED
        trust = view.trust
        agency = trust.agencies_by_index.get(batch.agency_index)
        in_range = 0 <= index < batch.count
        status = Status.ACTIVE  # what `inspect` answers for an index outside the batch
        if in_range:
            status = batch.status_now(index) if at is None else status_at(batch, index, at).status  # type: ignore[assignment]
        return Inspection(
            anchored=True,
            proof_valid=in_range and _proves(batch.root, digest, index, proof),
            signer_valid=_key_valid(trust, signer, batch),
            anchor_key_valid=_key_valid(trust, batch.key, batch),
            agency_suspended=agency is not None and agency.is_suspended_at(at),
            status=status,
            agency_code=batch.agency_code,
            region=agency.region if agency is not None else 0,
            type_code=batch.type_code,
            anchor_key=batch.key,
            anchored_at=batch.anchored_at,
            count=batch.count,
        )  # fmt: skip


def _proves(root: bytes, digest: bytes, index: int, proof: Sequence[bytes]) -> bool:
    """`MerkleProof.verify(proof, root, keccak(keccak(abi.encode(digest, index))))`."""
    try:
        leaf = standard_leaf_hash(encode_batch_leaf(bytes(digest), index))
    except (ValueError, TypeError, OverflowError):
        return False
    return verify_proof(root, leaf, proof)


def _key_valid(trust: TrustView, key: str, batch: BatchRecord) -> bool:
    """`wasKeyValidAt(key, batch agency, anchoredAt)` with the key record as known now, whatever
    moment is asked about: a compromise declared later is retroactive."""
    history = trust.keys.get(key.lower()) if isinstance(key, str) else None
    if history is None or history.agency_index != batch.agency_index:
        return False
    return history.current.is_good_at(batch.anchored_at)
