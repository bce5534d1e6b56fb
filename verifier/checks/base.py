"""What a check is and what it answers.

Each check decides one question from facts in the context (never from another check's result):
`applies(ctx)` says whether it has anything to decide, `run(ctx)` decides. `run_guarded` turns
any surprise into ERROR, never into INVALID or VALID.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.errors import ChainError, EcertError

log = logging.getLogger(__name__)


NOT_APPLICABLE = "NOT_APPLICABLE"


class Outcome(enum.StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class CheckResult:
    kind: str
    outcome: Outcome
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outcome": self.outcome.value,
            "code": self.code,
            "message": self.message,
            "evidence": self.evidence,
        }


class Check(Protocol):
    kind: str

    def applies(self, ctx: Any) -> bool: ...

    def run(self, ctx: Any) -> CheckResult: ...


def valid(kind: str, code: str, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(kind, Outcome.VALID, code, message, evidence)


def invalid(kind: str, code: str, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(kind, Outcome.INVALID, code, message, evidence)


def run_guarded(check: Check, ctx: Any) -> CheckResult:
    """Run one check; a chain failure or any unexpected exception is ERROR with its code."""
    try:
        if not check.applies(ctx):
            return CheckResult(check.kind, Outcome.SKIPPED, NOT_APPLICABLE, "Nothing to check")
        return check.run(ctx)
    except ChainError as exc:  # a report's reason is plain text: the error's code by its value
        return CheckResult(check.kind, Outcome.ERROR, str(exc.code), exc.message)
    except EcertError as exc:
        return CheckResult(check.kind, Outcome.ERROR, str(exc.code), exc.message)
    except Exception as exc:
        log.exception("check %s failed unexpectedly", check.kind)
        return CheckResult(
            check.kind,
            Outcome.ERROR,
            "CHECK_FAILED",
            f"{check.kind} could not run ({exc.__class__.__name__})",
        )
