"""authority: the seal's key was a good key of the anchoring agency at anchor time, and that
agency, granted this type in its region, is the issuer the certificate names."""

from __future__ import annotations

from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class AuthorityCheck:
    kind = "authority"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        found = ctx.chain.inspection
        if not found.anchored:
            return invalid(self.kind, "NOT_ANCHORED", "No anchored batch to take authority from")
        evidence = {"agency": found.agency_code, "region": found.region, "typeCode": found.type_code, "key": ctx.signer}
        if not found.anchor_key_valid:
            return invalid(self.kind, "ANCHOR_KEY_COMPROMISED", "The key that anchored this batch was not valid then", **evidence)
        if not found.signer_valid:
            return invalid(self.kind, "SIGNER_NOT_AUTHORISED", "The seal's key was not a valid key of the agency at anchor time", **evidence)
        values = ctx.values
        mismatches = [
            name
            for name, on_chain in (("issuer.code", found.agency_code), ("issuer.region", str(found.region)), ("typeCode", found.type_code))
            if name in values and values[name] != on_chain
        ]
        if mismatches:
            return invalid(self.kind, "ISSUER_MISMATCH", f"Disclosed {mismatches} differ from the registry", mismatches=mismatches, **evidence)
        return valid(self.kind, "AUTHORISED", f"Issued by agency {found.agency_code} of region {found.region}", **evidence)
