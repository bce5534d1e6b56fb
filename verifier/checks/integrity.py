"""integrity: the disclosed fields hash to the certificate digest (nothing altered)."""

from __future__ import annotations

from registry.errors import CertificateError
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class IntegrityCheck:
    kind = "integrity"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        claimed = "0x" + ctx.presentation.digest.hex()
        try:
            computed = ctx.computed_digest
        except CertificateError as exc:
            return invalid(self.kind, "CERT_TAMPERED", exc.message, digest=claimed)
        if computed != ctx.presentation.digest:
            return invalid(
                self.kind,
                "CERT_TAMPERED",
                "The fields were altered: they no longer hash to the sealed digest",
                digest=claimed,
            )
        hidden = "some fields hidden (multiproof)" if ctx.presentation.is_partial else "all fields"
        return valid(self.kind, "DIGEST_OK", f"Fields match the sealed digest ({hidden})", digest=claimed)
