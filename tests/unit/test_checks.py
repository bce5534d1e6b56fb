"""The policy and share checks, on a hand-made context with a stub chain reader."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace

import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from registry.certificate.model import Issuer
from registry.contracts.certificate_registry import Inspection, Status
from registry.errors import ChainUnavailable
from verifier.checks.base import Outcome, run_guarded
from verifier.checks.policy import PolicyCheck
from verifier.checks.share import ShareCheck, ShareTerms
from verifier.context import ChainFacts, VerificationContext
from verifier.pipeline import DEFAULT_CHECKS, verify_presentation
from verifier.policy import POLICY_DIR, Policy

LICENCE = "11100000000013338W001"
DRIVING = "11100000000013338W002"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
SHARED = ("holder.name", "validFrom", "validUntil", "ext.scope")


@pytest.fixture(scope="module")
def certificate():
    batch = build_batch(
        [{"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2031-01-01", "ext": {"scope": ["餐饮", "零售"]}}],
        type_code=LICENCE, type_name="营业执照", issuer=Issuer("杭州市市场监督管理局", "11330100002493028E", "330100"),
        signing_key=bytes(Account.create().key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("C"), salt_source=random.Random(9).randbytes, today=dt.date(2026, 11, 1),
    )  # fmt: skip
    return batch.presentations[0]


def inspection(**changes) -> Inspection:
    found = Inspection(
        anchored=True, proof_valid=True, signer_valid=True, anchor_key_valid=True, agency_suspended=False,
        status=Status.ACTIVE, agency_code="11330100002493028E", region=330100, type_code=LICENCE,
        anchor_key="0x" + "11" * 20, anchored_at=1_790_000_000, count=1,
    )  # fmt: skip
    return replace(found, **changes)


@dataclass
class StubReader:
    """Answers `facts` with a fixed inspection, as the registry would."""

    found: Inspection
    chain_id: int = 31337
    registry: str = REGISTRY
    down: bool = False

    def facts(self, presentation, signer: str) -> ChainFacts:
        if self.down:
            raise ChainUnavailable("node down")
        return ChainFacts(self.found, 1234, "stub")


def context(presentation, reader=None, share: ShareTerms | None = None) -> VerificationContext:
    ctx = VerificationContext(presentation, reader, clock=lambda: NOW)
    if share is not None:
        ctx.share = share  # the caller attaches the share it looked up (see verifier/checks/share.py)
    return ctx


# ─── policy ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("node", "type_code", "region", "outcome", "code"),
    [
        ("330000", LICENCE, 440100, Outcome.VALID, "POLICY_RECOGNISED"),
        ("330000", DRIVING, 650102, Outcome.VALID, "POLICY_RECOGNISED"),
        ("310000", LICENCE, 330100, Outcome.VALID, "POLICY_RECOGNISED"),
        ("310000", LICENCE, 310115, Outcome.VALID, "POLICY_RECOGNISED"),
        ("310000", LICENCE, 440100, Outcome.INVALID, "POLICY_NOT_RECOGNISED"),
        ("310000", DRIVING, 330100, Outcome.INVALID, "POLICY_NOT_RECOGNISED"),
        ("440000", LICENCE, 650102, Outcome.VALID, "POLICY_RECOGNISED"),
        ("440000", DRIVING, 440100, Outcome.INVALID, "POLICY_NOT_RECOGNISED"),
    ],
)  # fmt: skip
def test_policy_check_with_the_example_policies(certificate, node, type_code, region, outcome, code) -> None:
    check = PolicyCheck(Policy.load(POLICY_DIR / f"{node}.json"))
    result = run_guarded(
        check, context(certificate, StubReader(inspection(type_code=type_code, region=region)))
    )
    assert (result.kind, result.outcome, result.code) == ("policy", outcome, code)
    assert result.evidence == {"node": node, "typeCode": type_code, "region": f"{region:06d}"}
    if outcome is Outcome.INVALID:
        assert type_code in result.message and f"{region:06d}" in result.message


def test_policy_reads_the_chain_not_the_disclosed_fields(certificate) -> None:
    """The certificate says 330100 / business licence; the chain says 440100: the chain wins."""
    assert (
        certificate.fields()["issuer"]["region"] == "330100" and certificate.fields()["typeCode"] == LICENCE
    )
    shanghai = PolicyCheck(Policy.load(POLICY_DIR / "310000.json"))
    result = run_guarded(shanghai, context(certificate, StubReader(inspection(region=440100))))
    assert (result.outcome, result.code) == (Outcome.INVALID, "POLICY_NOT_RECOGNISED")


def test_policy_required_fields(certificate) -> None:
    strict = PolicyCheck(
        Policy.from_json(
            {
                "region": "110000",
                "recognise": [{"types": ["*"], "regions": ["*"], "requireFields": ["holder.name"]}],
            }
        )
    )
    reader = StubReader(inspection())
    assert run_guarded(strict, context(certificate, reader)).code == "POLICY_RECOGNISED"
    hidden = run_guarded(strict, context(certificate.disclose(["holder.codeMasked", "validFrom"]), reader))
    assert (hidden.outcome, hidden.code, hidden.evidence["missing"]) == (
        Outcome.INVALID,
        "POLICY_FIELDS_MISSING",
        ["holder.name"],
    )


def test_policy_without_an_anchor_or_a_chain(certificate) -> None:
    check = PolicyCheck(Policy.load(POLICY_DIR / "330000.json"))
    unanchored = run_guarded(
        check, context(certificate, StubReader(inspection(anchored=False, type_code="", region=0)))
    )
    assert (unanchored.outcome, unanchored.code) == (Outcome.INVALID, "NOT_ANCHORED")
    down = run_guarded(check, context(certificate, StubReader(inspection(), down=True)))
    assert (down.outcome, down.code) == (Outcome.ERROR, "CHAIN_UNAVAILABLE")
    offline = run_guarded(check, context(certificate, None))
    assert (offline.outcome, offline.code) == (Outcome.ERROR, "CHAIN_UNAVAILABLE")


def test_policy_in_the_pipeline(certificate) -> None:
    checks = (*DEFAULT_CHECKS, PolicyCheck(Policy.load(POLICY_DIR / "440000.json")))
    reader = StubReader(inspection(signer_valid=True))
    report = verify_presentation(certificate, reader, clock=lambda: NOW, checks=checks)
    assert report.verdict is Outcome.VALID, report.to_json()
    reader.found = inspection(type_code=DRIVING)
    report = verify_presentation(certificate, reader, clock=lambda: NOW, checks=checks)
    assert (report.verdict, report.checks[-1].code) == (Outcome.INVALID, "POLICY_NOT_RECOGNISED")


# ─── share ──────────────────────────────────────────────────────────────────────────────


def terms(**changes) -> ShareTerms:
    base = ShareTerms(
        "tok_" + "a" * 22, SHARED, NOW + dt.timedelta(hours=1), single_use=True, used=False, withdrawn=False
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def shared(certificate):
    return certificate.disclose(["holder.name", "validFrom", "validUntil", "ext.scope[0]", "ext.scope[1]"])


def test_share_ok(shared) -> None:
    result = run_guarded(ShareCheck(), context(shared, share=terms()))
    assert (result.kind, result.outcome, result.code) == ("share", Outcome.VALID, "SHARE_OK")
    assert "tok_" not in repr(result.to_json())  # the token is a bearer secret


def test_share_does_not_apply_without_a_share(shared) -> None:
    assert run_guarded(ShareCheck(), context(shared)).outcome is Outcome.SKIPPED


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"withdrawn": True}, "SHARE_WITHDRAWN"),
        ({"expires_at": NOW}, "SHARE_EXPIRED"),
        ({"expires_at": NOW - dt.timedelta(seconds=1)}, "SHARE_EXPIRED"),
        ({"used": True}, "SHARE_USED"),
        (
            {"fields": ("holder.name", "validFrom", "validUntil")},
            "SHARE_FIELDS_MISMATCH",
        ),  # ext.scope shown, not shared
        ({"fields": (*SHARED, "holder.codeMasked")}, "SHARE_FIELDS_MISMATCH"),  # shared, not shown
        ({"withdrawn": True, "used": True, "expires_at": NOW}, "SHARE_WITHDRAWN"),
    ],
)
def test_share_refusals(shared, changes, code) -> None:
    result = run_guarded(ShareCheck(), context(shared, share=terms(**changes)))
    assert (result.outcome, result.code) == (Outcome.INVALID, code)


def test_a_used_multi_use_share_is_fine(shared) -> None:
    assert (
        run_guarded(ShareCheck(), context(shared, share=terms(single_use=False, used=True))).code
        == "SHARE_OK"
    )


def test_a_full_package_behind_a_share_of_some_fields_is_a_mismatch(certificate) -> None:
    result = run_guarded(ShareCheck(), context(certificate, share=terms()))
    assert result.code == "SHARE_FIELDS_MISMATCH" and "holder.code" in result.evidence["extra"]


def test_share_terms_need_an_aware_expiry() -> None:
    with pytest.raises(ValueError):
        ShareTerms("t", SHARED, dt.datetime(2030, 1, 1))
