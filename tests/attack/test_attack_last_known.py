"""Attacks on last-known answers (issue 14, chain away), on the session anvil and a real index.

With the chain away, `verifier.readers.IndexReader` answers what its index last knew, and the
node's policy accepts that answer up to an age (`acceptLastKnownUpToSeconds`). The age must be
honest: it is all that stands between an accepted answer and a revocation the index never saw.
`IndexReader.last_known_age_s` takes, for an index that lagged the last head it read by more
than `max_lag`, the time the indexer last *wrote* its state. An indexer catching up (after a
restart, range by range) writes a block long gone by then: that time says nothing of when the
index's facts were current, and makes an old answer look seconds old.

The chain is "away" for the reader the way it is for a node: its head tracker stops reading it
(poll interval of an hour) and gives up after its max age."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from anchored import anchor
from conftest import Roles

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.errors import ChainUnavailable
from registry.indexer import History, Indexer, make_engine
from verifier.chain_reader import RegistryReader
from verifier.readers import HeadTracker, IndexReader

pytestmark = pytest.mark.chain
MAX_LAG = 5
HEAD_MAX_AGE_S = 0.5  # the tracker's patience: the chain is "away" this long after its last read


def mine(chain: ChainClient, blocks: int) -> None:
    for _ in range(blocks):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def away(head: HeadTracker) -> None:
    """Wait until the tracker, which no longer polls, says the chain cannot be read."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _ = head.block
        except ChainUnavailable:
            return
        time.sleep(0.1)
    raise AssertionError("the head tracker never gave up on the chain")


def test_a_catching_up_index_cannot_pass_off_old_facts_as_young(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    """The certificate is revoked, the node sees the head go far past it, its indexer (restarted)
    writes one range that ends before the revocation, and the chain goes away. The index's
    answer (ACTIVE) must not claim an age younger than the revocation it misses."""
    batch = anchor(registry, roles.agency, 2, "last-known catch-up")
    anchored_block = chain.block_number()
    registry.set_status(roles.agency, batch.tree.root, 0, Status.REVOKED, 3)
    revoked_at = time.time()
    mine(chain, 3 * MAX_LAG)
    head = HeadTracker(chain, poll_s=3600, max_age_s=HEAD_MAX_AGE_S)  # reads the head once, now
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    try:
        assert head.last_block is not None and head.last_block - anchored_block > MAX_LAG
        time.sleep(2.0)  # the revocation is now at least 2 s old
        start = deployment.block_number
        indexer = Indexer(chain, registry, engine, confirmations=0, start_block=start)
        indexer.sync(max_blocks=anchored_block - start + 1)  # one range of the catch-up
        assert indexer.indexed_block == anchored_block  # the batch, not its revocation
        away(head)
        reader = IndexReader(History(engine), RegistryReader(registry), head, max_lag=MAX_LAG)
        facts = reader.facts(batch.shown(0), roles.agency.address)
        assert facts.source == "lastKnown" and facts.block_number == anchored_block
        assert facts.inspection.anchored and facts.inspection.status is Status.ACTIVE  # what it misses
        assert registry.status_of(batch.tree.root, 0) is Status.REVOKED
        # the facts were out of date from the revocation on: they are at least that old
        assert facts.age_s is not None and facts.age_s >= time.time() - revoked_at, facts.age_s
    finally:
        head.close()
        engine.dispose()


def test_an_index_current_at_the_last_head_read_answers_with_the_age_of_that_read(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    """Holds: an index within `max_lag` of the last head read is as old as that read, and a batch
    the index does not hold is ERROR with the chain away (a newer block may hold it)."""
    batch = anchor(registry, roles.agency, 1, "last-known current")
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number).sync()
    head = HeadTracker(chain, poll_s=3600, max_age_s=HEAD_MAX_AGE_S)
    read_at = time.time()
    try:
        away(head)
        reader = IndexReader(History(engine), RegistryReader(registry), head, max_lag=MAX_LAG)
        facts = reader.facts(batch.shown(0), roles.agency.address)
        assert facts.source == "lastKnown" and facts.inspection.status is Status.ACTIVE
        assert facts.age_s is not None and facts.age_s >= time.time() - read_at - 0.5
        later = anchor(registry, roles.agency, 1, "last-known later")  # the index never saw it
        with pytest.raises(ChainUnavailable):
            reader.facts(later.shown(0), roles.agency.address)
    finally:
        head.close()
        engine.dispose()
