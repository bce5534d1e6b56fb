"""seal: the EIP-712 seal over the digest recovers a signer (whose standing `authority` judges)."""

from __future__ import annotations

from registry.errors import CertificateError
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class SealCheck:
    kind = "seal"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        try:
            signer = ctx.signer
        except CertificateError as exc:
            return invalid(self.kind, "SEAL_INVALID", exc.message)
        return valid(self.kind, "SEAL_OK", f"Sealed by key {signer}", signer=signer)
