"""The authorisation matrix of the deployed registry, checked against its ABI.

Every state-changing function of `CertificateRegistry` has a row in `EXPECTED`: for each role,
True (the call succeeds and its effect is visible) or the custom error it must revert with.
A function added to the contract without a row fails `test_every_state_changing_function_has_a_row`.

Every call acts on the 330100 agency's objects: its code, its key, a batch it anchored, its
region, its authority. The roles (tests/conftest.py):

- root             holder of DEFAULT_ADMIN_ROLE (the national root; not an authority);
- authority        authority of 330000, which governs 330100;
- other_authority  authority of 440000;
- agency           the 330100 agency's (only) key;
- other_agency     the 440100 agency's key (granted the business licence only);
- stranger         an address with no standing.

Notes on rows that are not "root only" or "authority of the region only":

- addKey / retireKey / compromiseKey: the agency's authority *or an active key of the agency*
  (NatSpec of ITrustRegistry), so the 330100 agency's own key may add, retire or compromise its
  keys, here itself.
- addNationalKey / retireNationalKey: as addKey (the SM2 key sends no transactions, so the
  agency's active secp256k1 key stands in for it); compromiseNationalKey: the agency's
  authority only (tests/contracts/test_trust_registry_national_keys.py says why).
- anchor: has no agency argument, a key always anchors for its own agency. The row anchors a
  type granted to the 330100 agency only, so the 440100 agency's key fails on the type
  (it can never anchor outside its types) and every non-key fails as an inactive key.
- setStatus / setStatusBulk / revokeCertificates / revokeBatch: an active key of the anchoring
  agency or an authority of its region (revokeCertificates checks the anchoring key itself on a
  cheaper path first; tests/contracts/test_revoke_certificates.py covers sibling, retired,
  compromised and not-yet-valid keys).
- anchorAuditHead: has no agency argument either, any active key anchors its own agency's
  audit log head (so the 440100 agency's key succeeds too); every non-key fails as an inactive key.
- renounceRole(DEFAULT_ADMIN_ROLE, msg.sender) is allowed for everyone: OpenZeppelin only checks
  that `callerConfirmation == msg.sender`. For a non-holder it is a no-op (no RoleRevoked event);
  for the root it gives up the role for good.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from contract_kit import DEFAULT_ADMIN_ROLE, ZJ_REGION, Kit
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract.contract import ContractFunction

from registry.chain.client import Receipt
from registry.contracts.artifacts import artifact
from registry.contracts.certificate_registry import Status
from registry.contracts.trust_registry import to_bytes32
from registry.errors import ContractRevert
from registry.national import generate_private_key, key_id, public_key

ROLES = ("root", "authority", "other_authority", "agency", "other_agency", "stranger")

ADMIN = "AccessControlUnauthorizedAccount"
REGION = "TrustRegistryNotAuthorityOfRegion"
MANAGER = "TrustRegistryNotAgencyManager"
BATCH = "CertificateRegistryNotBatchManager"
NOT_KEY = "TrustRegistryKeyNotActive"
TYPE = "TrustRegistryTypeNotGranted"


def _row(*outcomes: bool | str) -> dict[str, bool | str]:
    return dict(zip(ROLES, outcomes, strict=True))


EXPECTED: dict[str, dict[str, bool | str]] = {
    #                         root     authority  other_authority  agency   other_agency  stranger
    "addAuthority":       _row(True,    ADMIN,     ADMIN,           ADMIN,   ADMIN,        ADMIN),
    "removeAuthority":    _row(True,    ADMIN,     ADMIN,           ADMIN,   ADMIN,        ADMIN),
    "grantRole":          _row(True,    ADMIN,     ADMIN,           ADMIN,   ADMIN,        ADMIN),
    "revokeRole":         _row(True,    ADMIN,     ADMIN,           ADMIN,   ADMIN,        ADMIN),
    "renounceRole":       _row(True,    True,      True,            True,    True,         True),
    "registerAgency":     _row(REGION,  True,      REGION,          REGION,  REGION,       REGION),
    "grantTypes":         _row(REGION,  True,      REGION,          REGION,  REGION,       REGION),
    "revokeTypes":        _row(REGION,  True,      REGION,          REGION,  REGION,       REGION),
    "suspendAgency":      _row(REGION,  True,      REGION,          REGION,  REGION,       REGION),
    "reinstateAgency":    _row(REGION,  True,      REGION,          REGION,  REGION,       REGION),
    "addKey":             _row(MANAGER, True,      MANAGER,         True,    MANAGER,      MANAGER),
    "retireKey":          _row(MANAGER, True,      MANAGER,         True,    MANAGER,      MANAGER),
    "compromiseKey":      _row(MANAGER, True,      MANAGER,         True,    MANAGER,      MANAGER),
    "addNationalKey":     _row(MANAGER, True,      MANAGER,         True,    MANAGER,      MANAGER),
    "retireNationalKey":  _row(MANAGER, True,      MANAGER,         True,    MANAGER,      MANAGER),
    "compromiseNationalKey": _row(REGION, True,    REGION,          REGION,  REGION,       REGION),
    "anchor":             _row(NOT_KEY, NOT_KEY,   NOT_KEY,         True,    TYPE,         NOT_KEY),
    "setStatus":          _row(BATCH,   True,      BATCH,           True,    BATCH,        BATCH),
    "setStatusBulk":      _row(BATCH,   True,      BATCH,           True,    BATCH,        BATCH),
    "revokeCertificates": _row(BATCH,   True,      BATCH,           True,    BATCH,        BATCH),
    "revokeBatch":        _row(BATCH,   True,      BATCH,           True,    BATCH,        BATCH),
    "anchorAuditHead":    _row(NOT_KEY, NOT_KEY,   NOT_KEY,         True,    True,         NOT_KEY),
}  # fmt: skip


@pytest.fixture
def kit(chain, registry, roles) -> Kit:
    return Kit(chain, registry, roles)


def state_changing_functions() -> set[str]:
    return {
        item["name"]
        for item in artifact("CertificateRegistry").abi
        if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable")
    }


# ─── one attempt per function: the call, what it acts on, and how to see its effect ──────


@dataclass
class Attempt:
    call: ContractFunction
    confirm: Callable[[Receipt], None]  # asserts the effect of the call once it succeeded
    region: int = ZJ_REGION
    root: bytes | None = None
    type_code: str | None = None


ATTEMPTS: dict[str, Callable] = {}


def attempt(function: str):
    def register(factory):
        ATTEMPTS[function] = factory
        return factory

    return register


@attempt("addAuthority")
def _add_authority(kit: Kit, caller: LocalAccount) -> Attempt:
    newcomer = Account.create().address
    name = "杭州市数据资源管理局"

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.authority_region(newcomer) == ZJ_REGION
        kit.assert_event(receipt, "AuthorityAdded", account=newcomer, region=ZJ_REGION, name=name)

    return Attempt(kit.fn.addAuthority(newcomer, ZJ_REGION, name), confirm)


@attempt("removeAuthority")
def _remove_authority(kit: Kit, caller: LocalAccount) -> Attempt:
    authority = kit.roles.authority.address

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.authority_region(authority) == 0
        kit.assert_event(receipt, "AuthorityRemoved", account=authority, region=330000)

    return Attempt(kit.fn.removeAuthority(authority), confirm)


@attempt("grantRole")
def _grant_role(kit: Kit, caller: LocalAccount) -> Attempt:
    deputy = Account.create().address

    def confirm(receipt: Receipt) -> None:
        assert kit.fn.hasRole(DEFAULT_ADMIN_ROLE, deputy).call()
        kit.assert_event(
            receipt, "RoleGranted", role=DEFAULT_ADMIN_ROLE, account=deputy, sender=caller.address
        )

    return Attempt(kit.fn.grantRole(DEFAULT_ADMIN_ROLE, deputy), confirm)


@attempt("revokeRole")
def _revoke_role(kit: Kit, caller: LocalAccount) -> Attempt:
    deputy = Account.create().address
    kit.chain.transact(kit.roles.root, kit.fn.grantRole(DEFAULT_ADMIN_ROLE, deputy))

    def confirm(receipt: Receipt) -> None:
        assert not kit.fn.hasRole(DEFAULT_ADMIN_ROLE, deputy).call()
        kit.assert_event(
            receipt, "RoleRevoked", role=DEFAULT_ADMIN_ROLE, account=deputy, sender=caller.address
        )

    return Attempt(kit.fn.revokeRole(DEFAULT_ADMIN_ROLE, deputy), confirm)


@attempt("renounceRole")
def _renounce_role(kit: Kit, caller: LocalAccount) -> Attempt:
    was_admin = kit.fn.hasRole(DEFAULT_ADMIN_ROLE, caller.address).call()

    def confirm(receipt: Receipt) -> None:
        assert not kit.fn.hasRole(DEFAULT_ADMIN_ROLE, caller.address).call()
        revoked = kit.events(receipt, "RoleRevoked")
        assert len(revoked) == (1 if was_admin else 0), (
            "renouncing a role one does not hold is a silent no-op"
        )

    return Attempt(kit.fn.renounceRole(DEFAULT_ADMIN_ROLE, caller.address), confirm)


@attempt("registerAgency")
def _register_agency(kit: Kit, caller: LocalAccount) -> Attempt:
    code = "11330100" + os.urandom(5).hex().upper()
    key = Account.create().address
    name = "杭州市交通运输局"

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.agency(code).region == ZJ_REGION
        assert kit.registry.key_info(key).agency_code == code
        assert kit.registry.is_granted(code, kit.business)

    call = kit.fn.registerAgency(to_bytes32(code), ZJ_REGION, name, key, [to_bytes32(kit.business)])
    return Attempt(call, confirm)


@attempt("grantTypes")
def _grant_types(kit: Kit, caller: LocalAccount) -> Attempt:
    def confirm(receipt: Receipt) -> None:
        assert kit.registry.is_granted(kit.zj, kit.driving)
        kit.assert_event(
            receipt, "TypesGranted", code=to_bytes32(kit.zj), typeCodes=[to_bytes32(kit.driving)]
        )

    return Attempt(kit.fn.grantTypes(to_bytes32(kit.zj), [to_bytes32(kit.driving)]), confirm)


@attempt("revokeTypes")
def _revoke_types(kit: Kit, caller: LocalAccount) -> Attempt:
    def confirm(receipt: Receipt) -> None:
        assert not kit.registry.is_granted(kit.zj, kit.business)
        kit.assert_event(
            receipt, "TypesRevoked", code=to_bytes32(kit.zj), typeCodes=[to_bytes32(kit.business)]
        )

    return Attempt(kit.fn.revokeTypes(to_bytes32(kit.zj), [to_bytes32(kit.business)]), confirm)


@attempt("suspendAgency")
def _suspend_agency(kit: Kit, caller: LocalAccount) -> Attempt:
    def confirm(receipt: Receipt) -> None:
        assert kit.registry.agency(kit.zj).suspended
        kit.assert_event(receipt, "AgencySuspended", code=to_bytes32(kit.zj), by=caller.address)

    return Attempt(kit.fn.suspendAgency(to_bytes32(kit.zj)), confirm)


@attempt("reinstateAgency")
def _reinstate_agency(kit: Kit, caller: LocalAccount) -> Attempt:
    kit.registry.suspend_agency(kit.roles.authority, kit.zj)

    def confirm(receipt: Receipt) -> None:
        assert not kit.registry.agency(kit.zj).suspended
        kit.assert_event(receipt, "AgencyReinstated", code=to_bytes32(kit.zj), by=caller.address)

    return Attempt(kit.fn.reinstateAgency(to_bytes32(kit.zj)), confirm)


@attempt("addKey")
def _add_key(kit: Kit, caller: LocalAccount) -> Attempt:
    key = Account.create().address

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.key_info(key).agency_code == kit.zj
        assert kit.registry.agency_keys(kit.zj)[-1] == key

    return Attempt(kit.fn.addKey(to_bytes32(kit.zj), key, 0), confirm)


@attempt("retireKey")
def _retire_key(kit: Kit, caller: LocalAccount) -> Attempt:
    key = kit.roles.agency.address

    def confirm(receipt: Receipt) -> None:
        retired_at = kit.chain.w3.eth.get_block(receipt.block_number)["timestamp"]
        assert kit.registry.key_info(key).retired_at == retired_at
        kit.assert_event(receipt, "KeyRetired", code=to_bytes32(kit.zj), key=key, retiredAt=retired_at)

    return Attempt(kit.fn.retireKey(key), confirm)


@attempt("compromiseKey")
def _compromise_key(kit: Kit, caller: LocalAccount) -> Attempt:
    key = kit.roles.agency.address
    since = kit.now()

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.key_info(key).compromised_since == since
        kit.assert_event(receipt, "KeyCompromised", code=to_bytes32(kit.zj), key=key, since=since)

    return Attempt(kit.fn.compromiseKey(key, since), confirm)


def _national_key(kit: Kit) -> bytes:
    """A fresh SM2 key of the 330100 agency, added by its authority; returns its id."""
    sm2 = public_key(generate_private_key())
    kit.registry.add_national_key(kit.roles.authority, kit.zj, sm2)
    return key_id(sm2)


@attempt("addNationalKey")
def _add_national_key(kit: Kit, caller: LocalAccount) -> Attempt:
    sm2 = public_key(generate_private_key())

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.agency_national_keys(kit.zj)[-1] == key_id(sm2)
        assert kit.registry.national_key_info(key_id(sm2)).public_key == sm2

    return Attempt(kit.fn.addNationalKey(to_bytes32(kit.zj), sm2, 0), confirm)


@attempt("retireNationalKey")
def _retire_national_key(kit: Kit, caller: LocalAccount) -> Attempt:
    sm2_id = _national_key(kit)

    def confirm(receipt: Receipt) -> None:
        retired_at = kit.chain.w3.eth.get_block(receipt.block_number)["timestamp"]
        assert kit.registry.national_key_info(sm2_id).retired_at == retired_at
        kit.assert_event(
            receipt, "NationalKeyRetired", code=to_bytes32(kit.zj), keyId=sm2_id, retiredAt=retired_at
        )

    return Attempt(kit.fn.retireNationalKey(sm2_id), confirm)


@attempt("compromiseNationalKey")
def _compromise_national_key(kit: Kit, caller: LocalAccount) -> Attempt:
    sm2_id = _national_key(kit)
    since = kit.now()

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.national_key_info(sm2_id).compromised_since == since
        kit.assert_event(
            receipt, "NationalKeyCompromised", code=to_bytes32(kit.zj), keyId=sm2_id, since=since
        )

    return Attempt(kit.fn.compromiseNationalKey(sm2_id, since), confirm)


@attempt("anchor")
def _anchor(kit: Kit, caller: LocalAccount) -> Attempt:
    kit.registry.grant_types(kit.roles.authority, kit.zj, [kit.driving])
    root = kit.new_root()

    def confirm(receipt: Receipt) -> None:
        inspection = kit.inspect(root, caller)
        assert (inspection.agency_code, inspection.type_code, inspection.count) == (kit.zj, kit.driving, 10)
        assert inspection.anchor_key == caller.address and inspection.signer_valid

    return Attempt(
        kit.fn.anchor(root, 10, to_bytes32(kit.driving)), confirm, root=root, type_code=kit.driving
    )


def _anchored_batch(kit: Kit) -> bytes:
    return kit.anchor(count=300)


@attempt("setStatus")
def _set_status(kit: Kit, caller: LocalAccount) -> Attempt:
    root = _anchored_batch(kit)

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.status_of(root, 7) == Status.SUSPENDED
        assert kit.registry.status_of(root, 6) == Status.ACTIVE

    return Attempt(kit.fn.setStatus(root, 7, int(Status.SUSPENDED), 2), confirm, root=root)


@attempt("setStatusBulk")
def _set_status_bulk(kit: Kit, caller: LocalAccount) -> Attempt:
    root = _anchored_batch(kit)

    def confirm(receipt: Receipt) -> None:
        statuses = [kit.registry.status_of(root, index) for index in (256, 257, 258)]
        assert statuses == [Status.SUSPENDED, Status.ACTIVE, Status.SUSPENDED]

    return Attempt(kit.fn.setStatusBulk(root, 1, 0b101, int(Status.SUSPENDED), 2), confirm, root=root)


@attempt("revokeCertificates")
def _revoke_certificates(kit: Kit, caller: LocalAccount) -> Attempt:
    root = _anchored_batch(kit)

    def confirm(receipt: Receipt) -> None:
        statuses = [kit.registry.status_of(root, index) for index in (256, 257, 258)]
        assert statuses == [Status.REVOKED, Status.ACTIVE, Status.REVOKED]
        kit.assert_event(receipt, "CertificatesRevoked", root=root, word=1, mask=0b101, reason=3)

    return Attempt(kit.fn.revokeCertificates(root, 1 << 8 | 3, 0b101), confirm, root=root)


@attempt("revokeBatch")
def _revoke_batch(kit: Kit, caller: LocalAccount) -> Attempt:
    root = _anchored_batch(kit)

    def confirm(receipt: Receipt) -> None:
        assert kit.registry.status_of(root, 0) == kit.registry.status_of(root, 299) == Status.REVOKED
        kit.assert_event(receipt, "BatchRevoked", root=root, reason=3)

    return Attempt(kit.fn.revokeBatch(root, 3), confirm, root=root)


@attempt("anchorAuditHead")
def _anchor_audit_head(kit: Kit, caller: LocalAccount) -> Attempt:
    head = kit.new_root()

    def confirm(receipt: Receipt) -> None:
        anchored_at = kit.chain.w3.eth.get_block(receipt.block_number)["timestamp"]
        code = kit.registry.key_info(caller.address).agency_code  # any agency's key: its own log
        kit.assert_event(
            receipt, "AuditHeadAnchored",
            agency=to_bytes32(code), key=caller.address, head=head, count=42, anchoredAt=anchored_at,
        )  # fmt: skip

    return Attempt(kit.fn.anchorAuditHead(head, 42), confirm)


def expected_error_args(kit: Kit, error: str, caller: LocalAccount, attempt: Attempt) -> dict:
    """The arguments a denial must carry: the caller and the object it was denied."""
    if error == ADMIN:
        return {"account": caller.address, "neededRole": DEFAULT_ADMIN_ROLE}
    if error == REGION:
        return {"account": caller.address, "region": attempt.region}
    if error == MANAGER:
        return {"account": caller.address, "code": to_bytes32(kit.zj)}
    if error == BATCH:
        return {"account": caller.address, "root": attempt.root}
    if error == NOT_KEY:
        return {"key": caller.address}
    if error == TYPE:
        caller_agency = kit.registry.key_info(caller.address).agency_code
        return {"code": to_bytes32(caller_agency), "typeCode": to_bytes32(attempt.type_code)}
    raise AssertionError(f"no expected arguments known for {error}")


# ─── tests ───────────────────────────────────────────────────────────────────────────────


def test_every_state_changing_function_has_a_row() -> None:
    functions = state_changing_functions()
    missing = sorted(functions - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - functions)
    assert not missing, f"state-changing functions without a row in EXPECTED: {', '.join(missing)}"
    assert not stale, f"rows in EXPECTED for functions the contract no longer has: {', '.join(stale)}"


def test_every_row_names_every_role_and_has_an_attempt() -> None:
    for function, row in EXPECTED.items():
        assert tuple(row) == ROLES, f"{function}: roles {tuple(row)}"
        assert all(outcome is True or isinstance(outcome, str) for outcome in row.values()), function
    assert ATTEMPTS.keys() == EXPECTED.keys()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("function", sorted(state_changing_functions() | EXPECTED.keys()))
def test_authorisation(kit: Kit, roles, function: str, role: str) -> None:
    if function not in EXPECTED or function not in ATTEMPTS:
        pytest.fail(f"{function} has no row in EXPECTED or no attempt in ATTEMPTS")
    caller = getattr(roles, role)
    attempt = ATTEMPTS[function](kit, caller)
    outcome = EXPECTED[function][role]
    if outcome is True:
        attempt.confirm(kit.chain.transact(caller, attempt.call))
        return
    with pytest.raises(ContractRevert) as caught:
        kit.chain.transact(caller, attempt.call)
    assert caught.value.name == outcome, f"{role} calling {function}: expected {outcome}, got {caught.value}"
    expected = expected_error_args(kit, outcome, caller, attempt)
    assert kit.plain(caught.value.error_args) == kit.plain(expected), str(caught.value)
