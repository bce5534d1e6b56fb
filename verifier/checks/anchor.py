"""anchor: the batch root is on chain and the batch proof places this digest at its index."""

from __future__ import annotations

from registry.errors import CertificateError
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import VerificationContext


class AnchorCheck:
    kind = "anchor"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        try:
            _ = ctx.signer  # resolving the signer raises when the seal does not recover
        except CertificateError as exc:
            return invalid(
                self.kind, "SEAL_INVALID", f"Cannot ask the chain without a valid seal: {exc.message}"
            )
        facts = ctx.chain
        found = facts.inspection
        root = "0x" + ctx.presentation.batch_root.hex()
        if not found.anchored:  # the chain's answer: where it came from goes into the receipt
            return invalid(
                self.kind, "NOT_ANCHORED", f"Batch {root} is not anchored on this registry",
                root=root, block=facts.block_number, source=facts.source,
            )  # fmt: skip
        evidence = {
            "root": root, "index": ctx.presentation.batch_index, "anchoredAt": found.anchored_at,
            "block": facts.block_number, "source": facts.source,
        }  # fmt: skip
        if not found.proof_valid:
            return invalid(
                self.kind,
                "BATCH_PROOF_INVALID",
                "The certificate is not in the anchored batch at that index",
                **evidence,
            )
        return valid(self.kind, "ANCHORED", f"Anchored in batch {root[:10]}… of {found.count}", **evidence)
