"""Last-known answers (issue 14 point 6): with the chain away the index answers what it last
knew; the verdict stays ERROR unless the node's policy accepts last-known answers up to a stated
age, and the answer and the receipt say which it was. The over-HTTP behaviour, chain stopped, is
in tests/api/test_verifier_api.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pytest
from test_verdict import LICENCE, NOW, REGISTRY, make_certificate

from registry.contracts.certificate_registry import Inspection, Status
from registry.errors import ConfigError
from verifier.checks.base import Outcome
from verifier.checks.freshness import FreshnessCheck
from verifier.context import ChainFacts
from verifier.pipeline import DEFAULT_CHECKS, verify_presentation
from verifier.policy import LAST_KNOWN_MAX_S, Policy
from verifier.receipts import ReceiptSigner, make_receipt, verify_receipt

ANCHORED = Inspection(
    anchored=True, proof_valid=True, signer_valid=True, anchor_key_valid=True, agency_suspended=False,
    status=Status.ACTIVE, agency_code="11330100002493028E", region=330100, type_code=LICENCE,
    anchor_key="", anchored_at=1_790_000_000, count=1,
)  # fmt: skip


@dataclass
class LastKnownReader:
    """A reader whose chain is away: it answers from its index, `age_s` old."""

    age_s: float
    status: Status = Status.ACTIVE
    source: str = "lastKnown"
    chain_id: int = 31337
    registry: str = REGISTRY

    def facts(self, presentation: Any, signer: str, at: int | None = None) -> ChainFacts:
        found = replace(ANCHORED, anchor_key=signer, status=self.status)
        return ChainFacts(found, 77, self.source, age_s=self.age_s)


@pytest.fixture(scope="module")
def certificate():
    return make_certificate()


def checks_accepting(seconds: int | None) -> tuple[Any, ...]:
    return (*(c for c in DEFAULT_CHECKS if c.kind != "freshness"), FreshnessCheck(seconds))


def codes(report: Any) -> dict[str, tuple[Outcome, str]]:
    return {c.kind: (c.outcome, c.code) for c in report.checks}


def test_a_last_known_answer_is_error_by_default_with_what_the_index_said(certificate) -> None:
    report = verify_presentation(certificate, LastKnownReader(age_s=42.7), clock=lambda: NOW)
    assert (report.verdict, report.reason) == (Outcome.ERROR, "LAST_KNOWN_REFUSED")
    assert codes(report)["freshness"] == (Outcome.ERROR, "LAST_KNOWN_REFUSED")
    assert codes(report)["anchor"][0] is Outcome.VALID  # the checks ran on the last-known facts
    assert report.to_json()["lastKnown"] == {
        "verdict": "VALID",
        "block": 77,
        "ageSeconds": 42,
        "accepted": False,
    }


@pytest.mark.parametrize(("age", "verdict"), [(0.0, Outcome.VALID), (900.0, Outcome.VALID), (900.5, Outcome.VALID),
                                             (901.0, Outcome.ERROR), (math.inf, Outcome.ERROR)])  # fmt: skip
def test_a_policy_accepts_last_known_answers_up_to_its_age(certificate, age: float, verdict: Outcome) -> None:
    report = verify_presentation(
        certificate, LastKnownReader(age_s=age), clock=lambda: NOW, checks=checks_accepting(900)
    )
    assert report.verdict is verdict
    assert report.last_known is not None and report.last_known.accepted is (verdict is Outcome.VALID)
    assert report.last_known.age_s == (None if math.isinf(age) else int(age))  # unknown age: never accepted


def test_a_last_known_revocation_is_error_unless_accepted_a_tampered_certificate_is_invalid(
    certificate,
) -> None:
    """A status the index last knew may have changed since: ERROR unless accepted. What no chain
    fact changes (a broken certificate) stays INVALID."""
    revoked = LastKnownReader(age_s=5, status=Status.REVOKED)
    refused = verify_presentation(certificate, revoked, clock=lambda: NOW)
    assert (refused.verdict, refused.reason) == (Outcome.ERROR, "LAST_KNOWN_REFUSED")
    assert refused.last_known is not None and refused.last_known.verdict is Outcome.INVALID
    accepted = verify_presentation(certificate, revoked, clock=lambda: NOW, checks=checks_accepting(60))
    assert (accepted.verdict, accepted.reason) == (Outcome.INVALID, "CERT_REVOKED")
    expired = verify_presentation(certificate, LastKnownReader(age_s=5), clock=lambda: NOW.replace(year=2032))
    assert (expired.verdict, codes(expired)["validity"][0]) == (Outcome.INVALID, Outcome.INVALID)


def test_without_a_freshness_check_a_last_known_answer_is_still_never_valid(certificate) -> None:
    checks = tuple(c for c in DEFAULT_CHECKS if c.kind != "freshness")
    report = verify_presentation(certificate, LastKnownReader(age_s=1), clock=lambda: NOW, checks=checks)
    assert (
        report.verdict is Outcome.ERROR and report.last_known is not None and not report.last_known.accepted
    )


def test_current_facts_have_no_last_known_statement(certificate) -> None:
    report = verify_presentation(certificate, LastKnownReader(age_s=0, source="index"), clock=lambda: NOW)
    assert (
        report.verdict is Outcome.VALID and report.last_known is None and "lastKnown" not in report.to_json()
    )
    assert codes(report)["freshness"] == (Outcome.VALID, "FACTS_CURRENT")


def test_the_receipt_says_the_answer_was_last_known_and_still_verifies(certificate) -> None:
    report = verify_presentation(
        certificate, LastKnownReader(age_s=30), clock=lambda: NOW, checks=checks_accepting(60)
    )
    signer = ReceiptSigner.generate()
    receipt = signer.sign(
        make_receipt(report, request_digest=b"\x01" * 32, chain_id=31337, block=77, source="lastKnown", region="330000")
    )  # fmt: skip
    assert (receipt["receipt"]["source"], receipt["receipt"]["ageSeconds"]) == ("lastKnown", 30)
    assert verify_receipt(receipt, signer.public_key())
    receipt["receipt"]["ageSeconds"] = 1  # younger than it was: the signature no longer holds
    assert not verify_receipt(receipt, signer.public_key())


@pytest.mark.parametrize("value", [-1, 1.5, "900", True, None, LAST_KNOWN_MAX_S + 1])
def test_the_policy_refuses_a_bad_last_known_age(value: Any) -> None:
    data = {"region": "330000", "recognise": [], "acceptLastKnownUpToSeconds": value}
    if value is None:  # null: the key's default, accept none
        assert Policy.from_json(data).accept_last_known_up_to_s is None
        return
    with pytest.raises(ConfigError, match="acceptLastKnownUpToSeconds"):
        Policy.from_json(data)


def test_the_policy_reads_its_last_known_age() -> None:
    policy = Policy.from_json({"region": "330000", "recognise": [], "acceptLastKnownUpToSeconds": 900})
    assert policy.accept_last_known_up_to_s == 900
