"""The verification pipeline: run every check, then decide the verdict apart from the checks.

VALID only if every required kind is VALID; any INVALID makes the verdict INVALID; otherwise a
check that could not run makes it ERROR (the caller answers "could not verify", never "valid").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.certificate.presentation import Presentation
from verifier.checks.anchor import AnchorCheck
from verifier.checks.authority import AuthorityCheck
from verifier.checks.base import NOT_APPLICABLE, Check, CheckResult, Outcome, run_guarded
from verifier.checks.format import FormatCheck
from verifier.checks.integrity import IntegrityCheck
from verifier.checks.seal import SealCheck
from verifier.checks.status import StatusCheck
from verifier.checks.validity import ValidityCheck
from verifier.context import ChainReader, VerificationContext

DEFAULT_CHECKS: tuple[Check, ...] = (
    FormatCheck(), IntegrityCheck(), SealCheck(), AnchorCheck(), AuthorityCheck(), StatusCheck(), ValidityCheck(),
)  # fmt: skip
REQUIRED_KINDS = frozenset(check.kind for check in DEFAULT_CHECKS)


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
    if any(r.outcome is Outcome.INVALID for r in results):
        return Outcome.INVALID
    if any(r.outcome is Outcome.ERROR for r in results):
        return Outcome.ERROR
    valid_kinds = {r.kind for r in results if r.outcome is Outcome.VALID}
    return Outcome.VALID if required <= valid_kinds else Outcome.ERROR


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
    # Every check that applies is required (a share check applies only to a shared presentation).
    required = frozenset(r.kind for r in results if r.code != NOT_APPLICABLE)
    return Report(decide(results, required), results, ctx.now)
