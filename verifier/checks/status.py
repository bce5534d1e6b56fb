"""status: the certificate is neither suspended nor revoked on chain."""

from __future__ import annotations

from registry.contracts.certificate_registry import Status
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class StatusCheck:
    kind = "status"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        found = ctx.chain.inspection
        if not found.anchored:
            return invalid(self.kind, "NOT_ANCHORED", "No anchored batch to read a status from")
        evidence = {"status": found.status.name.lower(), "block": ctx.chain.block_number, "source": ctx.chain.source}
        if found.status is Status.REVOKED:
            return invalid(self.kind, "CERT_REVOKED", "Revoked by the issuing agency (撤销)", **evidence)
        if found.status is Status.SUSPENDED:
            return invalid(self.kind, "CERT_SUSPENDED", "Suspended by the issuing agency (暂扣)", **evidence)
        return valid(self.kind, "CERT_ACTIVE", "Active (有效)", **evidence)
