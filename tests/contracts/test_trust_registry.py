"""The trust registry: regions, agencies, certificate types and keys over time.

Mirrors contracts/TrustRegistry.sol; every refusal is checked by its custom error and arguments.
The 330100 agency ("zj") and its key `roles.agency` come from the session deployment.
"""

from __future__ import annotations

import pytest
from contract_kit import Kit
from eth_account import Account

from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import to_bytes32

NEW_CODE = "11330102MB1234567X"


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


def register(kit, authority, code: str, region: int, types: list[str] | None = None):
    """Register an agency with a fresh funded key; returns the key."""
    key = kit.new_account()
    kit.registry.register_agency(authority, code, region, "测试机关", key.address, types or [kit.business])
    return key


def appoint(kit, region: int):
    """A fresh funded authority of `region`, appointed by the root."""
    authority = kit.new_account()
    kit.registry.add_authority(kit.roles.root, authority.address, region, f"{region} 数据局")
    return authority


# ─── regions ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("region", [330100, 330102, 331081, 330000])
def test_province_authority_registers_agencies_anywhere_in_its_province(kit, region: int) -> None:
    register(kit, kit.roles.authority, NEW_CODE, region)
    assert kit.registry.agency(NEW_CODE).region == region


@pytest.mark.parametrize("region", [440100, 320100, 110000])
def test_province_authority_cannot_register_outside_its_province(kit, region: int) -> None:
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=kit.roles.authority.address, region=region):
        register(kit, kit.roles.authority, NEW_CODE, region)


def test_city_authority_governs_its_districts_only(kit) -> None:
    hangzhou = appoint(kit, 330100)
    register(kit, hangzhou, NEW_CODE, 330102)
    assert kit.registry.agency(NEW_CODE).region == 330102
    for outside in (330200, 330000, 440100):
        with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=hangzhou.address, region=outside):
            register(kit, hangzhou, "11330200MB7654321Y", outside)


def test_county_authority_governs_its_own_code_only(kit) -> None:
    district = appoint(kit, 330102)
    register(kit, district, NEW_CODE, 330102)
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=district.address, region=330103):
        register(kit, district, "11330103MB7654321Y", 330103)


def test_city_authority_manages_the_agencies_of_its_city(kit) -> None:
    hangzhou = appoint(kit, 330100)
    kit.registry.grant_types(hangzhou, kit.zj, [kit.driving])
    assert kit.registry.is_granted(kit.zj, kit.driving)
    ningbo = appoint(kit, 330200)
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=ningbo.address, region=330100):
        kit.registry.suspend_agency(ningbo, kit.zj)


@pytest.mark.parametrize("region", [990000, 100000, 0, 1_000_000])
def test_invalid_region_is_rejected(kit, region: int) -> None:
    with kit.reverts("TrustRegistryInvalidRegion", region=region):
        kit.registry.add_authority(kit.roles.root, Account.create().address, region, "无效")
    with kit.reverts("TrustRegistryInvalidRegion", region=region):
        register(kit, kit.roles.authority, NEW_CODE, region)


# ─── authorities ─────────────────────────────────────────────────────────────────────────


def test_adding_an_authority_twice_is_rejected(kit) -> None:
    with kit.reverts("TrustRegistryAuthorityExists", account=kit.roles.authority.address):
        kit.registry.add_authority(kit.roles.root, kit.roles.authority.address, 330100, "重复")


def test_removing_an_unknown_authority_is_rejected(kit) -> None:
    stranger = kit.roles.stranger.address
    with kit.reverts("TrustRegistryUnknownAuthority", account=stranger):
        kit.registry.remove_authority(kit.roles.root, stranger)


def test_removed_authority_loses_its_powers_but_its_agencies_stay(kit) -> None:
    receipt = kit.registry.remove_authority(kit.roles.root, kit.roles.authority.address)
    kit.assert_event(receipt, "AuthorityRemoved", account=kit.roles.authority.address, region=330000)
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=kit.roles.authority.address, region=330100):
        kit.registry.suspend_agency(kit.roles.authority, kit.zj)
    root = kit.anchor()
    assert kit.inspect(root, kit.roles.agency).signer_valid


# ─── agencies ────────────────────────────────────────────────────────────────────────────


