"""Each of the seven core checks on its own, on a hand-made context with a stub chain reader
(issue 10: point 14), with the type binding (13), key compromise known later (15) and the
revocation reasons (16)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass, replace

import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from registry.certificate.canonical import FieldLeaf, make_leaves
from registry.certificate.merkle import batch_tree, field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.presentation import BOUND_PATHS, Presentation, batch_presentations
from registry.certificate.seal import sign_seal
from registry.contracts.certificate_registry import Inspection, Status
from registry.errors import CertificateError, ChainUnavailable
from verifier.checks.anchor import AnchorCheck
from verifier.checks.authority import AuthorityCheck
from verifier.checks.base import Check, CheckResult, Outcome, run_guarded
from verifier.checks.format import FormatCheck
from verifier.checks.integrity import IntegrityCheck
from verifier.checks.seal import SealCheck
from verifier.checks.share import ShareCheck, ShareTerms
from verifier.checks.status import StatusCheck
from verifier.checks.validity import ValidityCheck
from verifier.context import ChainFacts, KeyCompromise, VerificationContext
from verifier.pipeline import verify_presentation

LICENCE = "11100000000013338W001"
DRIVING = "11100000000013338W002"
AGENCY = "11330100002493028E"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ISSUER = Issuer("杭州市市场监督管理局", AGENCY, "330100")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
KEY = Account.create()


def issue(records: list[dict], *, type_name: str = "营业执照") -> list[Presentation]:
    batch = build_batch(
        records, type_code=LICENCE, type_name=type_name, issuer=ISSUER, signing_key=bytes(KEY.key), chain_id=31337,
        registry=REGISTRY, serials=serial_numbers("C"), salt_source=random.Random(13).randbytes, today=dt.date(2026, 11, 1),
    )  # fmt: skip
    assert not batch.rejected, batch.rejected
    return batch.presentations


@pytest.fixture(scope="module")
def certificate() -> Presentation:
    return issue(
        [
            {
                "holder": {"name": "张三", "code": "11010519491231002X"},
                "validUntil": "2031-01-01",
                "ext": {"scope": ["餐饮"]},
            }
        ]
    )[0]


def inspection(**changes) -> Inspection:
    found = Inspection(
        anchored=True, proof_valid=True, signer_valid=True, anchor_key_valid=True, agency_suspended=False,
        status=Status.ACTIVE, agency_code=AGENCY, region=330100, type_code=LICENCE,
        anchor_key=KEY.address, anchored_at=1_790_000_000, count=1,
    )  # fmt: skip
    return replace(found, **changes)


@dataclass
class StubReader:
    """Answers `facts` with fixed chain facts, as a reader would."""

    found: Inspection
    down: bool = False
    chain_id: int = 31337
    registry: str = REGISTRY
    status_reason: int | None = None
    status_since: int | None = None
    compromises: tuple[KeyCompromise, ...] = ()

    def facts(self, presentation, signer: str, at: int | None = None) -> ChainFacts:
        if self.down:
            raise ChainUnavailable("node down")
        return ChainFacts(
            self.found, 1234, "stub", 0, self.status_reason, self.status_since, self.compromises
        )


def check(
    the_check: Check, presentation: Presentation, reader=None, *, now: dt.datetime = NOW
) -> CheckResult:
    return run_guarded(the_check, VerificationContext(presentation, reader, clock=lambda: now))


def outcome(result: CheckResult) -> tuple[str, Outcome, str]:
    return result.kind, result.outcome, result.code


def with_value(p: Presentation, path: str, value: str) -> Presentation:
    return dataclasses.replace(
        p,
        leaves=tuple(
            FieldLeaf(leaf.salt, leaf.path, value) if leaf.path == path else leaf for leaf in p.leaves
        ),
    )


def without(p: Presentation, path: str) -> Presentation:
    return dataclasses.replace(p, leaves=tuple(leaf for leaf in p.leaves if leaf.path != path))


# ─── format ─────────────────────────────────────────────────────────────────────────────


def test_format(certificate) -> None:
    reader = StubReader(inspection())
    assert outcome(check(FormatCheck(), certificate, reader)) == ("format", Outcome.VALID, "FORMAT_OK")
    assert outcome(check(FormatCheck(), certificate, None)) == (
        "format",
        Outcome.VALID,
        "FORMAT_OK",
    )  # no chain to compare with
    assert check(FormatCheck(), certificate, StubReader(inspection(), chain_id=1)).code == "REGISTRY_UNKNOWN"
    duplicated = dataclasses.replace(certificate, leaves=(*certificate.leaves, certificate.leaves[0]))
    assert check(FormatCheck(), duplicated).code == "FIELD_DUPLICATED"
    missing = check(FormatCheck(), without(certificate, "validUntil"))
    assert (missing.outcome, missing.code, missing.evidence["missing"]) == (
        Outcome.INVALID,
        "FIELD_MISSING",
        ["validUntil"],
    )
    bad_id = check(FormatCheck(), with_value(certificate, "identifier", '"1.2.156.3005.2.x"'))
    assert bad_id.outcome is Outcome.INVALID and bad_id.code.startswith("ID_")


@pytest.mark.parametrize("hidden", BOUND_PATHS)
def test_format_a_disclosure_must_show_type_identifier_and_agency(certificate, hidden: str) -> None:
    """Point 13: a disclosure hiding any of them is INVALID (a hand-made multiproof, as a forger would make)."""
    shown = [
        p
        for p in certificate.paths()
        if p in ("holder.name", "validFrom", "validUntil", *BOUND_PATHS) and p != hidden
    ]
    partial = _multiproof_of(certificate, shown)
    assert hidden not in partial.paths()
    result = check(FormatCheck(), partial)
    assert (result.outcome, result.code, result.evidence["missing"]) == (
        Outcome.INVALID,
        "FIELD_MISSING",
        [hidden],
    )
    assert check(FormatCheck(), _multiproof_of(certificate, [*shown, hidden])).code == "FORMAT_OK"


def _multiproof_of(full: Presentation, paths: list[str]) -> Presentation:
    """A disclosure of exactly `paths`, bypassing `disclose` (which always adds `BOUND_PATHS`)."""
    from registry.certificate.merkle import MerkleTree

    tree = MerkleTree([leaf.hash() for leaf in full.leaves])
    proof = tree.multiproof([i for i, leaf in enumerate(full.leaves) if leaf.path in paths])
    by_hash = {leaf.hash(): leaf for leaf in full.leaves}
    return dataclasses.replace(
        full,
        leaves=tuple(by_hash[h] for h in proof.leaves),
        proof=tuple(proof.proof),
        proof_flags=tuple(proof.proof_flags),
    )


def test_disclose_always_adds_the_bound_fields(certificate) -> None:
    disclosed = certificate.disclose(["holder.name"])
    assert set(disclosed.paths()) == {"holder.name", *BOUND_PATHS}
    assert disclosed.computed_digest() == certificate.digest


# ─── integrity ──────────────────────────────────────────────────────────────────────────


def test_integrity(certificate) -> None:
    assert outcome(check(IntegrityCheck(), certificate)) == ("integrity", Outcome.VALID, "DIGEST_OK")
    assert outcome(check(IntegrityCheck(), certificate.disclose(["holder.name"]))) == (
        "integrity",
        Outcome.VALID,
        "DIGEST_OK",
    )
    changed = check(IntegrityCheck(), with_value(certificate, "holder.name", '"李四"'))
    assert (changed.outcome, changed.code) == (Outcome.INVALID, "CERT_TAMPERED")
    partial = certificate.disclose(["holder.name"])
    broken = dataclasses.replace(partial, proof_flags=tuple(not f for f in partial.proof_flags or ()))
    assert outcome(check(IntegrityCheck(), broken)) == ("integrity", Outcome.INVALID, "CERT_TAMPERED")


# ─── seal ───────────────────────────────────────────────────────────────────────────────


def test_seal(certificate) -> None:
    sealed = check(SealCheck(), certificate)
    assert (outcome(sealed), sealed.evidence) == (("seal", Outcome.VALID, "SEAL_OK"), {"signer": KEY.address})
    assert outcome(check(SealCheck(), dataclasses.replace(certificate, seal=bytes(65)))) == (
        "seal",
        Outcome.INVALID,
        "SEAL_INVALID",
    )
    other = sign_seal(bytes(Account.create().key), 31337, REGISTRY, certificate.digest)
    assert (
        check(SealCheck(), dataclasses.replace(certificate, seal=other)).evidence["signer"] != KEY.address
    )  # `authority` judges


# ─── anchor ─────────────────────────────────────────────────────────────────────────────


def test_anchor(certificate) -> None:
    anchored = check(AnchorCheck(), certificate, StubReader(inspection()))
    assert outcome(anchored) == ("anchor", Outcome.VALID, "ANCHORED") and anchored.evidence["block"] == 1234
    assert check(AnchorCheck(), certificate, StubReader(inspection(anchored=False))).code == "NOT_ANCHORED"
    assert (
        check(AnchorCheck(), certificate, StubReader(inspection(proof_valid=False))).code
        == "BATCH_PROOF_INVALID"
    )
    assert (
        check(AnchorCheck(), dataclasses.replace(certificate, seal=bytes(65)), StubReader(inspection())).code
        == "SEAL_INVALID"
    )
    assert outcome(check(AnchorCheck(), certificate, StubReader(inspection(), down=True))) == (
        "anchor",
        Outcome.ERROR,
        "CHAIN_UNAVAILABLE",
    )
    assert check(AnchorCheck(), certificate, None).outcome is Outcome.ERROR


# ─── authority ──────────────────────────────────────────────────────────────────────────


def test_authority(certificate) -> None:
    authorised = check(AuthorityCheck(), certificate, StubReader(inspection()))
    assert outcome(authorised) == ("authority", Outcome.VALID, "AUTHORISED")
    assert check(AuthorityCheck(), certificate, StubReader(inspection(anchored=False))).code == "NOT_ANCHORED"
    assert (
        check(AuthorityCheck(), certificate, StubReader(inspection(anchor_key_valid=False))).code
        == "ANCHOR_KEY_COMPROMISED"
    )
    assert (
        check(AuthorityCheck(), certificate, StubReader(inspection(signer_valid=False))).code
        == "SIGNER_NOT_AUTHORISED"
    )
    assert check(AuthorityCheck(), certificate, StubReader(inspection(), down=True)).outcome is Outcome.ERROR
    other_agency = check(
        AuthorityCheck(), certificate, StubReader(inspection(agency_code="91440101MA5CXXXX0X"))
    )
    assert (other_agency.code, other_agency.evidence["mismatches"]) == (
        "ISSUER_MISMATCH",
        ["issuer.code", "identifier.issuer"],
    )


def test_authority_the_type_is_the_chains(certificate) -> None:
    """Point 13: the batch was anchored as a driving licence, the certificate says business licence."""
    result = check(AuthorityCheck(), certificate, StubReader(inspection(type_code=DRIVING)))
    assert (result.outcome, result.code) == (Outcome.INVALID, "ISSUER_MISMATCH")
    assert result.evidence["mismatches"] == ["typeCode", "identifier.typeCode"]


@pytest.mark.parametrize("hidden", BOUND_PATHS)
def test_authority_refuses_a_disclosure_hiding_the_type_or_the_agency(certificate, hidden: str) -> None:
    shown = [
        p
        for p in certificate.paths()
        if p in ("holder.name", "validFrom", "validUntil", *BOUND_PATHS) and p != hidden
    ]
    result = check(AuthorityCheck(), _multiproof_of(certificate, shown), StubReader(inspection()))
    assert (result.outcome, result.code, result.evidence["missing"]) == (
        Outcome.INVALID,
        "FIELD_MISSING",
        [hidden],
    )


def named(name: str) -> Presentation:
    """A business licence named `name`, sealed and batched as an agency that skipped the issuer's
    check would make it (the issuer itself now refuses such a record)."""
    fields = build_fields(
        {"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2031-01-01"},
        type_code=LICENCE, type_name="营业执照", issuer=ISSUER, serial="C0000001", today=dt.date(2026, 11, 1),
    )  # fmt: skip
    leaves = make_leaves({**fields, "name": name}, random.Random(5).randbytes)
    digest = field_digest(leaves)
    tree = batch_tree([digest])
    seal = sign_seal(bytes(KEY.key), 31337, REGISTRY, digest)
    return batch_presentations(
        chain_id=31337, registry=REGISTRY, leaves=[leaves], digests=[digest], seals=[seal], tree=tree
    )[0]


def test_a_business_licence_named_as_a_driving_licence_is_invalid() -> None:
    """Point 13: the case of the issue, a partial disclosure of the name that hides `typeCode`, and the full package."""
    forged = named("机动车驾驶证")
    hiding_the_type = _multiproof_of(forged, ["name", "holder.name", "validFrom", "validUntil"])
    report = verify_presentation(hiding_the_type, StubReader(inspection()), clock=lambda: NOW)
    assert report.verdict is Outcome.INVALID and report.reason == "FIELD_MISSING"
    for shown in (forged, forged.disclose(["name", "holder.name", "validFrom", "validUntil"])):
        report = verify_presentation(shown, StubReader(inspection()), clock=lambda: NOW)
        assert (report.verdict, report.reason) == (Outcome.INVALID, "TYPE_NAME_MISMATCH"), report.to_json()
    assert (
        verify_presentation(named("营业执照"), StubReader(inspection()), clock=lambda: NOW).verdict
        is Outcome.VALID
    )


def test_the_issuer_refuses_a_name_that_contradicts_the_type() -> None:
    record = {"holder": {"name": "张三", "code": "11010519491231002X"}, "name": "机动车驾驶证"}
    with pytest.raises(CertificateError) as refused:
        build_fields(record, type_code=LICENCE, type_name="营业执照", issuer=ISSUER, serial="C1")
    assert (refused.value.code, refused.value.details["field"]) == ("FIELD_INVALID", "name")
    batch = build_batch(
        [record, {**record, "name": "营业执照（副本）"}], type_code=LICENCE, type_name="营业执照", issuer=ISSUER,
        signing_key=bytes(KEY.key), chain_id=31337, registry=REGISTRY,
    )  # fmt: skip
    assert [(r.position, r.code, r.field) for r in batch.rejected] == [(1, "FIELD_INVALID", "name")]
    whole_job = build_batch(
        [{"holder": record["holder"]}], type_code=LICENCE, type_name="机动车驾驶证", issuer=ISSUER,
        signing_key=bytes(KEY.key), chain_id=31337, registry=REGISTRY,
    )  # fmt: skip
    assert [r.code for r in whole_job.rejected] == ["FIELD_INVALID"]
    driving = build_fields(
        {"holder": record["holder"]}, type_code=DRIVING, type_name="机动车驾驶证", issuer=ISSUER, serial="C1"
    )
    assert driving["name"] == "机动车驾驶证"


def test_authority_says_since_when_a_bad_key_was_known(certificate) -> None:
    """Point 15: the reader says when the compromise became known; the evidence and message carry it."""
    since, known = 1_789_000_000, 1_795_000_000
    reader = StubReader(
        inspection(anchor_key_valid=False, signer_valid=False),
        compromises=(KeyCompromise(KEY.address, since, known),),
    )
    result = check(AuthorityCheck(), certificate, reader)
    assert (result.outcome, result.code) == (Outcome.INVALID, "ANCHOR_KEY_COMPROMISED")
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat()  # noqa: E731
    assert (result.evidence["compromisedSince"], result.evidence["knownSince"]) == (iso(since), iso(known))
    assert iso(known) in result.message and iso(since) in result.message


# ─── status ─────────────────────────────────────────────────────────────────────────────


def test_status(certificate) -> None:
    active = check(StatusCheck(), certificate, StubReader(inspection()))
    assert (
        outcome(active) == ("status", Outcome.VALID, "CERT_ACTIVE") and active.evidence["status"] == "active"
    )
    assert check(StatusCheck(), certificate, StubReader(inspection(anchored=False))).code == "NOT_ANCHORED"
    assert check(StatusCheck(), certificate, StubReader(inspection(), down=True)).outcome is Outcome.ERROR
    unknown = check(StatusCheck(), certificate, StubReader(inspection(status=Status.REVOKED)))
    assert (unknown.outcome, unknown.code, "reason" in unknown.evidence) == (
        Outcome.INVALID,
        "CERT_REVOKED",
        False,
    )


@pytest.mark.parametrize(
    ("status", "reason", "code", "zh", "en"),
    [
        (Status.REVOKED, 7, "CERT_REVOKED", "吊销", "revoked as a penalty"),
        (Status.REVOKED, 3, "CERT_REVOKED", "撤销", "annulled"),
        (Status.REVOKED, 4, "CERT_REVOKED", "注销", "cancelled"),
        (Status.REVOKED, 99, "CERT_REVOKED", "其他", "other reason"),
        (Status.SUSPENDED, 2, "CERT_SUSPENDED", "暂扣", "withheld"),
    ],
)  # fmt: skip
def test_status_carries_the_agencys_reason(
    certificate, status: Status, reason: int, code: str, zh: str, en: str
) -> None:
    """Point 16: the GB reason code, in the evidence and in the message, in Chinese and English."""
    since = 1_795_000_000
    result = check(
        StatusCheck(),
        certificate,
        StubReader(inspection(status=status), status_reason=reason, status_since=since),
    )
    assert (result.outcome, result.code) == (Outcome.INVALID, code)
    assert {k: result.evidence[k] for k in ("reason", "reasonZh", "reasonEn", "since")} == {
        "reason": f"{reason:02d}", "reasonZh": zh, "reasonEn": en, "since": dt.datetime.fromtimestamp(since, dt.UTC).isoformat(),
    }  # fmt: skip
    assert f"{reason:02d} {zh}" in result.message and f"{reason:02d}: {en}" in result.message


# ─── validity ───────────────────────────────────────────────────────────────────────────


def test_validity(certificate) -> None:
    in_period = check(ValidityCheck(), certificate)
    assert outcome(in_period) == ("validity", Outcome.VALID, "IN_PERIOD")
    assert in_period.evidence == {"validFrom": "2026-11-01", "validUntil": "2031-01-01", "date": "2026-11-23"}
    assert (
        check(ValidityCheck(), certificate, now=dt.datetime(2031, 1, 1, 23, 59, tzinfo=dt.UTC)).code
        == "IN_PERIOD"
    )
    assert check(ValidityCheck(), certificate, now=dt.datetime(2031, 1, 2, tzinfo=dt.UTC)).code == "EXPIRED"
    assert (
        check(ValidityCheck(), certificate, now=dt.datetime(2026, 10, 31, tzinfo=dt.UTC)).code
        == "NOT_YET_VALID"
    )
    assert check(ValidityCheck(), certificate.disclose(["validFrom"])).code == "VALIDITY_NOT_DISCLOSED"
    assert (
        check(ValidityCheck(), with_value(certificate, "validUntil", '"someday"')).code
        == "VALIDITY_MALFORMED"
    )
    permanent = issue([{"holder": {"name": "张三", "code": "11010519491231002X"}}])[0]
    result = check(ValidityCheck(), permanent, now=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    assert (result.code, result.evidence["validUntil"]) == ("IN_PERIOD", None) and "长期" in result.message


# ─── share: the bound fields come with every share ──────────────────────────────────────


def test_a_share_of_some_fields_also_shows_the_bound_ones(certificate) -> None:
    terms = ShareTerms("tok", ("holder.name",), NOW + dt.timedelta(hours=1))
    ctx = VerificationContext(certificate.disclose(["holder.name"]), None, clock=lambda: NOW, share=terms)
    assert run_guarded(ShareCheck(), ctx).code == "SHARE_OK"
