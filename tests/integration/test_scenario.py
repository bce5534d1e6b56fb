"""The foundation scenario on a real anvil: issue 1,000, verify, change status, tamper, compromise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from conftest import TYPE_BUSINESS_LICENCE, TYPE_DRIVING_LICENCE, ZJ_AGENCY_CODE, Roles
from eth_account import Account

from issuer.batch import IssuedBatch, build_batch
from registry.certificate.canonical import FieldLeaf
from registry.certificate.model import Issuer
from registry.certificate.types import TYPE_NAMES
from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.errors import ContractRevert
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation

pytestmark = pytest.mark.chain

ZJ_ISSUER = Issuer("杭州市市场监督管理局", ZJ_AGENCY_CODE, "330100")


def records(count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "holder": {"name": f"商户{i}", "code": "11010519491231002X"},
            "validUntil": "2036-12-31",
            "ext": {"scope": ["餐饮服务", "食品销售"][: rng.randint(1, 2)], "capital": rng.randint(1, 10**7)},
        }
        for i in range(count)
    ]


def issue(
    registry: CertificateRegistry, key, count: int, type_code: str = TYPE_BUSINESS_LICENCE
) -> IssuedBatch:
    batch = build_batch(
        records(count), type_code=type_code, type_name=TYPE_NAMES[type_code], issuer=ZJ_ISSUER, signing_key=bytes(key.key),
        chain_id=registry.client.chain_id, registry=registry.address,
    )  # fmt: skip
    assert not batch.rejected
    registry.anchor(key, batch.root, len(batch), type_code)
    return batch


def verdict(registry: CertificateRegistry, presentation) -> tuple[Outcome, str | None]:
    report = verify_presentation(presentation, RegistryReader(registry))
    return report.verdict, report.reason


def test_issue_verify_and_status_lifecycle(registry: CertificateRegistry, roles: Roles) -> None:
    batch = issue(registry, roles.agency, 1000)
    index = 417
    cert = batch.presentations[index]

    assert verdict(registry, cert) == (Outcome.VALID, None)
    registry.set_status(roles.agency, batch.root, index, Status.SUSPENDED, 2)
    assert verdict(registry, cert) == (Outcome.INVALID, "CERT_SUSPENDED")
    registry.set_status(roles.agency, batch.root, index, Status.ACTIVE, 1)
    assert verdict(registry, cert) == (Outcome.VALID, None)
    registry.set_status(roles.agency, batch.root, index, Status.REVOKED, 7)
    assert verdict(registry, cert) == (Outcome.INVALID, "CERT_REVOKED")
    with pytest.raises(ContractRevert) as reverted:
        registry.set_status(roles.agency, batch.root, index, Status.ACTIVE, 1)
    assert reverted.value.name == "CertificateRegistryAlreadyRevoked"
    # its neighbours are untouched
    assert verdict(registry, batch.presentations[index + 1]) == (Outcome.VALID, None)


def test_one_changed_character_in_any_field_is_integrity_invalid(
    registry: CertificateRegistry, roles: Roles
) -> None:
    batch = issue(registry, roles.agency, 3)
    cert = batch.presentations[1]
    for position, leaf in enumerate(cert.leaves):
        changed = (
            leaf.value[:-2] + chr(ord(leaf.value[-2]) ^ 1) + leaf.value[-1:]
            if len(leaf.value) > 2
            else leaf.value + " "
        )
        leaves = list(cert.leaves)
        leaves[position] = FieldLeaf(leaf.salt, leaf.path, changed)
        report = verify_presentation(
            dataclasses.replace(cert, leaves=tuple(leaves)), RegistryReader(registry)
        )
        integrity = next(c for c in report.checks if c.kind == "integrity")
        assert (report.verdict, integrity.outcome, integrity.code) == (
            Outcome.INVALID,
            Outcome.INVALID,
            "CERT_TAMPERED",
        ), leaf.path


def test_type_not_granted_cannot_be_anchored(registry: CertificateRegistry, roles: Roles) -> None:
    with pytest.raises(ContractRevert) as reverted:
        issue(registry, roles.agency, 2, type_code=TYPE_DRIVING_LICENCE)
    assert reverted.value.name == "TrustRegistryTypeNotGranted"


def test_other_region_authority_cannot_change_the_agencys_batches(
    registry: CertificateRegistry, roles: Roles
) -> None:
    batch = issue(registry, roles.agency, 2)
    with pytest.raises(ContractRevert) as reverted:
        registry.set_status(roles.other_authority, batch.root, 0, Status.REVOKED, 3)
    assert reverted.value.name == "CertificateRegistryNotBatchManager"
    registry.set_status(roles.authority, batch.root, 0, Status.SUSPENDED, 2)  # its own authority can
    assert registry.status_of(batch.root, 0) is Status.SUSPENDED


def test_compromised_key_invalidates_batches_anchored_after_and_not_before(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles
) -> None:
    key = Account.create()
    chain.fund(key.address, 10**19)
    registry.add_key(roles.agency, ZJ_AGENCY_CODE, key.address)
    before = issue(registry, key, 2)
    chain.w3.provider.make_request("evm_increaseTime", [3600])
    chain.w3.provider.make_request("evm_mine", [])
    compromised_at = chain.w3.eth.get_block("latest")["timestamp"]
    after = issue(registry, key, 2)
    registry.compromise_key(roles.authority, key.address, compromised_at)

    assert verdict(registry, before.presentations[0]) == (Outcome.VALID, None)
    outcome, reason = verdict(registry, after.presentations[0])
    assert outcome is Outcome.INVALID and reason == "ANCHOR_KEY_COMPROMISED"


def test_the_seal_must_be_by_a_key_of_the_anchoring_agency(
    registry: CertificateRegistry, roles: Roles
) -> None:
    batch = issue(registry, roles.agency, 2)
    impostor = Account.create()
    resealed = build_batch(
        records(2), type_code=TYPE_BUSINESS_LICENCE, type_name="营业执照", issuer=ZJ_ISSUER,
        signing_key=bytes(impostor.key), chain_id=registry.client.chain_id, registry=registry.address,
    )  # fmt: skip
    forged = dataclasses.replace(
        resealed.presentations[0], batch_root=batch.root, batch_proof=batch.presentations[0].batch_proof
    )
    outcome, _ = verdict(registry, forged)
    assert outcome is Outcome.INVALID


def test_expired_certificate_is_invalid(registry: CertificateRegistry, roles: Roles) -> None:
    batch = issue(registry, roles.agency, 1)
    later = dt.datetime(2037, 1, 1, tzinfo=dt.UTC)
    report = verify_presentation(batch.presentations[0], RegistryReader(registry), clock=lambda: later)
    assert (report.verdict, report.reason) == (Outcome.INVALID, "EXPIRED")


def test_chain_down_is_error_never_valid(registry: CertificateRegistry, roles: Roles) -> None:
    from registry.chain.runner import free_port
    from registry.contracts.certificate_registry import CertificateRegistry as Binding

    batch = issue(registry, roles.agency, 1)
    reader = RegistryReader(registry)
    dead = ChainClient.__new__(ChainClient)
    ChainClient.__init__(
        dead, __import__("web3").Web3(__import__("web3").Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}"))
    )
    dead._chain_id = reader.chain_id
    reader._registry = Binding(dead, registry.address)
    report = verify_presentation(batch.presentations[0], reader)
    assert report.verdict is Outcome.ERROR
    assert {c.kind for c in report.checks if c.outcome is Outcome.ERROR} >= {"anchor", "authority", "status"}
    assert all(c.code == "CHAIN_UNAVAILABLE" for c in report.checks if c.outcome is Outcome.ERROR)


def test_hiding_valid_until_cannot_pass_a_dated_certificate_as_permanent(
    registry: CertificateRegistry, roles: Roles
) -> None:
    batch = issue(registry, roles.agency, 1)
    full = batch.presentations[0]
    shown = full.disclose(["holder.name", "validFrom", "validUntil"])
    assert verdict(registry, shown) == (Outcome.VALID, None)
    hidden = full.disclose(["holder.name", "validFrom"])
    assert verdict(registry, hidden) == (Outcome.INVALID, "VALIDITY_NOT_DISCLOSED")


def test_a_permanent_certificate_carries_a_null_valid_until(
    registry: CertificateRegistry, roles: Roles
) -> None:
    permanent = build_batch(
        [{"holder": {"name": "长期商户", "code": "91330106MA2H3XY60L"}}], type_code=TYPE_BUSINESS_LICENCE, type_name="营业执照",
        issuer=ZJ_ISSUER, signing_key=bytes(roles.agency.key), chain_id=registry.client.chain_id, registry=registry.address,
    )  # fmt: skip
    registry.anchor(roles.agency, permanent.root, 1, TYPE_BUSINESS_LICENCE)
    presentation = permanent.presentations[0]
    assert presentation.values()["validUntil"] is None
    report = verify_presentation(presentation.disclose(["validFrom", "validUntil"]), RegistryReader(registry))
    validity = next(c for c in report.checks if c.kind == "validity")
    assert (report.verdict, validity.code) == (Outcome.VALID, "IN_PERIOD") and "长期" in validity.message