def test_registration_records_the_agency_its_key_and_types(kit) -> None:
    key = kit.new_account()
    receipt = kit.registry.register_agency(
        kit.roles.authority,
        NEW_CODE,
        330102,
        "西湖区市场监督管理局",
        key.address,
        [kit.business, kit.driving],
    )
    agency = kit.registry.agency(NEW_CODE)
    assert (agency.code, agency.region, agency.suspended, agency.name) == (
        NEW_CODE,
        330102,
        False,
        "西湖区市场监督管理局",
    )
    assert kit.registry.agency_keys(NEW_CODE) == [key.address]
    assert kit.registry.is_granted(NEW_CODE, kit.business) and kit.registry.is_granted(NEW_CODE, kit.driving)
    index = kit.agency_index_of(key.address)
    kit.assert_event(
        receipt,
        "AgencyRegistered",
        code=to_bytes32(NEW_CODE),
        agency=index,
        region=330102,
        name="西湖区市场监督管理局",
    )
    kit.assert_event(receipt, "KeyAdded", code=to_bytes32(NEW_CODE), key=key.address, validFrom=kit.now())
    kit.assert_event(
        receipt,
        "TypesGranted",
        code=to_bytes32(NEW_CODE),
        typeCodes=[to_bytes32(kit.business), to_bytes32(kit.driving)],
    )


def test_duplicate_agency_code_is_rejected(kit) -> None:
    with kit.reverts("TrustRegistryAgencyExists", code=to_bytes32(kit.zj)):
        register(kit, kit.roles.authority, kit.zj, 330100)


def test_zero_agency_code_is_rejected(kit) -> None:
    key = Account.create().address
    with kit.reverts("TrustRegistryInvalidAgencyCode", code=bytes(32)):
        kit.chain.transact(kit.roles.authority, kit.fn.registerAgency(bytes(32), 330100, "无代码", key, []))


@pytest.mark.parametrize("holder", ["agency", "other_agency", "authority"])
def test_a_key_in_use_cannot_be_registered_again(kit, roles, holder: str) -> None:
    taken = getattr(roles, holder).address
    with kit.reverts("TrustRegistryKeyInUse", key=taken):
        kit.registry.register_agency(kit.roles.authority, NEW_CODE, 330100, "重复密钥", taken, [kit.business])
    with kit.reverts("TrustRegistryKeyInUse", key=taken):
        kit.registry.add_key(kit.roles.authority, kit.zj, taken)


def test_zero_address_is_not_a_key(kit) -> None:
    zero = "0x" + "00" * 20
    with kit.reverts("TrustRegistryKeyInUse", key=zero):
        kit.registry.add_key(kit.roles.authority, kit.zj, zero)


def test_unknown_agency_is_reported(kit) -> None:
    with kit.reverts("TrustRegistryUnknownAgency", code=to_bytes32(NEW_CODE)):
        kit.registry.grant_types(kit.roles.authority, NEW_CODE, [kit.driving])
    with kit.reverts("TrustRegistryUnknownAgency", code=to_bytes32(NEW_CODE)):
        kit.registry.add_key(kit.roles.authority, NEW_CODE, Account.create().address)
    with kit.reverts("TrustRegistryUnknownAgency", code=to_bytes32(NEW_CODE)):
        kit.registry.agency(NEW_CODE)


# ─── certificate types ───────────────────────────────────────────────────────────────────


def test_granted_type_can_be_anchored(kit) -> None:
    receipt = kit.registry.grant_types(kit.roles.authority, kit.zj, [kit.driving])
    kit.assert_event(receipt, "TypesGranted", code=to_bytes32(kit.zj), typeCodes=[to_bytes32(kit.driving)])
    root = kit.anchor(type_code=kit.driving)
    assert kit.inspect(root, kit.roles.agency).type_code == kit.driving


def test_zero_type_code_is_rejected(kit) -> None:
    with kit.reverts("TrustRegistryInvalidTypeCode", typeCode=bytes(32)):
        kit.chain.transact(kit.roles.authority, kit.fn.grantTypes(to_bytes32(kit.zj), [bytes(32)]))


