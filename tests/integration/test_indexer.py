"""The indexer on a real anvil and a real database: every event indexed, `facts` equal to the chain's
`inspect` (now and as of a past block), history across suspend → reinstate, restarts, confirmation
depth and a depth-2 reorg. Runs on SQLite, and on PostgreSQL when ECERT_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import GD_AGENCY_CODE, TYPE_BUSINESS_LICENCE, TYPE_DRIVING_LICENCE, ZJ_AGENCY_CODE, Roles, fund
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, func, select

from registry.certificate.merkle import MerkleTree, batch_tree
from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import ANCHOR_GAS, CertificateRegistry, Inspection, Status
from registry.contracts.trust_registry import to_bytes32
from registry.database import make_engine
from registry.deploy import Deployment
from registry.indexer import NOT_ANCHORED, History, Indexer, IndexMismatch, IndexStale
from registry.indexer.store import Batch, IndexBase, StatusChange, table

pytestmark = pytest.mark.chain

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"
            ),
        ),
    ]
)
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A fresh, empty index database per test."""
    made = make_engine(f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else POSTGRES_URL)  # type: ignore[arg-type]
    IndexBase.metadata.drop_all(made)
    yield made
    IndexBase.metadata.drop_all(made)
    made.dispose()


@dataclass
class Anchored:
    tree: MerkleTree
    digests: list[bytes]
    block_number: int
    tx_hash: str

    @property
    def root(self) -> bytes:
        return self.tree.root


def digests(count: int, label: str) -> list[bytes]:
    return [hashlib.sha3_256(f"{label}#{i}".encode()).digest() for i in range(count)]


def anchor(registry: CertificateRegistry, key: LocalAccount, count: int, label: str) -> Anchored:
    made = digests(count, label)
    tree = batch_tree(made)
    receipt = registry.anchor(key, tree.root, count, TYPE_BUSINESS_LICENCE)
    return Anchored(tree, made, receipt.block_number, receipt.tx_hash)


def rpc(chain: ChainClient, method: str, *params: object) -> object:
    answer = chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def advance(chain: ChainClient, seconds: int) -> int:
    """Move chain time on by `seconds` and mine; returns the new block's timestamp."""
    rpc(chain, "evm_increaseTime", seconds)
    rpc(chain, "evm_mine")
    return chain.w3.eth.get_block("latest")["timestamp"]


def time_of(chain: ChainClient, block_number: int) -> int:
    return chain.w3.eth.get_block(block_number)["timestamp"]


def new_indexer(
    chain: ChainClient, registry: CertificateRegistry, engine: Engine, deployment: Deployment, **kw: int
) -> Indexer:
    return Indexer(
        chain, registry, engine, **({"confirmations": 0, "start_block": deployment.block_number} | kw)
    )


def inspect_at(registry: CertificateRegistry, block: int, *args: object) -> Inspection:
    return Inspection.from_raw(registry.contract.functions.inspect(*args).call(block_identifier=block))


def count_rows(engine: Engine, model: type[IndexBase]) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table(model))).scalar_one()


def assert_facts_match_chain(
    history: History, registry: CertificateRegistry, batch: Anchored, signers: list[str]
) -> None:
    """Right and wrong proofs, digests, indices and signers: the index answers as `inspect` does."""
    count = len(batch.digests)
    cases = [(i, batch.digests[i], batch.tree.proof(i)) for i in range(count)] + [
        (0, batch.digests[1], batch.tree.proof(0)),  # a neighbour's digest
        (1, batch.digests[1], batch.tree.proof(0)),  # a neighbour's proof
        (count, batch.digests[0], batch.tree.proof(0)),  # outside the batch
    ]
    for index, digest, proof in cases:
        for signer in signers:
            assert history.facts(batch.root, index, digest, proof, signer) == registry.inspect(
                batch.root, index, digest, proof, signer
            )


# ─── tests ──────────────────────────────────────────────────────────────────────────────


