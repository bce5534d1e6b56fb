"""`revokeCertificates`: the cheap bulk revocation, against the rules of `setStatusBulk(..., Revoked)`.

The contract takes a fast path when the caller is the anchoring key itself (its key record read
as one word, the range test written out) and falls back to the full check otherwise: these tests
hold both paths to the same answers, at the edges of the range and of a key's life.
"""

from __future__ import annotations

import pytest
from contract_kit import Kit
from eth_account.signers.local import LocalAccount

from registry.chain.client import Receipt
from registry.contracts.certificate_registry import Status

REVOKED_REASON = 3  # 撤销
FULL = (1 << 256) - 1


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


def revoke(
    kit: Kit, actor: LocalAccount, root: bytes, word: int, mask: int, reason: int = REVOKED_REASON
) -> Receipt:
    return kit.registry.revoke_certificates(actor, root, word, mask, reason)


# ─── range ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("count", "word", "mask"),
    [
        (300, 1, 1 << 44), (300, 1, (1 << 45) - 1), (300, 2, 1), (300, 0, 0), (256, 1, 1), (1, 0, 2),
        (300, 2**200, 1), (300, 2**247, 1), (300, 2**248 - 1, 1), (2**32 - 1, 2**24, 1), (2**32 - 1, 2**24 - 1, 1 << 255),
    ],
)  # fmt: skip
def test_bits_outside_the_batch_or_an_empty_mask_are_refused(
    kit: Kit, count: int, word: int, mask: int
) -> None:
    root = kit.anchor(count=count)
    for actor in (kit.roles.agency, kit.roles.authority):  # the fast path and the full check
        with kit.reverts("CertificateRegistryIndexOutOfRange", root=root, word=word, mask=mask):
            revoke(kit, actor, root, word, mask)


@pytest.mark.parametrize(
    ("count", "word", "mask"),
    [
        (256, 0, FULL),
        (1, 0, 1),
        (512, 1, 1 << 255),
        (300, 1, (1 << 44) - 1),
        (2**32 - 1, 2**24 - 1, (1 << 255) - 1),
        (2**32 - 1, 0, FULL),
    ],
)
def test_bits_inside_the_batch_are_revoked_with_their_event(
    kit: Kit, count: int, word: int, mask: int
) -> None:
    root = kit.anchor(count=count)
    receipt = revoke(kit, kit.roles.agency, root, word, mask, 7)
    kit.assert_event(receipt, "CertificatesRevoked", root=root, word=word, mask=mask, reason=7)
    assert [log["topics"] for log in receipt.logs] == [[root]]  # anonymous: the root is the only topic
    lowest, highest = word * 256 + (mask & -mask).bit_length() - 1, word * 256 + mask.bit_length() - 1
    assert kit.registry.status_of(root, lowest) == kit.registry.status_of(root, highest) == Status.REVOKED
    with kit.reverts("CertificateRegistryAlreadyRevoked", root=root, word=word, mask=mask):
        kit.registry.set_status_bulk(kit.roles.agency, root, word, mask, Status.ACTIVE, 1)


def test_revocations_add_up_and_override_suspension(kit: Kit) -> None:
    root = kit.anchor(count=300)
    kit.registry.set_status_bulk(kit.roles.agency, root, 1, 0b1100, Status.SUSPENDED, 2)
    revoke(kit, kit.roles.agency, root, 1, 0b0110)
    revoke(kit, kit.roles.agency, root, 1, 0b0011)
    statuses = [kit.registry.status_of(root, 256 + i) for i in range(5)]
    assert statuses == [Status.REVOKED, Status.REVOKED, Status.REVOKED, Status.SUSPENDED, Status.ACTIVE]