def test_revoked_type_cannot_be_anchored_but_earlier_batches_stand(kit) -> None:
    earlier = kit.anchor()
    receipt = kit.registry.revoke_types(kit.roles.authority, kit.zj, [kit.business])
    kit.assert_event(receipt, "TypesRevoked", code=to_bytes32(kit.zj), typeCodes=[to_bytes32(kit.business)])
    assert not kit.registry.is_granted(kit.zj, kit.business)
    with kit.reverts(
        "TrustRegistryTypeNotGranted", code=to_bytes32(kit.zj), typeCode=to_bytes32(kit.business)
    ):
        kit.anchor()
    inspection = kit.inspect(earlier, kit.roles.agency)
    assert inspection.anchored and inspection.signer_valid and inspection.anchor_key_valid
    assert (inspection.type_code, inspection.status) == (kit.business, Status.ACTIVE)
    kit.registry.set_status(kit.roles.agency, earlier, 0, Status.SUSPENDED, 2)
    assert kit.registry.status_of(earlier, 0) == Status.SUSPENDED


def test_regranted_type_can_be_anchored_again(kit) -> None:
    kit.registry.revoke_types(kit.roles.authority, kit.zj, [kit.business])
    kit.registry.grant_types(kit.roles.authority, kit.zj, [kit.business])
    assert kit.inspect(kit.anchor(), kit.roles.agency).type_code == kit.business


def test_a_type_granted_to_one_agency_is_not_granted_to_another(kit) -> None:
    kit.registry.grant_types(kit.roles.authority, kit.zj, [kit.driving])
    assert not kit.registry.is_granted(kit.gd, kit.driving)
    with kit.reverts(
        "TrustRegistryTypeNotGranted", code=to_bytes32(kit.gd), typeCode=to_bytes32(kit.driving)
    ):
        kit.anchor(kit.roles.other_agency, type_code=kit.driving)


# ─── suspension ──────────────────────────────────────────────────────────────────────────


def test_suspended_agency_cannot_anchor_but_manages_its_batches(kit) -> None:
    root = kit.anchor()
    receipt = kit.registry.suspend_agency(kit.roles.authority, kit.zj)
    kit.assert_event(receipt, "AgencySuspended", code=to_bytes32(kit.zj), by=kit.roles.authority.address)
    assert kit.registry.agency(kit.zj).suspended
    with kit.reverts("TrustRegistryAgencySuspended", code=to_bytes32(kit.zj)):
        kit.anchor()
    kit.registry.set_status(kit.roles.agency, root, 1, Status.REVOKED, 3)
    assert kit.registry.status_of(root, 1) == Status.REVOKED
    inspection = kit.inspect(root, kit.roles.agency)
    assert inspection.agency_suspended and inspection.signer_valid


def test_reinstated_agency_anchors_again(kit) -> None:
    kit.registry.suspend_agency(kit.roles.authority, kit.zj)
    receipt = kit.registry.reinstate_agency(kit.roles.authority, kit.zj)
    kit.assert_event(receipt, "AgencyReinstated", code=to_bytes32(kit.zj), by=kit.roles.authority.address)
    root = kit.anchor()
    assert not kit.inspect(root, kit.roles.agency).agency_suspended


# ─── key rotation ────────────────────────────────────────────────────────────────────────


def test_key_added_without_valid_from_is_valid_from_now(kit) -> None:
    key = kit.new_account()
    receipt = kit.registry.add_key(kit.roles.agency, kit.zj, key.address)
    now = kit.now()
    kit.assert_event(receipt, "KeyAdded", code=to_bytes32(kit.zj), key=key.address, validFrom=now)
    info = kit.registry.key_info(key.address)
    assert (info.agency_code, info.valid_from, info.retired_at, info.compromised_since) == (kit.zj, now, 0, 0)
    assert kit.registry.agency_keys(kit.zj) == [kit.roles.agency.address, key.address]
    assert kit.inspect(kit.anchor(key), key).signer_valid


def test_key_valid_from_the_future_anchors_only_from_then(kit) -> None:
    valid_from = kit.now() + 3600
    key = kit.add_key(valid_from=valid_from)
    assert kit.registry.key_info(key.address).valid_from == valid_from
    with kit.reverts("TrustRegistryKeyNotActive", key=key.address):
        kit.anchor(key)
    kit.advance(3600)
    root = kit.anchor(key)
    assert kit.inspect(root, key).anchor_key_valid


