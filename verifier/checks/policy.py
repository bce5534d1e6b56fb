"""policy: this node recognises the certificate's type from its issuer's region (跨省互认).

The type and region are the chain's (the anchored batch's type code, the anchoring agency's
region), not the disclosed fields, which the holder controls.
"""

from __future__ import annotations

from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext
from verifier.policy import Policy


class PolicyCheck:
    kind = "policy"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        found = ctx.chain.inspection
        if not found.anchored:
            return invalid(self.kind, "NOT_ANCHORED", "No anchored batch to take the type and region from")
        evidence = {"node": self.policy.region, "typeCode": found.type_code, "region": f"{found.region:06d}"}
        allowed, reason = self.policy.allows(found.type_code, found.region)
        if not allowed:
            return invalid(self.kind, "POLICY_NOT_RECOGNISED", reason, **evidence)
        missing = self.policy.missing_fields(found.type_code, found.region, ctx.presentation.paths())
        if missing:
            return invalid(
                self.kind,
                "POLICY_FIELDS_MISSING",
                f"This node requires {missing} to be disclosed",
                missing=missing,
                **evidence,
            )
        return valid(self.kind, "POLICY_RECOGNISED", reason, **evidence)
