"""format: the presentation names this registry and discloses well-formed identifiers, and always
the type, identifier and issuing agency (`BOUND_PATHS`), even when other fields are hidden."""

from __future__ import annotations

from registry.certificate.presentation import BOUND_PATHS
from registry.errors import IdentifierError
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext

REQUIRED_FULL = ("identifier", "typeCode", "issuer.code", "holder.name", "validFrom", "validUntil")


class FormatCheck:
    kind = "format"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        p = ctx.presentation
        if ctx.reader is not None and (p.chain_id, p.registry.lower()) != (
            ctx.reader.chain_id,
            ctx.reader.registry.lower(),
        ):
            return invalid(
                self.kind, "REGISTRY_UNKNOWN",
                f"Issued on registry {p.registry} of chain {p.chain_id}, which this verifier does not follow",
                chain_id=p.chain_id, registry=p.registry,
            )  # fmt: skip
        paths = set(p.paths())
        if len(paths) != len(p.leaves):
            return invalid(self.kind, "FIELD_DUPLICATED", "A field is disclosed twice")
        required = BOUND_PATHS if p.is_partial else REQUIRED_FULL
        if missing := [f for f in required if f not in paths]:
            return invalid(self.kind, "FIELD_MISSING", f"Required fields missing: {missing}", missing=missing)
        if "identifier" in ctx.values:
            try:
                _ = ctx.licence_id  # parsing raises on a malformed identifier
            except IdentifierError as exc:
                return invalid(self.kind, str(exc.code), f"identifier: {exc.message}")
        return valid(self.kind, "FORMAT_OK", "Well-formed", fields=sorted(paths))
