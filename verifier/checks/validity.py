"""validity: today is inside the certificate's validity period (validUntil null = 长期). Both
dates must be disclosed: a hidden validUntil could otherwise pass a dated certificate as 长期."""

from __future__ import annotations

from registry.certificate.model import validity_window
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class ValidityCheck:
    kind = "validity"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        if "validFrom" not in ctx.values or "validUntil" not in ctx.values:
            return invalid(
                self.kind,
                "VALIDITY_NOT_DISCLOSED",
                "validFrom and validUntil must be disclosed to check the validity period",
            )
        try:
            valid_from, valid_until = validity_window(ctx.values)
        except (TypeError, ValueError):
            return invalid(self.kind, "VALIDITY_MALFORMED", "validFrom/validUntil are not dates")
        today = ctx.now.date()
        evidence = {
            "validFrom": str(valid_from),
            "validUntil": str(valid_until) if valid_until else None,
            "date": str(today),
        }
        if valid_from is None or today < valid_from:
            return invalid(self.kind, "NOT_YET_VALID", f"Valid only from {valid_from}", **evidence)
        if valid_until is not None and today > valid_until:
            return invalid(self.kind, "EXPIRED", f"Expired on {valid_until}", **evidence)
        return valid(
            self.kind,
            "IN_PERIOD",
            "Within its validity period" + ("" if valid_until else " (长期)"),
            **evidence,
        )
