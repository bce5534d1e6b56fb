"""The certificate registry: anchoring batches, per-certificate status and the verifier's `inspect`.

Mirrors contracts/CertificateRegistry.sol; every refusal is checked by its custom error and
arguments. Status bits: certificate `index` is bit `index % 256` of word `index // 256`.
"""

from __future__ import annotations

import pytest
from contract_kit import Kit
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import to_bytes32

SUSPENDED_REASON = 2  # 暂扣
REVOKED_REASON = 3  # 撤销


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


# ─── a two-leaf StandardMerkleTree, built by hand ────────────────────────────────────────


def leaf(digest: bytes, index: int) -> bytes:
    return keccak(keccak(encode(["bytes32", "uint256"], [digest, index])))


def parent(left: bytes, right: bytes) -> bytes:
    return keccak(b"".join(sorted((left, right))))


def two_leaf_tree() -> tuple[bytes, list[bytes]]:
    """(root, digests) of a tree over (digests[0], 0) and (digests[1], 1)."""
    digests = [keccak(text="营业执照 #0"), keccak(text="营业执照 #1")]
    return parent(leaf(digests[0], 0), leaf(digests[1], 1)), digests


def proof_of(digests: list[bytes], index: int) -> list[bytes]:
    sibling = 1 - index
    return [leaf(digests[sibling], sibling)]


# ─── anchoring ───────────────────────────────────────────────────────────────────────────


def test_anchor_records_the_batch_and_emits_it(kit) -> None:
    root = kit.new_root()
    receipt = kit.registry.anchor(kit.roles.agency, root, 300, kit.business)
    anchored_at = kit.now()
    kit.assert_event(
        receipt, "BatchAnchored",
        root=root, agency=kit.agency_index_of(kit.roles.agency.address), key=kit.roles.agency.address,
        typeCode=to_bytes32(kit.business), count=300,
    )  # fmt: skip
    inspection = kit.inspect(root, kit.roles.agency)
    assert inspection.anchored and inspection.signer_valid and inspection.anchor_key_valid
    assert not inspection.agency_suspended
    assert (inspection.agency_code, inspection.region, inspection.type_code) == (kit.zj, 330100, kit.business)
    assert (inspection.anchor_key, inspection.anchored_at, inspection.count) == (
        kit.roles.agency.address,
        anchored_at,
        300,
    )
    assert kit.registry.status_of(root, 299) == Status.ACTIVE


def test_zero_root_is_rejected(kit) -> None:
    with kit.reverts("CertificateRegistryInvalidBatch", root=bytes(32), count=10):
        kit.registry.anchor(kit.roles.agency, bytes(32), 10, kit.business)


def test_zero_count_is_rejected(kit) -> None:
    root = kit.new_root()
    with kit.reverts("CertificateRegistryInvalidBatch", root=root, count=0):
        kit.registry.anchor(kit.roles.agency, root, 0, kit.business)


@pytest.mark.parametrize("second_anchor", ["agency", "other_agency"])
def test_a_root_is_anchored_once(kit, roles, second_anchor: str) -> None:
    root = kit.anchor()
    with kit.reverts("CertificateRegistryRootAlreadyAnchored", root=root):
        kit.registry.anchor(getattr(roles, second_anchor), root, 10, kit.business)


def test_type_not_granted_cannot_be_anchored(kit) -> None:
    with kit.reverts(
        "TrustRegistryTypeNotGranted", code=to_bytes32(kit.zj), typeCode=to_bytes32(kit.driving)
    ):
        kit.anchor(type_code=kit.driving)


def test_unknown_batch_is_reported(kit) -> None:
    root = kit.new_root()
    with kit.reverts("CertificateRegistryUnknownBatch", root=root):
        kit.registry.status_of(root, 0)
    with kit.reverts("CertificateRegistryUnknownBatch", root=root):
        kit.registry.set_status(kit.roles.agency, root, 0, Status.SUSPENDED, SUSPENDED_REASON)
    with kit.reverts("CertificateRegistryUnknownBatch", root=root):
        kit.registry.revoke_batch(kit.roles.agency, root, REVOKED_REASON)