def test_retired_key_cannot_anchor_but_its_batches_stay_valid(kit) -> None:
    successor = kit.add_key(kit.roles.agency)
    before = kit.anchor()
    kit.advance(1)
    receipt = kit.registry.retire_key(kit.roles.agency, kit.roles.agency.address)  # a key retires itself
    retired_at = kit.now()
    kit.assert_event(
        receipt, "KeyRetired", code=to_bytes32(kit.zj), key=kit.roles.agency.address, retiredAt=retired_at
    )
    assert kit.registry.key_info(kit.roles.agency.address).retired_at == retired_at
    with kit.reverts("TrustRegistryKeyNotActive", key=kit.roles.agency.address):
        kit.anchor()
    inspection = kit.inspect(before, kit.roles.agency)
    assert inspection.signer_valid and inspection.anchor_key_valid
    assert kit.inspect(kit.anchor(successor), successor).signer_valid


def test_batch_anchored_in_the_retirement_second_stays_valid(kit) -> None:
    second = kit.now() + 10
    kit.next_block_at(second)
    before = kit.anchor()
    kit.next_block_at(second)
    kit.registry.retire_key(kit.roles.authority, kit.roles.agency.address)
    assert (
        kit.registry.key_info(kit.roles.agency.address).retired_at
        == kit.inspect(before, kit.roles.agency).anchored_at
    )
    assert kit.inspect(before, kit.roles.agency).anchor_key_valid


def test_retiring_twice_keeps_the_first_retirement(kit) -> None:
    kit.registry.retire_key(kit.roles.authority, kit.roles.agency.address)
    first = kit.now()
    kit.advance(60)
    receipt = kit.registry.retire_key(kit.roles.authority, kit.roles.agency.address)
    kit.assert_event(
        receipt, "KeyRetired", code=to_bytes32(kit.zj), key=kit.roles.agency.address, retiredAt=first
    )


def test_retired_key_no_longer_manages_its_agency(kit) -> None:
    kit.registry.retire_key(kit.roles.authority, kit.roles.agency.address)
    with kit.reverts(
        "TrustRegistryNotAgencyManager", account=kit.roles.agency.address, code=to_bytes32(kit.zj)
    ):
        kit.registry.add_key(kit.roles.agency, kit.zj, Account.create().address)


def test_key_not_yet_valid_does_not_manage_its_agency(kit) -> None:
    future = kit.add_key(valid_from=kit.now() + 3600)
    with kit.reverts("TrustRegistryNotAgencyManager", account=future.address, code=to_bytes32(kit.zj)):
        kit.registry.retire_key(future, kit.roles.agency.address)


def test_key_of_another_agency_does_not_manage_this_one(kit) -> None:
    other = kit.roles.other_agency.address
    with kit.reverts("TrustRegistryNotAgencyManager", account=other, code=to_bytes32(kit.zj)):
        kit.registry.retire_key(kit.roles.other_agency, kit.roles.agency.address)


def test_unknown_key_is_reported(kit) -> None:
    unknown = Account.create().address
    with kit.reverts("TrustRegistryUnknownKey", key=unknown):
        kit.registry.retire_key(kit.roles.authority, unknown)
    with kit.reverts("TrustRegistryUnknownKey", key=unknown):
        kit.registry.compromise_key(kit.roles.authority, unknown, kit.now())
    with kit.reverts("TrustRegistryUnknownKey", key=unknown):
        kit.registry.key_info(unknown)


# ─── compromise ──────────────────────────────────────────────────────────────────────────


def anchored_before_and_at(kit) -> tuple[bytes, bytes, int]:
    """Two batches of the 330100 key, the second anchored at least 60 s after the first."""
    before = kit.anchor()
    kit.advance(60)
    at = kit.anchor()
    return before, at, kit.inspect(at, kit.roles.agency).anchored_at


