"""authority: the seal's key was a good key of the anchoring agency at anchor time, and that
agency, granted this type in its region, is the issuer the certificate names.

The type, identifier and issuing agency (`BOUND_PATHS`) must be disclosed and agree with the
anchored batch (its type code and agency), the identifier's own type and agency parts included;
a disclosed name must not be another type's (a business licence named 机动车驾驶证).

A key is judged with everything known now: a compromise declared after the anchor (or after the
moment asked about) still counts, and the evidence says since when it was known.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.certificate.presentation import BOUND_PATHS
from registry.certificate.types import name_contradiction
from registry.errors import IdentifierError
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
        evidence = {
            "agency": found.agency_code,
            "region": found.region,
            "typeCode": found.type_code,
            "key": ctx.signer,
        }
        if not found.anchor_key_valid:
            return invalid(
                self.kind, "ANCHOR_KEY_COMPROMISED", "The key that anchored this batch was not valid then" + _known(ctx, found.anchor_key, evidence),
                **evidence,
            )  # fmt: skip
        if not found.signer_valid:
            return invalid(
                self.kind, "SIGNER_NOT_AUTHORISED",
                "The seal's key was not a valid key of the agency at anchor time" + _known(ctx, ctx.signer, evidence), **evidence,
            )  # fmt: skip
        values = ctx.values
        if missing := [path for path in BOUND_PATHS if path not in values]:
            return invalid(
                self.kind,
                "FIELD_MISSING",
                f"{missing} must be disclosed to check the issuer and type",
                missing=missing,
                **evidence,
            )
        mismatches = [
            name
            for name, on_chain in (
                ("issuer.code", found.agency_code),
                ("issuer.region", str(found.region)),
                ("typeCode", found.type_code),
            )
            if name in values and values[name] != on_chain
        ]
        try:
            licence_id = ctx.licence_id
            mismatches += [name for name, part, on_chain in (
                ("identifier.typeCode", licence_id.type_code, found.type_code), ("identifier.issuer", licence_id.issuer, found.agency_code),
            ) if part != on_chain]  # fmt: skip
        except IdentifierError:
            mismatches.append("identifier")
        if mismatches:
            return invalid(
                self.kind,
                "ISSUER_MISMATCH",
                f"Disclosed {mismatches} differ from the registry",
                mismatches=mismatches,
                **evidence,
            )
        if (
            "name" in values
            and (contradiction := name_contradiction(found.type_code, values["name"])) is not None
        ):
            return invalid(
                self.kind,
                "TYPE_NAME_MISMATCH",
                f"The certificate's name contradicts its type: {contradiction}",
                **evidence,
            )
        return valid(
            self.kind,
            "AUTHORISED",
            f"Issued by agency {found.agency_code} of region {found.region}",
            **evidence,
        )


def _iso(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat()


def _known(ctx: VerificationContext, key: str, evidence: dict[str, Any]) -> str:
    """Since when `key` has been known to be bad (the reader says, where it can): added to the
    evidence as `compromisedSince` and `knownSince`, and returned as the message's tail."""
    found = next((c for c in ctx.chain.compromises if c.key.lower() == key.lower()), None)
    if found is None:
        return ""
    evidence["knownSince"] = _iso(found.known_at)
    if found.compromised_since:
        evidence["compromisedSince"] = _iso(found.compromised_since)
        return f": key {key} declared compromised since {_iso(found.compromised_since)}, known since {_iso(found.known_at)}"
    return f": key {key} known not to be good then since {_iso(found.known_at)}"
