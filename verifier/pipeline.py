"""The verification pipeline: run every check, then decide the verdict apart from the checks.

VALID only if every required kind is VALID; any INVALID makes the verdict INVALID; otherwise a
check that could not run makes it ERROR (the caller answers "could not verify", never "valid").
The required kinds are fixed (`REQUIRED_KINDS`, plus the node's own checks and, for a shared
presentation, `share`), never read off the checks that happened to run: no checks, a missing
check or a required check SKIPPED is ERROR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.certificate.presentation import Presentation
from verifier.checks.anchor import AnchorCheck
from verifier.checks.authority import AuthorityCheck
from verifier.checks.base import Check, CheckResult, Outcome, run_guarded
from verifier.checks.format import FormatCheck
from verifier.checks.integrity import IntegrityCheck
from verifier.checks.national_seal import NationalSealCheck
from verifier.checks.seal import SealCheck
from verifier.checks.status import StatusCheck
from verifier.checks.validity import ValidityCheck
from verifier.context import ChainReader, VerificationContext

DEFAULT_CHECKS: tuple[Check, ...] = (
    FormatCheck(), IntegrityCheck(), SealCheck(), AnchorCheck(), AuthorityCheck(), StatusCheck(), ValidityCheck(),
    NationalSealCheck(),
)  # fmt: skip
# The seven core questions, written out: every verification must answer each of them VALID.
REQUIRED_KINDS = frozenset({"format", "integrity", "seal", "anchor", "authority", "status", "validity"})
SHARE_KIND = "share"  # required exactly when the presentation came through a share link
# Kinds that may answer "not applicable" (SKIPPED) without failing a verdict: the national
# co-seal of an older certificate. Their INVALID and ERROR still count like any other's.
OPTIONAL_KINDS = frozenset({"national-seal"})


@dataclass(frozen=True)
class Report:
    verdict: Outcome
    checks: list[CheckResult]
    checked_at: dt.datetime

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in (Outcome.INVALID, Outcome.ERROR)]

    @property
    def reason(self) -> str | None:
        """The code of the first check that failed, e.g. `CERT_REVOKED`."""
        invalid = [c for c in self.checks if c.outcome is Outcome.INVALID]
        failed = invalid or self.failed
        return failed[0].code if failed else None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "checkedAt": self.checked_at.isoformat(),
            "checks": [c.to_json() for c in self.checks],
        }


def decide(results: Sequence[CheckResult], required: frozenset[str] = REQUIRED_KINDS) -> Outcome:
    """INVALID if any check is INVALID; else VALID only if every required kind answered, and
    answered VALID every time; anything else (ERROR, a required kind SKIPPED or absent, nothing
    required at all) is ERROR."""
    if any(r.outcome is Outcome.INVALID for r in results):
        return Outcome.INVALID
    if any(r.outcome is Outcome.ERROR for r in results) or not required:
        return Outcome.ERROR
    valid_kinds = {r.kind for r in results if r.outcome is Outcome.VALID}
    unsettled = {r.kind for r in results if r.outcome is not Outcome.VALID}
    return Outcome.VALID if required <= valid_kinds and not (required & unsettled) else Outcome.ERROR


def required_kinds(checks: Sequence[Check], *, shared: bool) -> frozenset[str]:
    """What a verification must answer VALID: the core kinds, every other check the node
    configured (its policy), and `share` when the presentation came through a share link."""
    configured = {
        check.kind for check in checks if check.kind != SHARE_KIND and check.kind not in OPTIONAL_KINDS
    }
    return REQUIRED_KINDS | configured | ({SHARE_KIND} if shared else set())


def verify_presentation(
    presentation: Presentation,
    reader: ChainReader | None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    checks: Sequence[Check] = DEFAULT_CHECKS,
    at: dt.datetime | None = None,
    share: object = None,
) -> Report:
    ctx = VerificationContext(presentation, reader, **({"clock": clock} if clock else {}), at=at, share=share)
    results = [run_guarded(check, ctx) for check in checks]
    return Report(decide(results, required_kinds(checks, shared=share is not None)), results, ctx.now)