def test_compromise_invalidates_batches_anchored_at_or_after_since_only(kit) -> None:
    before, at, since = anchored_before_and_at(kit)
    kit.advance(60)
    after = kit.anchor()
    receipt = kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, since)
    kit.assert_event(
        receipt, "KeyCompromised", code=to_bytes32(kit.zj), key=kit.roles.agency.address, since=since
    )
    assert kit.registry.key_info(kit.roles.agency.address).compromised_since == since
    validity = {
        name: kit.inspect(root, kit.roles.agency)
        for name, root in (("before", before), ("at", at), ("after", after))
    }
    assert {name: (i.signer_valid, i.anchor_key_valid) for name, i in validity.items()} == {
        "before": (True, True),
        "at": (False, False),
        "after": (False, False),
    }


def test_compromised_key_cannot_anchor(kit) -> None:
    kit.registry.compromise_key(kit.roles.agency, kit.roles.agency.address, kit.now())
    with kit.reverts("TrustRegistryKeyNotActive", key=kit.roles.agency.address):
        kit.anchor()


@pytest.mark.parametrize("offset", [1, 3600])
def test_compromise_since_the_future_is_rejected(kit, offset: int) -> None:
    since = kit.now() + offset
    with kit.reverts("TrustRegistryInvalidTime", time=since):
        kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, since)


def test_compromise_since_zero_is_rejected(kit) -> None:
    with kit.reverts("TrustRegistryInvalidTime", time=0):
        kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, 0)


def test_a_later_compromise_only_moves_since_earlier(kit) -> None:
    before, _at, since = anchored_before_and_at(kit)
    key = kit.roles.agency.address
    kit.registry.compromise_key(kit.roles.authority, key, since)
    earlier = kit.inspect(before, key).anchored_at
    receipt = kit.registry.compromise_key(kit.roles.authority, key, earlier)
    kit.assert_event(receipt, "KeyCompromised", code=to_bytes32(kit.zj), key=key, since=earlier)
    assert not kit.inspect(before, key).signer_valid
    receipt = kit.registry.compromise_key(kit.roles.authority, key, since)
    kit.assert_event(receipt, "KeyCompromised", code=to_bytes32(kit.zj), key=key, since=earlier)
    assert kit.registry.key_info(key).compromised_since == earlier


def test_compromise_of_one_key_leaves_the_others_valid(kit) -> None:
    sibling = kit.add_key()
    root = kit.anchor(sibling)
    kit.registry.compromise_key(kit.roles.authority, kit.roles.agency.address, kit.now())
    assert kit.inspect(root, sibling).signer_valid
    assert not kit.inspect(root, kit.roles.agency).signer_valid  # compromised since the batch's anchor time


# ─── wasKeyValidAt ───────────────────────────────────────────────────────────────────────


def test_key_validity_is_tied_to_its_own_agency(kit) -> None:
    now = kit.now()
    zj_index = kit.agency_index_of(kit.roles.agency.address)
    gd_index = kit.agency_index_of(kit.roles.other_agency.address)
    valid = kit.fn.wasKeyValidAt
    assert valid(kit.roles.agency.address, zj_index, now).call()
    assert not valid(kit.roles.agency.address, gd_index, now).call()
    assert not valid(Account.create().address, 0, now).call()
    assert not valid(kit.roles.agency.address, zj_index, 0).call()  # before it was added


def test_a_new_key_cannot_be_backdated(kit) -> None:
    backdated = kit.now() - 3600
    with kit.reverts("TrustRegistryInvalidTime", time=backdated):
        kit.registry.add_key(kit.roles.authority, kit.zj, Account.create().address, backdated)


def test_an_agency_key_cannot_become_an_authority(kit) -> None:
    with kit.reverts("TrustRegistryKeyInUse", key=kit.roles.agency.address):
        kit.registry.add_authority(kit.roles.root, kit.roles.agency.address, 320000, "江苏")


def test_one_key_cannot_retire_or_discredit_a_sibling(kit) -> None:
    sibling = kit.add_key(kit.roles.agency)
    with kit.reverts("TrustRegistryNotAgencyManager", account=sibling.address, code=to_bytes32(kit.zj)):
        kit.registry.compromise_key(sibling, kit.roles.agency.address, 1)
    with kit.reverts("TrustRegistryNotAgencyManager", account=sibling.address, code=to_bytes32(kit.zj)):
        kit.registry.retire_key(sibling, kit.roles.agency.address)
    kit.registry.compromise_key(
        kit.roles.agency, kit.roles.agency.address, kit.now()
    )  # self-report is allowed
