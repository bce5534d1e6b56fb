"""SM2 keys of agencies (national co-seal, issue 13) in the trust registry.

Mirrors the secp256k1 key tests of test_trust_registry.py: who may add, retire and compromise an
SM2 key, the history rules `wasNationalKeyValidAt` answers by, and every refusal by its custom
error and arguments. The full role × function matrix is in test_authorization.py; the cases here
are the roles it does not have (a city authority, a retired or not yet valid key of the agency).
"""

from __future__ import annotations

import pytest
from contract_kit import Kit

from registry.contracts.trust_registry import to_bytes32
from registry.national import generate_private_key, key_id, public_key

SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


def new_sm2() -> bytes:
    return public_key(generate_private_key())


def add(kit: Kit, actor=None, *, valid_from: int = 0, code: str | None = None) -> bytes:
    """Add a fresh SM2 key (by the 330100 agency's authority unless told); returns its id."""
    sm2 = new_sm2()
    kit.registry.add_national_key(actor or kit.roles.authority, code or kit.zj, sm2, valid_from)
    return key_id(sm2)


def valid_at(kit: Kit, sm2_id: bytes, time: int) -> bool:
    return kit.registry.was_national_key_valid_at(sm2_id, time)


def block_time(kit: Kit, receipt) -> int:
    return kit.chain.w3.eth.get_block(receipt.block_number)["timestamp"]


# ─── adding ──────────────────────────────────────────────────────────────────────────────


def test_added_key_is_recorded_with_its_public_key_and_emitted(kit) -> None:
    sm2 = new_sm2()
    receipt = kit.registry.add_national_key(kit.roles.authority, kit.zj, sm2)
    added_at = block_time(kit, receipt)
    kit.assert_event(
        receipt,
        "NationalKeyAdded",
        code=to_bytes32(kit.zj),
        keyId=key_id(sm2),
        publicKey=sm2,
        validFrom=added_at,
    )
    info = kit.registry.national_key_info(key_id(sm2))
    assert (info.public_key, info.agency_code, info.valid_from, info.retired_at, info.compromised_since) == (
        sm2, kit.zj, added_at, 0, 0,
    )  # fmt: skip
    assert kit.registry.agency_national_keys(kit.zj) == [key_id(sm2)]
    assert kit.registry.agency_national_keys(kit.gd) == []
    record = kit.fn.nationalKeyRecord(key_id(sm2)).call()[0]
    assert record[0] == kit.agency_index_of(kit.roles.agency.address)


def test_agency_keys_are_listed_oldest_first(kit) -> None:
    first, second = add(kit), add(kit, kit.roles.agency)
    assert kit.registry.agency_national_keys(kit.zj) == [first, second]
    assert [k.key_id for k in kit.registry.national_keys(kit.zj)] == [first, second]


def test_sm2_keys_leave_the_secp256k1_keys_alone(kit) -> None:
    sm2_id = add(kit)
    assert kit.registry.agency_keys(kit.zj) == [kit.roles.agency.address]
    kit.registry.retire_key(kit.roles.authority, kit.roles.agency.address)
    assert valid_at(kit, sm2_id, kit.advance(10))


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_public_key_of_the_wrong_length_is_rejected(kit, length: int) -> None:
    raw = (new_sm2() * 2)[:length]
    with kit.reverts("TrustRegistryInvalidNationalKey", publicKey=raw):
        kit.registry.add_national_key(kit.roles.authority, kit.zj, raw)


def test_zero_key_is_rejected(kit) -> None:
    with kit.reverts("TrustRegistryInvalidNationalKey", publicKey=bytes(64)):
        kit.registry.add_national_key(kit.roles.authority, kit.zj, bytes(64))


def test_point_off_the_curve_is_rejected(kit) -> None:
    sm2 = new_sm2()
    y = (int.from_bytes(sm2[32:], "big") + 1) % SM2_P
    off = sm2[:32] + y.to_bytes(32, "big")
    with kit.reverts("TrustRegistryInvalidNationalKey", publicKey=off):
        kit.registry.add_national_key(kit.roles.authority, kit.zj, off)