# ─── status of one certificate ───────────────────────────────────────────────────────────


def test_single_certificate_suspend_reinstate_revoke(kit) -> None:
    root = kit.anchor(count=300)
    statuses = []
    for status, reason in (
        (Status.SUSPENDED, 2),
        (Status.ACTIVE, 1),
        (Status.SUSPENDED, 2),
        (Status.REVOKED, 7),
    ):
        kit.registry.set_status(kit.roles.agency, root, 5, status, reason)
        statuses.append(kit.registry.status_of(root, 5))
    assert statuses == [Status.SUSPENDED, Status.ACTIVE, Status.SUSPENDED, Status.REVOKED]
    assert [kit.registry.status_of(root, i) for i in (4, 6)] == [Status.ACTIVE, Status.ACTIVE]


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
def test_revoked_certificate_is_final(kit, status: Status) -> None:
    root = kit.anchor(count=300)
    kit.registry.set_status(kit.roles.agency, root, 257, Status.REVOKED, REVOKED_REASON)
    with kit.reverts("CertificateRegistryAlreadyRevoked", root=root, word=1, mask=1 << 1):
        kit.registry.set_status(kit.roles.agency, root, 257, status, 1)
    assert kit.registry.status_of(root, 257) == Status.REVOKED


def test_status_change_emits_its_word_and_mask(kit) -> None:
    root = kit.anchor(count=300)
    receipt = kit.registry.set_status(kit.roles.agency, root, 258, Status.SUSPENDED, SUSPENDED_REASON)
    kit.assert_event(
        receipt,
        "StatusChanged",
        root=root,
        word=1,
        mask=1 << 2,
        status=int(Status.SUSPENDED),
        reason=SUSPENDED_REASON,
    )


def test_index_beyond_the_batch_is_rejected(kit) -> None:
    root = kit.anchor(count=300)
    kit.registry.set_status(kit.roles.agency, root, 299, Status.SUSPENDED, SUSPENDED_REASON)
    with kit.reverts("CertificateRegistryIndexOutOfRange", root=root, word=1, mask=1 << 44):
        kit.registry.set_status(kit.roles.agency, root, 300, Status.SUSPENDED, SUSPENDED_REASON)


# ─── bulk status ─────────────────────────────────────────────────────────────────────────


def test_bulk_suspend_reinstate_revoke(kit) -> None:
    root = kit.anchor(count=300)
    mask = (1 << 0) | (1 << 3) | (1 << 255)
    indices = (0, 3, 255)
    for status in (Status.SUSPENDED, Status.ACTIVE, Status.SUSPENDED):
        receipt = kit.registry.set_status_bulk(kit.roles.agency, root, 0, mask, status, 2)
        kit.assert_event(receipt, "StatusChanged", root=root, word=0, mask=mask, status=int(status), reason=2)
        assert [kit.registry.status_of(root, i) for i in indices] == [status] * 3
    assert kit.registry.status_of(root, 1) == Status.ACTIVE
    kit.registry.set_status_bulk(kit.roles.agency, root, 0, 1 << 3, Status.REVOKED, REVOKED_REASON)
    assert [kit.registry.status_of(root, i) for i in indices] == [
        Status.SUSPENDED,
        Status.REVOKED,
        Status.SUSPENDED,
    ]
    with kit.reverts("CertificateRegistryAlreadyRevoked", root=root, word=0, mask=mask):
        kit.registry.set_status_bulk(kit.roles.agency, root, 0, mask, Status.ACTIVE, 1)
    assert kit.registry.status_of(root, 0) == Status.SUSPENDED  # nothing of the refused mask applied


def test_bulk_within_the_last_partial_word(kit) -> None:
    root = kit.anchor(count=300)  # word 1 holds indices 256..299: bits 0..43
    kit.registry.set_status_bulk(kit.roles.agency, root, 1, (1 << 44) - 1, Status.SUSPENDED, SUSPENDED_REASON)
    assert [kit.registry.status_of(root, i) for i in (256, 299)] == [Status.SUSPENDED, Status.SUSPENDED]


