"""The verdict (issue 10, point 14): `decide` alone, the fixed required kinds, and `ecert verify`
going through the same `VerificationService` as the API."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass

import pytest
import typer
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from registry.certificate.model import Issuer
from registry.contracts.certificate_registry import Inspection, Status
from verifier.checks.base import CheckResult, Outcome
from verifier.checks.policy import PolicyCheck
from verifier.checks.share import ShareCheck, ShareTerms
from verifier.checks.status import StatusCheck
from verifier.context import ChainFacts
from verifier.pipeline import (
    DEFAULT_CHECKS,
    OPTIONAL_KINDS,
    REQUIRED_KINDS,
    decide,
    required_kinds,
    verify_presentation,
)
from verifier.policy import POLICY_DIR, Policy

LICENCE = "11100000000013338W001"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
CORE = ("format", "integrity", "seal", "anchor", "authority", "status", "validity")


def result(kind: str, outcome: Outcome = Outcome.VALID) -> CheckResult:
    return CheckResult(kind, outcome, "X", "x")


def all_valid() -> list[CheckResult]:
    return [result(kind) for kind in CORE]


# ─── decide ─────────────────────────────────────────────────────────────────────────────


def test_the_required_kinds_are_the_seven_core_checks() -> None:
    assert frozenset(CORE) == REQUIRED_KINDS
    assert {check.kind for check in DEFAULT_CHECKS} == REQUIRED_KINDS | OPTIONAL_KINDS
    assert required_kinds(DEFAULT_CHECKS, shared=False) == REQUIRED_KINDS  # the national seal may be absent


def test_an_optional_kind_not_applicable_keeps_valid_but_its_invalid_or_error_counts() -> None:
    absent = result("national-seal", Outcome.SKIPPED)
    assert decide([*all_valid(), absent], required_kinds(DEFAULT_CHECKS, shared=False)) is Outcome.VALID
    for outcome in (Outcome.INVALID, Outcome.ERROR):
        assert decide([*all_valid(), result("national-seal", outcome)]) is outcome


def test_decide_valid_only_when_every_required_kind_is_valid() -> None:
    assert decide(all_valid()) is Outcome.VALID
    assert decide([*all_valid(), result("share", Outcome.SKIPPED)]) is Outcome.VALID  # not required here


@pytest.mark.parametrize(
    ("results", "required", "verdict"),
    [
        ([], REQUIRED_KINDS, Outcome.ERROR),  # no checks at all
        ([], frozenset(), Outcome.ERROR),  # nothing required is never VALID
        (all_valid(), frozenset(), Outcome.ERROR),
        (all_valid()[:-1], REQUIRED_KINDS, Outcome.ERROR),  # validity never ran
        ([*all_valid()[:-1], result("validity", Outcome.SKIPPED)], REQUIRED_KINDS, Outcome.ERROR),
        ([*all_valid(), result("status", Outcome.SKIPPED)], REQUIRED_KINDS, Outcome.ERROR),  # a VALID and a SKIPPED
        ([*all_valid(), result("anchor", Outcome.ERROR)], REQUIRED_KINDS, Outcome.ERROR),
        ([*all_valid(), result("anchor", Outcome.ERROR), result("status", Outcome.INVALID)], REQUIRED_KINDS, Outcome.INVALID),
        ([result("status", Outcome.INVALID)], REQUIRED_KINDS, Outcome.INVALID),  # a fact, even with checks missing
        (all_valid(), REQUIRED_KINDS | {"share"}, Outcome.ERROR),  # shared, but no share check
        ([*all_valid(), result("share", Outcome.SKIPPED)], REQUIRED_KINDS | {"share"}, Outcome.ERROR),
        ([*all_valid(), result("share")], REQUIRED_KINDS | {"share"}, Outcome.VALID),
        ([*all_valid(), result("policy", Outcome.ERROR)], REQUIRED_KINDS, Outcome.ERROR),  # an ERROR anywhere
    ],
)  # fmt: skip
def test_decide(results: list[CheckResult], required: frozenset[str], verdict: Outcome) -> None:
    assert decide(results, required) is verdict


def test_required_kinds_are_fixed_not_read_off_the_results() -> None:
    policy = PolicyCheck(Policy.load(POLICY_DIR / "330000.json"))
    assert required_kinds((), shared=False) == REQUIRED_KINDS
    assert required_kinds((*DEFAULT_CHECKS, ShareCheck()), shared=False) == REQUIRED_KINDS
    assert required_kinds((*DEFAULT_CHECKS, ShareCheck(), policy), shared=True) == REQUIRED_KINDS | {
        "share",
        "policy",
    }


# ─── the pipeline ───────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def certificate():
    return make_certificate()


def make_certificate():
    """A real sealed certificate of one batch (no chain: readers give its facts)."""
    batch = build_batch(
        [{"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2031-01-01"}],
        type_code=LICENCE, type_name="营业执照", issuer=Issuer("杭州市市场监督管理局", "11330100002493028E", "330100"),
        signing_key=bytes(Account.create().key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("C"), salt_source=random.Random(14).randbytes, today=dt.date(2026, 11, 1),
    )  # fmt: skip
    return batch.presentations[0]


@dataclass
class StubReader:
    chain_id: int = 31337
    registry: str = REGISTRY

    def facts(self, presentation, signer: str, at: int | None = None) -> ChainFacts:
        found = Inspection(
            anchored=True, proof_valid=True, signer_valid=True, anchor_key_valid=True, agency_suspended=False,
            status=Status.ACTIVE, agency_code="11330100002493028E", region=330100, type_code=LICENCE,
            anchor_key=signer, anchored_at=1_790_000_000, count=1,
        )  # fmt: skip
        return ChainFacts(found, 1234, "stub")


class NeverApplies(StatusCheck):
    """A status check that, through some bug, decides it has nothing to check."""

    def applies(self, ctx) -> bool:
        return False


def test_the_control_is_valid(certificate) -> None:
    assert verify_presentation(certificate, StubReader(), clock=lambda: NOW).verdict is Outcome.VALID


def test_no_checks_is_error_never_valid(certificate) -> None:
    assert (
        verify_presentation(certificate, StubReader(), clock=lambda: NOW, checks=()).verdict is Outcome.ERROR
    )


def test_a_required_check_skipped_or_left_out_is_error(certificate) -> None:
    skipped = tuple(NeverApplies() if check.kind == "status" else check for check in DEFAULT_CHECKS)
    report = verify_presentation(certificate, StubReader(), clock=lambda: NOW, checks=skipped)
    assert [c.outcome for c in report.checks if c.kind == "status"] == [Outcome.SKIPPED]
    assert report.verdict is Outcome.ERROR
    left_out = tuple(check for check in DEFAULT_CHECKS if check.kind != "validity")
    assert (
        verify_presentation(certificate, StubReader(), clock=lambda: NOW, checks=left_out).verdict
        is Outcome.ERROR
    )


def test_a_shared_presentation_needs_the_share_check(certificate) -> None:
    terms = ShareTerms("tok", tuple(certificate.paths()), NOW + dt.timedelta(hours=1))
    assert (
        verify_presentation(certificate, StubReader(), clock=lambda: NOW, share=terms).verdict
        is Outcome.ERROR
    )
    checks = (*DEFAULT_CHECKS, ShareCheck())
    assert (
        verify_presentation(certificate, StubReader(), clock=lambda: NOW, checks=checks, share=terms).verdict
        is Outcome.VALID
    )
    assert (
        verify_presentation(certificate, StubReader(), clock=lambda: NOW, checks=checks).verdict
        is Outcome.VALID
    )  # no share


# ─── `ecert verify` goes through the service ────────────────────────────────────────────


def test_ecert_verify_goes_through_the_verification_service(
    certificate, tmp_path, monkeypatch, capsys
) -> None:
    import verifier.chain_reader
    import verifier.cli
    from verifier.service import VerificationService

    calls = []
    original = VerificationService.verify

    def spy(self, presentation, **kwargs):
        calls.append(kwargs["channel"])
        return original(self, presentation, **kwargs)

    class Workspace:
        registry = object()

    monkeypatch.setattr(VerificationService, "verify", spy)
    monkeypatch.setattr(verifier.cli, "Workspace", Workspace)
    monkeypatch.setattr(verifier.chain_reader, "RegistryReader", lambda _registry: StubReader())
    package = tmp_path / "package.json"
    package.write_text(json.dumps(certificate.to_json()), encoding="utf-8")
    with pytest.raises(typer.Exit) as done:
        verifier.cli.verify(str(package), as_json=True, offline=None, trust_key=None)
    report = json.loads(capsys.readouterr().out)
    assert calls == ["cli"]
    assert (done.value.exit_code, report["verdict"]) == (0, "VALID")
    assert [c["kind"] for c in report["checks"]] == [*CORE, "national-seal", "freshness"]
    assert report["checks"][-2]["outcome"] == "SKIPPED"  # an unsealed certificate: not applicable


def test_the_local_service_has_no_receipt_or_access_log(certificate) -> None:
    from verifier.service import VerificationService, Who

    service = VerificationService.local(StubReader())
    done = service.verify(certificate, who=Who("t", ""), purpose="t", channel="cli", request_digest=b"")
    assert (done.report.verdict, done.receipt, done.http_status) == (Outcome.VALID, None, 200)