def test_coordinate_beyond_the_field_is_rejected(kit) -> None:
    """(1, y) is on the curve; X = 1 + p is 1 again modulo p, so only the range check refuses it."""
    rhs = (1 - 3 + SM2_B) % SM2_P
    y = pow(rhs, (SM2_P + 1) // 4, SM2_P)  # p ≡ 3 (mod 4)
    assert y * y % SM2_P == rhs
    on_curve = (1).to_bytes(32, "big") + y.to_bytes(32, "big")
    kit.registry.add_national_key(kit.roles.authority, kit.zj, on_curve)  # accepted: the control
    wide = (1 + SM2_P).to_bytes(32, "big") + y.to_bytes(32, "big")
    with kit.reverts("TrustRegistryInvalidNationalKey", publicKey=wide):
        kit.registry.add_national_key(kit.roles.authority, kit.zj, wide)


def test_a_key_cannot_be_registered_twice(kit) -> None:
    sm2 = new_sm2()
    kit.registry.add_national_key(kit.roles.authority, kit.zj, sm2)
    with kit.reverts("TrustRegistryNationalKeyInUse", keyId=key_id(sm2)):
        kit.registry.add_national_key(kit.roles.authority, kit.zj, sm2)
    with kit.reverts("TrustRegistryNationalKeyInUse", keyId=key_id(sm2)):
        kit.registry.add_national_key(kit.roles.other_authority, kit.gd, sm2)


def test_a_new_key_cannot_be_backdated(kit) -> None:
    past = kit.now() - 1
    with kit.reverts("TrustRegistryInvalidTime", time=past):
        add(kit, valid_from=past)


def test_unknown_agency_is_reported(kit) -> None:
    unknown = "91330100MA27XYZ12Q"
    with kit.reverts("TrustRegistryUnknownAgency", code=to_bytes32(unknown)):
        add(kit, code=unknown)
    with kit.reverts("TrustRegistryUnknownAgency", code=to_bytes32(unknown)):
        kit.registry.agency_national_keys(unknown)


def test_unknown_key_is_reported(kit) -> None:
    unknown = key_id(new_sm2())
    with kit.reverts("TrustRegistryUnknownNationalKey", keyId=unknown):
        kit.registry.retire_national_key(kit.roles.authority, unknown)
    with kit.reverts("TrustRegistryUnknownNationalKey", keyId=unknown):
        kit.registry.compromise_national_key(kit.roles.authority, unknown, kit.now())
    with kit.reverts("TrustRegistryUnknownNationalKey", keyId=unknown):
        kit.registry.national_key_info(unknown)
    assert not valid_at(kit, unknown, kit.now())


# ─── who may ─────────────────────────────────────────────────────────────────────────────


def test_city_authority_manages_the_sm2_keys_of_its_city(kit) -> None:
    hangzhou = kit.new_account()
    kit.registry.add_authority(kit.roles.root, hangzhou.address, 330100, "杭州市数据资源管理局")
    sm2_id = add(kit, hangzhou)
    kit.registry.compromise_national_key(hangzhou, sm2_id, kit.now())
    ningbo = kit.new_account()
    kit.registry.add_authority(kit.roles.root, ningbo.address, 330200, "宁波市大数据发展管理局")
    with kit.reverts("TrustRegistryNotAgencyManager", account=ningbo.address, code=to_bytes32(kit.zj)):
        add(kit, ningbo)
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=ningbo.address, region=330100):
        kit.registry.compromise_national_key(ningbo, sm2_id, kit.now())


def test_agency_key_rotates_its_sm2_key_but_cannot_compromise_it(kit) -> None:
    """Adding and retiring are the agency's own business (a rotation by its secp256k1 key), but a
    compromise reaches back in time: an SM2 key cannot declare itself compromised, and one stolen
    secp256k1 key must not discredit every seal the agency made before, so only its authority may."""
    agency = kit.roles.agency
    old = add(kit, agency)
    new = add(kit, agency)
    kit.registry.retire_national_key(agency, old)
    assert kit.registry.national_key_info(old).retired_at > 0
    with kit.reverts("TrustRegistryNotAuthorityOfRegion", account=agency.address, region=330100):
        kit.registry.compromise_national_key(agency, new, kit.now())


def test_retired_agency_key_no_longer_manages_sm2_keys(kit) -> None:
    sm2_id = add(kit)
    sibling = kit.add_key()
    kit.registry.retire_key(kit.roles.authority, sibling.address)
    kit.advance(1)
    with kit.reverts("TrustRegistryNotAgencyManager", account=sibling.address, code=to_bytes32(kit.zj)):
        add(kit, sibling)
    with kit.reverts("TrustRegistryNotAgencyManager", account=sibling.address, code=to_bytes32(kit.zj)):
        kit.registry.retire_national_key(sibling, sm2_id)


def test_agency_key_not_yet_valid_does_not_manage_sm2_keys(kit) -> None:
    later = kit.add_key(valid_from=kit.now() + 3600)
    with kit.reverts("TrustRegistryNotAgencyManager", account=later.address, code=to_bytes32(kit.zj)):
        add(kit, later)


