"""One nonce allocator per process: the anchoring worker (which signs, stores, then broadcasts)
and status changes (which send and wait) share an agency key on a real anvil."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import TYPE_BUSINESS_LICENCE, Roles

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import ANCHOR_GAS, CertificateRegistry, Status
from registry.contracts.trust_registry import to_bytes32

pytestmark = pytest.mark.chain


def send_like_the_worker(
    chain: ChainClient, registry: CertificateRegistry, key, root: bytes, taken: set[int]
) -> int:
    """Allocate, sign, broadcast, release: what the anchoring worker does for one batch."""
    nonce = chain.allocate_nonce(key.address, taken)
    try:
        tx = registry.contract.functions.anchor(root, 1, to_bytes32(TYPE_BUSINESS_LICENCE)).build_transaction(
            {
                "from": key.address,
                "nonce": nonce,
                "gas": ANCHOR_GAS,
                "chainId": chain.chain_id,
                **chain._fees(),
            }
        )
        chain.w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction)
    finally:
        chain.release_nonce(key.address, nonce)
    return nonce


def test_status_changes_and_worker_sends_interleave_without_nonce_clashes(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles
) -> None:
    key = roles.agency
    first = os.urandom(32)
    registry.anchor(key, first, 4, TYPE_BUSINESS_LICENCE)
    registry.set_status(key, first, 0, Status.SUSPENDED, 2)  # a status change first…
    sent = send_like_the_worker(
        chain, registry, key, os.urandom(32), set()
    )  # …then the worker uses the next nonce…
    receipt = registry.set_status(
        key, first, 1, Status.SUSPENDED, 2
    )  # …and the next status change is not stale
    assert chain.w3.eth.get_transaction(receipt.tx_hash)["nonce"] == sent + 1
    assert [registry.status_of(first, i) for i in (0, 1)] == [Status.SUSPENDED, Status.SUSPENDED]


def test_nonces_held_by_other_threads_or_listed_as_taken_are_skipped(
    chain: ChainClient, roles: Roles
) -> None:
    address = roles.agency.address
    base = chain.w3.eth.get_transaction_count(address, "pending")
    held = chain.allocate_nonce(address)
    assert held == base
    assert chain.allocate_nonce(address, taken={base + 1}) == base + 2
    chain.release_nonce(address, held)
    assert chain.allocate_nonce(address) == base  # released: the gap is filled first
    for nonce in (base, base + 2):
        chain.release_nonce(address, nonce)


def test_concurrent_status_changes_each_get_their_own_nonce(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles
) -> None:
    root = os.urandom(32)
    registry.anchor(roles.agency, root, 8, TYPE_BUSINESS_LICENCE)
    with ThreadPoolExecutor(4) as pool:
        receipts = list(
            pool.map(lambda i: registry.set_status(roles.agency, root, i, Status.REVOKED, 3), range(8))
        )
    assert len({chain.w3.eth.get_transaction(r.tx_hash)["nonce"] for r in receipts}) == 8
    assert all(registry.status_of(root, i) == Status.REVOKED for i in range(8))
