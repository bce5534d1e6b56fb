"""national-seal: the SM2/SM3 co-seal (GB/T 32918, GB/T 32905; docs/PROTOCOL.md §12) of the
certificate's digest, by an SM2 key the anchoring agency held, good at anchor time.

VALID when the seal's group root, recomputed from this certificate's leaf and proof, carries an
SM2 signature of one of the agency's registered SM2 keys, and that key was good when the batch
was anchored (judged with everything known now, as the secp256k1 key is). NOT_APPLICABLE (the
outcome SKIPPED, code NATIONAL_SEAL_ABSENT) when the presentation has no co-seal — an older
certificate — unless the node's policy requires one for its type and region
(`requireNationalSealFrom`), which makes it INVALID. A seal that is present is always checked:
a present but false seal is INVALID whatever the policy says.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.certificate.national_seal import check_seal
from registry.errors import ChainUnavailable
from verifier.checks.base import NOT_APPLICABLE, CheckResult, Outcome, invalid, valid
from verifier.context import VerificationContext
from verifier.policy import Policy

KIND = "national-seal"
MAX_KEYS_TRIED = 8  # each costs an SM2 verification (~1 ms); an agency has one or two


class NationalSealCheck:
    kind = KIND

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        seal = ctx.presentation.national_seal
        if seal is None and self.policy is None:
            return _absent()
        found = ctx.chain.inspection
        if not found.anchored:
            return invalid(self.kind, "NOT_ANCHORED", "No anchored batch to take the agency's SM2 keys from")
        evidence: dict[str, Any] = {"agency": found.agency_code}
        if seal is None:
            rule = self._required(found.type_code, found.region, found.anchored_at)
            if rule is not None:
                return invalid(
                    self.kind, "NATIONAL_SEAL_REQUIRED",
                    f"This node requires an SM2 national seal on this certificate ({rule}); it has none: ask the "
                    "agency for a renewed certificate", **evidence,
                )  # fmt: skip
            return CheckResult(
                self.kind, Outcome.SKIPPED, "NATIONAL_SEAL_ABSENT", "No national seal (an older certificate)"
            )
        read = getattr(ctx.reader, "national_keys", None)
        if read is None:
            raise ChainUnavailable("This reader cannot read the agencies' SM2 keys")
        keys = read(found.agency_code)[:MAX_KEYS_TRIED]
        p = ctx.presentation
        public = check_seal([k.public_key for k in keys], p.chain_id, p.registry, p.digest, seal)
        if public is None:
            return invalid(
                self.kind, "NATIONAL_SEAL_INVALID",
                f"The SM2 national seal does not verify with any of the agency's {len(keys)} SM2 key(s)", **evidence,
            )  # fmt: skip
        key = next(k for k in keys if k.public_key == public)
        evidence["key"] = "0x" + key.key_id.hex()
        if not key.is_good_at(found.anchored_at):
            return invalid(
                self.kind, "NATIONAL_KEY_NOT_VALID",
                "The SM2 key of the national seal was not good when the batch was anchored "
                f"(valid from {key.valid_from}, retired {key.retired_at or '-'}, compromised since "
                f"{key.compromised_since or '-'})", **evidence,
            )  # fmt: skip
        return valid(
            self.kind, "NATIONAL_SEAL_OK", "Co-sealed with the agency's SM2 key (SM2/SM3)", **evidence
        )

    def _required(self, type_code: str, region: int, anchored_at: int) -> str | None:
        if self.policy is None:
            return None
        return self.policy.national_seal_rule(
            type_code, region, dt.datetime.fromtimestamp(anchored_at, dt.UTC)
        )


def _absent() -> CheckResult:
    return CheckResult(
        KIND, Outcome.SKIPPED, "NATIONAL_SEAL_ABSENT", "No national seal (an older certificate)"
    )


__all__ = ["KIND", "NOT_APPLICABLE", "NationalSealCheck"]