def test_key_of_another_agency_cannot_touch_this_agencys_sm2_keys(kit) -> None:
    sm2_id = add(kit)
    other = kit.roles.other_agency
    with kit.reverts("TrustRegistryNotAgencyManager", account=other.address, code=to_bytes32(kit.zj)):
        kit.registry.retire_national_key(other, sm2_id)
    with kit.reverts("TrustRegistryNotAgencyManager", account=other.address, code=to_bytes32(kit.zj)):
        add(kit, other)


# ─── history ─────────────────────────────────────────────────────────────────────────────


def test_key_valid_from_the_future_is_valid_only_from_then(kit) -> None:
    start = kit.now() + 3600
    sm2_id = add(kit, valid_from=start)
    assert kit.registry.national_key_info(sm2_id).valid_from == start
    assert not valid_at(kit, sm2_id, start - 1)
    assert valid_at(kit, sm2_id, start)


def test_retired_key_stays_valid_up_to_its_retirement_second(kit) -> None:
    sm2_id = add(kit)
    added_at = kit.now()
    kit.advance(100)
    receipt = kit.registry.retire_national_key(kit.roles.authority, sm2_id)
    retired_at = block_time(kit, receipt)
    kit.assert_event(
        receipt, "NationalKeyRetired", code=to_bytes32(kit.zj), keyId=sm2_id, retiredAt=retired_at
    )
    assert valid_at(kit, sm2_id, added_at)
    assert valid_at(kit, sm2_id, retired_at)
    assert not valid_at(kit, sm2_id, retired_at + 1)
    assert not valid_at(kit, sm2_id, added_at - 1)


def test_retiring_twice_keeps_the_first_retirement(kit) -> None:
    sm2_id = add(kit)
    first = block_time(kit, kit.registry.retire_national_key(kit.roles.authority, sm2_id))
    kit.advance(50)
    receipt = kit.registry.retire_national_key(kit.roles.authority, sm2_id)
    kit.assert_event(receipt, "NationalKeyRetired", code=to_bytes32(kit.zj), keyId=sm2_id, retiredAt=first)
    assert kit.registry.national_key_info(sm2_id).retired_at == first


def test_compromise_invalidates_from_since_on_only(kit) -> None:
    sm2_id = add(kit)
    start = kit.now()
    since = kit.advance(100) - 50
    receipt = kit.registry.compromise_national_key(kit.roles.authority, sm2_id, since)
    kit.assert_event(receipt, "NationalKeyCompromised", code=to_bytes32(kit.zj), keyId=sm2_id, since=since)
    assert valid_at(kit, sm2_id, start)
    assert valid_at(kit, sm2_id, since - 1)
    assert not valid_at(kit, sm2_id, since)
    assert not valid_at(kit, sm2_id, kit.now())


def test_a_later_compromise_only_moves_since_earlier(kit) -> None:
    sm2_id = add(kit)
    now = kit.advance(100)
    kit.registry.compromise_national_key(kit.roles.authority, sm2_id, now - 10)
    receipt = kit.registry.compromise_national_key(kit.roles.authority, sm2_id, now - 5)
    kit.assert_event(receipt, "NationalKeyCompromised", code=to_bytes32(kit.zj), keyId=sm2_id, since=now - 10)
    kit.registry.compromise_national_key(kit.roles.authority, sm2_id, now - 20)
    assert kit.registry.national_key_info(sm2_id).compromised_since == now - 20


@pytest.mark.parametrize("offset", [1, 3600])
def test_compromise_since_the_future_is_rejected(kit, offset: int) -> None:
    sm2_id = add(kit)
    since = kit.now() + offset + 5  # beyond the next block's time
    with kit.reverts("TrustRegistryInvalidTime", time=since):
        kit.registry.compromise_national_key(kit.roles.authority, sm2_id, since)


def test_compromise_since_zero_is_rejected(kit) -> None:
    sm2_id = add(kit)
    with kit.reverts("TrustRegistryInvalidTime", time=0):
        kit.registry.compromise_national_key(kit.roles.authority, sm2_id, 0)


def test_compromise_of_one_sm2_key_leaves_the_others_valid(kit) -> None:
    bad, good = add(kit), add(kit)
    now = kit.advance(10)
    kit.registry.compromise_national_key(kit.roles.authority, bad, now - 5)
    assert not valid_at(kit, bad, now)
    assert valid_at(kit, good, now)