@pytest.mark.parametrize(
    ("count", "word", "mask"),
    [
        (300, 1, 1 << 44),  # first bit past index 299
        (300, 1, (1 << 45) - 1),  # a valid mask plus one bit too many
        (300, 2, 1),  # a word past the batch
        (300, 0, 0),  # an empty mask
        (256, 1, 1),  # a full batch has no word 1
        (1, 0, 1 << 1),  # one certificate: bit 0 only
    ],
)
def test_bulk_mask_beyond_the_batch_is_rejected(kit, count: int, word: int, mask: int) -> None:
    root = kit.anchor(count=count)
    with kit.reverts("CertificateRegistryIndexOutOfRange", root=root, word=word, mask=mask):
        kit.registry.set_status_bulk(kit.roles.agency, root, word, mask, Status.SUSPENDED, SUSPENDED_REASON)


@pytest.mark.parametrize(("count", "word", "mask"), [(256, 0, (1 << 256) - 1), (1, 0, 1), (512, 1, 1 << 255)])
def test_bulk_mask_up_to_the_last_certificate_is_accepted(kit, count: int, word: int, mask: int) -> None:
    root = kit.anchor(count=count)
    kit.registry.set_status_bulk(kit.roles.agency, root, word, mask, Status.REVOKED, REVOKED_REASON)
    assert kit.registry.status_of(root, count - 1) == Status.REVOKED


# ─── revoking a whole batch ──────────────────────────────────────────────────────────────


def test_revoke_batch_revokes_every_certificate_for_good(kit) -> None:
    root = kit.anchor(count=300)
    kit.registry.set_status(kit.roles.agency, root, 10, Status.SUSPENDED, SUSPENDED_REASON)
    receipt = kit.registry.revoke_batch(kit.roles.agency, root, REVOKED_REASON)
    kit.assert_event(receipt, "BatchRevoked", root=root, reason=REVOKED_REASON)
    assert {kit.registry.status_of(root, i) for i in (0, 10, 255, 256, 299)} == {Status.REVOKED}
    with kit.reverts("CertificateRegistryAlreadyRevoked", root=root, word=0, mask=1 << 10):
        kit.registry.set_status(kit.roles.agency, root, 10, Status.ACTIVE, 1)
    with kit.reverts("CertificateRegistryAlreadyRevoked", root=root, word=1, mask=1):
        kit.registry.set_status_bulk(kit.roles.agency, root, 1, 1, Status.SUSPENDED, SUSPENDED_REASON)
    assert kit.inspect(root, kit.roles.agency, index=299).status == Status.REVOKED


# ─── who may change status ───────────────────────────────────────────────────────────────


def test_authority_of_the_region_changes_status(kit) -> None:
    root = kit.anchor()
    kit.registry.set_status(kit.roles.authority, root, 0, Status.SUSPENDED, SUSPENDED_REASON)
    assert kit.registry.status_of(root, 0) == Status.SUSPENDED


@pytest.mark.parametrize("outsider", ["other_authority", "other_agency", "stranger", "root"])
def test_outsiders_cannot_change_status(kit, roles, outsider: str) -> None:
    root = kit.anchor()
    caller = getattr(roles, outsider)
    with kit.reverts("CertificateRegistryNotBatchManager", account=caller.address, root=root):
        kit.registry.set_status(caller, root, 0, Status.SUSPENDED, SUSPENDED_REASON)
    with kit.reverts("CertificateRegistryNotBatchManager", account=caller.address, root=root):
        kit.registry.revoke_batch(caller, root, REVOKED_REASON)


def test_rotated_key_manages_batches_of_the_retired_one(kit) -> None:
    root = kit.anchor()
    successor = kit.add_key(kit.roles.agency)
    kit.registry.retire_key(kit.roles.agency, kit.roles.agency.address)  # a key retires itself
    kit.registry.set_status(successor, root, 0, Status.REVOKED, REVOKED_REASON)
    assert kit.registry.status_of(root, 0) == Status.REVOKED
    with kit.reverts("CertificateRegistryNotBatchManager", account=kit.roles.agency.address, root=root):
        kit.registry.set_status(kit.roles.agency, root, 1, Status.SUSPENDED, SUSPENDED_REASON)