def test_every_event_is_indexed_and_facts_equal_inspect(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    first = anchor(registry, roles.agency, 5, "first")
    registry.set_status(roles.agency, first.root, 1, Status.SUSPENDED, 2)
    registry.set_status(roles.authority, first.root, 2, Status.REVOKED, 7)
    registry.set_status_bulk(roles.agency, first.root, 0, 0b11000, Status.SUSPENDED, 2)
    registry.set_status(roles.agency, first.root, 4, Status.ACTIVE, 1)
    registry.revoke_certificates(roles.agency, first.root, 0, 0b1, 4)  # the anonymous CertificatesRevoked
    revoked = anchor(registry, roles.agency, 3, "revoked")
    registry.revoke_batch(roles.agency, revoked.root, 3)
    second_key = Account.create()
    fund(chain, second_key)
    registry.add_key(roles.agency, ZJ_AGENCY_CODE, second_key.address)
    by_second = anchor(registry, second_key, 2, "by second key")
    compromised_since = time_of(chain, by_second.block_number)
    registry.compromise_key(roles.authority, second_key.address, compromised_since)
    registry.grant_types(roles.other_authority, GD_AGENCY_CODE, [TYPE_DRIVING_LICENCE])
    registry.suspend_agency(roles.other_authority, GD_AGENCY_CODE)

    report = new_indexer(chain, registry, engine, deployment).sync()
    assert report.to_block == chain.block_number() and report.events > 0 and not report.reorged
    history = History(engine)

    stored = history.batch(first.root)
    assert stored is not None
    assert (stored.agency_code, stored.key, stored.type_code, stored.count) == (
        ZJ_AGENCY_CODE,
        roles.agency.address,
        TYPE_BUSINESS_LICENCE,
        5,
    )
    assert (stored.block_number, "0x" + stored.tx_hash.hex()) == (first.block_number, first.tx_hash)
    assert stored.anchored_at == time_of(chain, first.block_number)
    statuses = [history.certificate_status_at(first.root, i).status for i in range(5)]
    assert statuses == [Status.REVOKED, Status.SUSPENDED, Status.REVOKED, Status.SUSPENDED, Status.ACTIVE]
    assert [registry.status_of(first.root, i) for i in range(5)] == statuses
    assert history.certificate_status_at(first.root, 2).reason == 7
    assert history.certificate_status_at(first.root, 0).reason == 4
    assert {history.certificate_status_at(revoked.root, i).status for i in range(3)} == {Status.REVOKED}
    assert history.certificate_status_at(revoked.root, 0).reason == 3

    standing = history.key_standing_at(second_key.address, compromised_since)
    assert (
        standing.record is not None
        and standing.record.compromised_since == compromised_since
        and not standing.valid
    )
    assert history.key_standing_at(second_key.address, compromised_since - 1).valid == (
        standing.record.valid_from <= compromised_since - 1
    )
    guangdong = history.agency(GD_AGENCY_CODE)
    assert guangdong is not None and guangdong.is_suspended_at() and guangdong.region == 440100
    assert guangdong.types_at() == {TYPE_BUSINESS_LICENCE, TYPE_DRIVING_LICENCE}
    zhejiang = history.agency(ZJ_AGENCY_CODE)
    assert zhejiang is not None and zhejiang.keys == (roles.agency.address, second_key.address)
    assert set(history.authorities()) == {roles.authority.address, roles.other_authority.address}

    signers = [roles.agency.address, second_key.address, roles.other_agency.address, roles.stranger.address]
    for batch in (first, revoked, by_second):
        assert_facts_match_chain(history, registry, batch, signers)
    unknown = batch_tree(digests(2, "never anchored"))
    assert (
        history.facts(
            unknown.root, 0, digests(2, "never anchored")[0], unknown.proof(0), roles.agency.address
        )
        == NOT_ANCHORED
    )
    assert (
        registry.inspect(
            unknown.root, 0, digests(2, "never anchored")[0], unknown.proof(0), roles.agency.address
        )
        == NOT_ANCHORED
    )


def test_valid_at_time_across_suspend_and_reinstate(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    batch = anchor(registry, roles.agency, 2, "window")
    blocks = {"anchored": batch.block_number}
    advance(chain, 100)
    blocks["suspended"] = registry.set_status(roles.agency, batch.root, 0, Status.SUSPENDED, 2).block_number
    advance(chain, 100)
    blocks["reinstated"] = registry.set_status(roles.agency, batch.root, 0, Status.ACTIVE, 1).block_number
    advance(chain, 100)
    blocks["agency suspended"] = registry.suspend_agency(roles.authority, ZJ_AGENCY_CODE).block_number
    advance(chain, 100)
    blocks["agency reinstated"] = registry.reinstate_agency(roles.authority, ZJ_AGENCY_CODE).block_number
    advance(chain, 100)
    new_indexer(chain, registry, engine, deployment).sync()
    history = History(engine)
    t = {name: time_of(chain, number) for name, number in blocks.items()}

    status = history.certificate_status_at
    assert status(batch.root, 0, t["anchored"] - 1).anchored is False
    assert status(batch.root, 0, t["anchored"]).is_active
    assert status(batch.root, 0, t["suspended"] - 1).is_active
    suspended = status(batch.root, 0, t["suspended"])
    assert (suspended.status, suspended.reason, suspended.since) == (Status.SUSPENDED, 2, t["suspended"])
    assert status(batch.root, 0, t["reinstated"] - 1).status == Status.SUSPENDED
    reinstated = status(batch.root, 0, t["reinstated"])
    assert (reinstated.status, reinstated.reason, reinstated.since) == (Status.ACTIVE, 1, t["reinstated"])
    assert status(batch.root, 1, t["suspended"]).is_active  # the neighbour was never touched

    args = (batch.root, 0, batch.digests[0], batch.tree.proof(0), roles.agency.address)
    for name, number in blocks.items():  # as of each block's time, the index says what the chain said then
        assert history.facts(*args, at=t[name]) == inspect_at(registry, number, *args), name
    assert history.facts(*args, at=t["agency suspended"]).agency_suspended
    assert not history.facts(*args, at=t["agency reinstated"]).agency_suspended
    assert history.facts(*args, at=t["anchored"] - 1) == NOT_ANCHORED


def test_a_restart_continues_without_duplicates(chain, registry, roles: Roles, deployment, engine) -> None:
    first = anchor(registry, roles.agency, 2, "before restart")
    indexer = new_indexer(chain, registry, engine, deployment)
    assert indexer.sync(max_blocks=1).to_block == deployment.block_number
    before = indexer.sync()
    history = History(engine, max_age_s=0)
    args = (first.root, 0, first.digests[0], first.tree.proof(0), roles.agency.address)
    assert history.facts(*args).status == Status.ACTIVE  # now cached

    registry.set_status(roles.agency, first.root, 0, Status.SUSPENDED, 2)
    second = anchor(registry, roles.agency, 2, "after restart")
    restarted = new_indexer(chain, registry, engine, deployment, start_block=0)  # the stored state wins
    after = restarted.sync()
    assert after.from_block == before.to_block + 1 and restarted.sync().events == 0
    assert count_rows(engine, Batch) == 2 and count_rows(engine, StatusChange) == 1
    assert history.facts(*args).status == Status.SUSPENDED  # the cached batch was evicted on refresh
    assert history.batch(second.root) is not None

    elsewhere = CertificateRegistry(chain, roles.stranger.address)
    with pytest.raises(IndexMismatch) as refused:
        Indexer(chain, elsewhere, engine)
    assert refused.value.code == "INDEX_MISMATCH"


def test_blocks_within_the_confirmation_depth_wait(chain, registry, roles: Roles, deployment, engine) -> None:
    indexer = new_indexer(chain, registry, engine, deployment, confirmations=2)
    batch = anchor(registry, roles.agency, 2, "unconfirmed")
    history = History(engine, max_age_s=0)
    assert indexer.sync().to_block == batch.block_number - 2
    assert history.batch(batch.root) is None
    freshness = indexer.freshness()
    assert (freshness.indexed_block, freshness.lag_blocks) == (batch.block_number - 2, 2)
    assert freshness.indexed_at is not None and freshness.indexed_at.tzinfo is not None
    with pytest.raises(IndexStale) as stale:
        freshness.require(max_lag_blocks=1)
    assert stale.value.code == "INDEX_STALE"
    rpc(chain, "evm_mine")
    indexer.sync()
    assert history.batch(batch.root) is None
    rpc(chain, "evm_mine")
    assert indexer.sync().to_block == batch.block_number
    assert history.batch(batch.root) is not None
    assert indexer.freshness().require(max_lag_blocks=2).lag_blocks == 2
    assert history.freshness(chain.block_number()).lag_blocks == 2  # a verifier's check, from its own view


def test_a_depth_two_reorg_is_undone(chain, registry, roles: Roles, deployment, engine) -> None:
    orphan = anchor(registry, roles.agency, 2, "orphaned")
    rpc(chain, "evm_mine")
    indexer = new_indexer(chain, registry, engine, deployment)
    assert indexer.sync().to_block == orphan.block_number + 1
    history = History(engine, max_age_s=0)
    orphan_args = (orphan.root, 0, orphan.digests[0], orphan.tree.proof(0), roles.agency.address)
    assert history.facts(*orphan_args).anchored  # and cached

    # replace the last two blocks: the anchor of `orphan` is gone, `kept` is anchored instead
    kept_digests = digests(3, "kept")
    kept = batch_tree(kept_digests)
    raw = signed_anchor(chain, registry, roles.agency, kept.root, 3, at_block=orphan.block_number - 1)
    rpc(chain, "anvil_reorg", 2, [[raw, 0]])
    assert chain.block_number() == orphan.block_number + 1
    assert not registry.inspect(*orphan_args).anchored

    report = indexer.sync()
    assert (
        report.reorged and report.rolled_back_to is not None and report.rolled_back_to < orphan.block_number
    )
    assert report.to_block == chain.block_number()
    assert history.facts(*orphan_args) == NOT_ANCHORED
    kept_args = (kept.root, 2, kept_digests[2], kept.proof(2), roles.agency.address)
    assert history.facts(*kept_args) == registry.inspect(*kept_args)
    assert history.facts(*kept_args).proof_valid and count_rows(engine, Batch) == 1


def test_run_forever_follows_the_chain_until_stopped(
    anvil, chain, registry, roles: Roles, deployment, engine
) -> None:
    own_client = ChainClient.connect(anvil.url)  # the worker thread gets its own connection
    indexer = new_indexer(own_client, deployment.registry(own_client), engine, deployment)
    stop = threading.Event()
    worker = threading.Thread(target=indexer.run_forever, args=(0.05, stop), daemon=True)
    worker.start()
    try:
        batch = anchor(registry, roles.agency, 2, "followed")
        history = History(engine, max_age_s=0)
        deadline = time.monotonic() + 10
        while history.batch(batch.root) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert history.batch(batch.root) is not None
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


def signed_anchor(
    chain: ChainClient,
    registry: CertificateRegistry,
    key: LocalAccount,
    root: bytes,
    count: int,
    *,
    at_block: int,
) -> str:
    """A raw anchor transaction valid on top of `at_block` (for `anvil_reorg`)."""
    call = registry.contract.functions.anchor(root, count, to_bytes32(TYPE_BUSINESS_LICENCE))
    base_fee = chain.w3.eth.get_block(at_block)["baseFeePerGas"]
    tx = call.build_transaction({
        "from": key.address, "nonce": chain.w3.eth.get_transaction_count(key.address, at_block), "gas": ANCHOR_GAS,
        "chainId": chain.chain_id, "maxFeePerGas": 4 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9,
    })  # fmt: skip
    return "0x" + key.sign_transaction(tx).raw_transaction.hex()
