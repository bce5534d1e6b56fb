"""status: the certificate is neither suspended nor revoked on chain.

A suspension or revocation carries the GB reason code the agency gave (02 暂扣, 03 撤销, 04 注销,
07 吊销, 99 其他) in the evidence (`reason`, `reasonZh`, `reasonEn`, `since`) and in the message,
in Chinese and English, when the reader knows it (the index does; one `inspect` call does not).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.contracts.certificate_registry import Status
from verifier.checks.base import CheckResult, invalid, valid
from verifier.context import ChainFacts, VerificationContext
from verifier.i18n import status_reason

_STATES = {
    Status.REVOKED: ("CERT_REVOKED", "废止", "Revoked"),
    Status.SUSPENDED: ("CERT_SUSPENDED", "暂停使用", "Suspended"),
}


class StatusCheck:
    kind = "status"

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        found = ctx.chain.inspection
        if not found.anchored:
            return invalid(self.kind, "NOT_ANCHORED", "No anchored batch to read a status from")
        evidence: dict[str, Any] = {
            "status": found.status.name.lower(),
            "block": ctx.chain.block_number,
            "source": ctx.chain.source,
        }
        if found.status in _STATES:
            code, zh, en = _STATES[found.status]
            return invalid(self.kind, code, _explain(zh, en, ctx.chain, evidence), **evidence)
        return valid(self.kind, "CERT_ACTIVE", "Active (有效)", **evidence)


def _explain(zh: str, en: str, facts: ChainFacts, evidence: dict[str, Any]) -> str:
    """`该证照已被发证机关废止（原因 07 吊销）/ Revoked by the issuing agency (reason 07: revoked as a penalty)`;
    adds the reason to `evidence`."""
    if facts.status_since is not None:
        evidence["since"] = dt.datetime.fromtimestamp(facts.status_since, dt.UTC).isoformat()
    if facts.status_reason is None:
        return f"该证照已被发证机关{zh}（原因未知）/ {en} by the issuing agency (reason not known to this reader)"
    code, words = facts.status_reason, status_reason(facts.status_reason)
    evidence.update(reason=f"{code:02d}", reasonZh=words["zh"], reasonEn=words["en"])
    return f"该证照已被发证机关{zh}（原因 {code:02d} {words['zh']}）/ {en} by the issuing agency (reason {code:02d}: {words['en']})"