def test_key_not_yet_valid_cannot_change_status(kit) -> None:
    root = kit.anchor()
    future = kit.add_key(valid_from=kit.now() + 3600)
    with kit.reverts("CertificateRegistryNotBatchManager", account=future.address, root=root):
        kit.registry.set_status(future, root, 0, Status.SUSPENDED, SUSPENDED_REASON)


def test_compromised_anchor_key_cannot_change_status_but_a_sibling_can(kit) -> None:
    root = kit.anchor()
    sibling = kit.add_key()
    kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, kit.now())
    with kit.reverts("CertificateRegistryNotBatchManager", account=kit.roles.agency.address, root=root):
        kit.registry.revoke_batch(kit.roles.agency, root, REVOKED_REASON)
    kit.registry.revoke_batch(sibling, root, REVOKED_REASON)
    assert kit.registry.status_of(root, 0) == Status.REVOKED


# ─── inspect ─────────────────────────────────────────────────────────────────────────────


def test_inspect_accepts_the_right_proof_only(kit) -> None:
    root, digests = two_leaf_tree()
    kit.registry.anchor(kit.roles.agency, root, 2, kit.business)
    signer = kit.roles.agency.address

    def proof_valid(index: int, digest: bytes, proof: list[bytes]) -> bool:
        return kit.registry.inspect(root, index, digest, proof, signer).proof_valid

    assert proof_valid(0, digests[0], proof_of(digests, 0))
    assert proof_valid(1, digests[1], proof_of(digests, 1))
    assert not proof_valid(1, digests[0], proof_of(digests, 0))  # wrong index
    assert not proof_valid(0, keccak(text="伪造"), proof_of(digests, 0))  # wrong digest
    assert not proof_valid(0, digests[0], [])  # no proof
    assert not proof_valid(2, digests[0], proof_of(digests, 0))  # index ≥ count


def test_inspect_rejects_a_leaf_past_the_anchored_count(kit) -> None:
    root, digests = two_leaf_tree()
    kit.registry.anchor(kit.roles.agency, root, 1, kit.business)  # the tree's second leaf is not covered
    inspection = kit.registry.inspect(root, 1, digests[1], proof_of(digests, 1), kit.roles.agency.address)
    assert not inspection.proof_valid
    assert inspection.status == Status.ACTIVE
    assert kit.registry.inspect(
        root, 0, digests[0], proof_of(digests, 0), kit.roles.agency.address
    ).proof_valid


def test_inspect_reports_status_and_suspension(kit) -> None:
    root, digests = two_leaf_tree()
    kit.registry.anchor(kit.roles.agency, root, 2, kit.business)
    kit.registry.set_status(kit.roles.agency, root, 1, Status.SUSPENDED, SUSPENDED_REASON)
    kit.registry.suspend_agency(kit.roles.authority, kit.zj)
    inspection = kit.registry.inspect(root, 1, digests[1], proof_of(digests, 1), kit.roles.agency.address)
    assert inspection.proof_valid and inspection.agency_suspended and inspection.status == Status.SUSPENDED


def test_inspect_signer_must_be_a_key_of_the_anchoring_agency(kit) -> None:
    root = kit.anchor()
    assert not kit.inspect(root, kit.roles.other_agency).signer_valid
    assert not kit.inspect(root, Account.create().address).signer_valid
    assert kit.inspect(root, kit.roles.other_agency).anchor_key_valid


def test_inspect_of_an_unknown_root_is_empty(kit) -> None:
    inspection = kit.inspect(kit.new_root(), kit.roles.agency)
    assert not (
        inspection.anchored
        or inspection.proof_valid
        or inspection.signer_valid
        or inspection.anchor_key_valid
    )
    assert (inspection.count, inspection.anchored_at, inspection.agency_code) == (0, 0, "")
