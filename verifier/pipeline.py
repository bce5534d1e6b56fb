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
from verifier.checks.freshness import KIND as FRESHNESS
from verifier.checks.freshness import LAST_KNOWN, FreshnessCheck, last_known_age
from verifier.checks.integrity import IntegrityCheck
from verifier.checks.national_seal import NationalSealCheck
from verifier.checks.seal import SealCheck
from verifier.checks.status import StatusCheck
from verifier.checks.validity import ValidityCheck
from verifier.context import ChainReader, VerificationContext

DEFAULT_CHECKS: tuple[Check, ...] = (
    FormatCheck(), IntegrityCheck(), SealCheck(), AnchorCheck(), AuthorityCheck(), StatusCheck(), ValidityCheck(),
    NationalSealCheck(), FreshnessCheck(),
)  # fmt: skip
# The seven core questions, written out: every verification must answer each of them VALID.
REQUIRED_KINDS = frozenset({"format", "integrity", "seal", "anchor", "authority", "status", "validity"})
SHARE_KIND = "share"  # required exactly when the presentation came through a share link
# Kinds that may answer "not applicable" (SKIPPED) without failing a verdict: the national
# co-seal of an older certificate, and `freshness`, which only ever says ERROR for an answer that
# rests on last-known facts. Their INVALID and ERROR still count like any other's.
OPTIONAL_KINDS = frozenset({"national-seal", FRESHNESS})
# Kinds whose answer no chain fact changes: their INVALID stands when the chain facts are last-known.
CHAIN_FREE_KINDS = frozenset({"format", "integrity", "seal", "validity"})


@dataclass(frozen=True)
class LastKnown:
    """An answer from the index with the chain away: what the checks said, on which block, how
    old, and whether the node's policy accepted it (else the verdict is ERROR)."""

    verdict: Outcome
    block: int
    age_s: int | None
    accepted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value, "block": self.block, "ageSeconds": self.age_s,
            "accepted": self.accepted,
        }  # fmt: skip


@dataclass(frozen=True)
class Report:
    verdict: Outcome
    checks: list[CheckResult]
    checked_at: dt.datetime
    last_known: LastKnown | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in (Outcome.INVALID, Outcome.ERROR)]

    @property
    def reason(self) -> str | None:
        """The code of the first check that failed, e.g. `CERT_REVOKED`."""
        wanted = Outcome.ERROR if self.verdict is Outcome.ERROR else Outcome.INVALID
        failed = [c for c in self.checks if c.outcome is wanted] or self.failed
        return failed[0].code if failed else None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "checkedAt": self.checked_at.isoformat(),
            "checks": [c.to_json() for c in self.checks],
            **({"lastKnown": self.last_known.to_json()} if self.last_known else {}),
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
    required = required_kinds(checks, shared=share is not None)
    verdict, last_known = decide(results, required), _last_known(ctx, results, required)
    if last_known is not None and not last_known.accepted:  # even with no freshness check configured
        # ERROR, unless the certificate itself is bad (the chain can change no such answer)
        chain_free_invalid = any(r.outcome is Outcome.INVALID and r.kind in CHAIN_FREE_KINDS for r in results)
        verdict = Outcome.INVALID if chain_free_invalid else Outcome.ERROR
    return Report(verdict, results, ctx.now, last_known)


def _last_known(
    ctx: VerificationContext, results: Sequence[CheckResult], required: frozenset[str]
) -> LastKnown | None:
    """The last-known statement when the chain facts came from the index with the chain away."""
    facts = ctx.__dict__.get("chain")  # read by the checks, if they could read it
    if facts is None or facts.source != LAST_KNOWN:
        return None
    others = [r for r in results if r.kind != FRESHNESS]
    accepted = any(r.kind == FRESHNESS and r.outcome is Outcome.VALID for r in results)
    return LastKnown(decide(others, required), facts.block_number, last_known_age(facts.age_s), accepted)
