"""`anchorAuditHead`: an agency's key anchors the head of its staff audit log (issuer.audit).

Who may call it, per role, is in test_authorization.py (its matrix covers every function); here:
what the event says, the refusals by custom error, keys that are no longer (or not yet) good, a
suspended agency, and the Python binding's reader of the anchored heads.
"""

from __future__ import annotations

import pytest
from contract_kit import Kit

from registry.contracts.trust_registry import to_bytes32

pytestmark = pytest.mark.chain


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


def test_an_agency_key_anchors_its_head_and_the_event_says_so(kit: Kit) -> None:
    head = kit.new_root()
    receipt = kit.registry.anchor_audit_head(kit.roles.agency, head, 7)
    kit.assert_event(
        receipt, "AuditHeadAnchored",
        agency=to_bytes32(kit.zj), key=kit.roles.agency.address, head=head, count=7, anchoredAt=kit.now(),
    )  # fmt: skip
    assert receipt.gas_used < 35_000  # an event only: nothing stored


def test_zero_head_or_zero_count_is_refused(kit: Kit) -> None:
    with kit.reverts("CertificateRegistryInvalidAuditHead", head=bytes(32), count=3):
        kit.registry.anchor_audit_head(kit.roles.agency, bytes(32), 3)
    head = kit.new_root()
    with kit.reverts("CertificateRegistryInvalidAuditHead", head=head, count=0):
        kit.registry.anchor_audit_head(kit.roles.agency, head, 0)


def test_a_retired_compromised_or_future_key_may_not_anchor(kit: Kit) -> None:
    retired, compromised = kit.add_key(), kit.add_key()
    future = kit.add_key(valid_from=kit.now() + 3600)
    kit.registry.retire_key(kit.roles.authority, retired.address)
    kit.registry.compromise_key(kit.roles.authority, compromised.address, kit.now())
    kit.advance(1)
    for key in (retired, compromised, future):
        with kit.reverts("TrustRegistryKeyNotActive", key=key.address):
            kit.registry.anchor_audit_head(key, kit.new_root(), 1)


def test_a_suspended_agency_still_anchors_its_log(kit: Kit) -> None:
    """Its log stays accountable while it is investigated (NatSpec of anchorAuditHead)."""
    kit.registry.suspend_agency(kit.roles.authority, kit.zj)
    head = kit.new_root()
    receipt = kit.registry.anchor_audit_head(kit.roles.agency, head, 1)
    assert kit.event(receipt, "AuditHeadAnchored")["head"] == kit.plain(head)


def test_audit_heads_reads_back_one_agency_s_anchors_in_order(kit: Kit) -> None:
    heads = [kit.new_root() for _ in range(3)]
    receipts = [kit.registry.anchor_audit_head(kit.roles.agency, head, n + 1) for n, head in enumerate(heads)]
    kit.registry.anchor_audit_head(kit.roles.other_agency, kit.new_root(), 9)  # another agency's
    read = kit.registry.audit_heads(kit.zj)
    assert [(a.head, a.count, a.tx_hash, a.block_number) for a in read] == [
        (head, n + 1, r.tx_hash, r.block_number)
        for n, (head, r) in enumerate(zip(heads, receipts, strict=True))
    ]
    assert {a.agency_code for a in read} == {kit.zj} and {a.key for a in read} == {kit.roles.agency.address}
    assert [a.count for a in kit.registry.audit_heads(kit.gd)] == [9]