def test_the_reason_travels_apart_from_the_word(kit: Kit) -> None:
    root = kit.anchor(count=1000)
    receipt = revoke(kit, kit.roles.agency, root, 3, 1 << 231, 0xFF)
    kit.assert_event(receipt, "CertificatesRevoked", root=root, word=3, mask=1 << 231, reason=0xFF)
    assert kit.registry.status_of(root, 999) == Status.REVOKED
    with pytest.raises(ValueError):
        revoke(kit, kit.roles.agency, root, 0, 1, 256)
    with pytest.raises(ValueError):
        revoke(kit, kit.roles.agency, root, -1, 1)


# ─── who may revoke ─────────────────────────────────────────────────────────────────────


def test_unknown_batch(kit: Kit) -> None:
    root = kit.new_root()
    with kit.reverts("CertificateRegistryUnknownBatch", root=root):
        revoke(kit, kit.roles.agency, root, 0, 1)


def test_a_manager_is_checked_before_the_range(kit: Kit) -> None:
    root = kit.anchor(count=10)
    with kit.reverts("CertificateRegistryNotBatchManager", account=kit.roles.other_agency.address, root=root):
        revoke(kit, kit.roles.other_agency, root, 5, 1)


def test_sibling_keys_and_the_authority_may_revoke(kit: Kit) -> None:
    root = kit.anchor(count=10)
    sibling = kit.add_key()
    revoke(kit, sibling, root, 0, 0b01)
    revoke(kit, kit.roles.authority, root, 0, 0b10)
    assert [kit.registry.status_of(root, i) for i in range(3)] == [
        Status.REVOKED,
        Status.REVOKED,
        Status.ACTIVE,
    ]


def test_retired_compromised_and_future_keys_may_not(kit: Kit) -> None:
    future = kit.add_key(valid_from=kit.now() + 3600)
    root = kit.anchor(count=10)
    with kit.reverts("CertificateRegistryNotBatchManager", account=future.address, root=root):
        revoke(kit, future, root, 0, 1)
    sibling = kit.add_key()
    own = kit.anchor(sibling, count=10)
    kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, kit.now())
    with kit.reverts("CertificateRegistryNotBatchManager", account=kit.roles.agency.address, root=root):
        revoke(kit, kit.roles.agency, root, 0, 1)  # its own batch, compromised since this second
    revoke(kit, sibling, root, 0, 1)
    kit.registry.retire_key(sibling, sibling.address)
    with kit.reverts("CertificateRegistryNotBatchManager", account=sibling.address, root=own):
        revoke(kit, sibling, own, 0, 1)  # its own batch, retired
    revoke(kit, kit.roles.authority, own, 0, 1)
    assert kit.registry.status_of(root, 0) == kit.registry.status_of(own, 0) == Status.REVOKED


def test_a_key_valid_from_now_may_revoke_its_own_batch(kit: Kit) -> None:
    key = kit.add_key(valid_from=kit.now() + 100)
    kit.next_block_at(kit.now() + 100)
    root = kit.anchor(key, count=10)
    revoke(kit, key, root, 0, 1)
    assert kit.registry.status_of(root, 0) == Status.REVOKED


def test_set_status_many_revokes_through_revoke_certificates_one_transaction_per_word(kit: Kit) -> None:
    root = kit.anchor(count=600)
    indices = [3, 255, 256, 599]
    receipts = kit.registry.set_status_many(kit.roles.agency, root, indices, Status.REVOKED, REVOKED_REASON)
    for receipt, (word, mask) in zip(receipts, [(0, 1 << 3 | 1 << 255), (1, 1), (2, 1 << 87)], strict=True):
        kit.assert_event(
            receipt, "CertificatesRevoked", root=root, word=word, mask=mask, reason=REVOKED_REASON
        )
    assert [kit.registry.status_of(root, i) for i in (3, 4, 255, 256, 257, 599)] == [
        Status.REVOKED, Status.ACTIVE, Status.REVOKED, Status.REVOKED, Status.ACTIVE, Status.REVOKED,
    ]  # fmt: skip
    suspended = kit.registry.set_status_many(kit.roles.agency, root, [4], Status.SUSPENDED, 2)
    assert kit.events(suspended[0], "StatusChanged")[0]["status"] == int(Status.SUSPENDED)
