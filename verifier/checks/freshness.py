"""freshness: the chain facts are current, or the node's policy accepts them last-known.

With the chain unreachable, a node with an index still knows what the chain said when it last
read it (`verifier.readers.IndexReader`, source `lastKnown`). Such an answer is not a current
one: this check makes the verdict ERROR (code LAST_KNOWN_REFUSED) unless the node's policy
accepts last-known answers up to a stated age (`acceptLastKnownUpToSeconds`), when it is VALID
with code LAST_KNOWN_ACCEPTED. Either way the other checks run on the last-known facts, and the
answer carries `lastKnown` (verdict, block, age) so the asker sees what the index would say and
on what it rests.

Facts read from the chain, a fresh index or an offline snapshot are VALID here: a snapshot's own
age is the offline verifier's to judge (`ecert trust snapshot`).
"""

from __future__ import annotations

import math

from verifier.checks.base import CheckResult, Outcome, valid
from verifier.context import VerificationContext

KIND = "freshness"
LAST_KNOWN = "lastKnown"  # `ChainFacts.source` of an answer from the index with the chain away
SNAPSHOT = "snapshot"  # `ChainFacts.source` offline (`verifier.offline`)


class FreshnessCheck:
    kind = KIND

    def __init__(self, accept_up_to_s: int | None = None) -> None:
        self.accept_up_to_s = accept_up_to_s

    def applies(self, ctx: VerificationContext) -> bool:
        return True

    def run(self, ctx: VerificationContext) -> CheckResult:
        facts = ctx.chain
        if facts.source == SNAPSHOT:  # its block and age are the offline report's
            return valid(
                self.kind, "FACTS_CURRENT", "链上数据取自可信快照（见其区块与时间）/ Chain facts from the trust snapshot "
                "(see its block and age)", source=facts.source,
            )  # fmt: skip
        if facts.source != LAST_KNOWN:
            return valid(
                self.kind, "FACTS_CURRENT", f"链上数据为当前数据（{facts.source}）/ Chain facts read now ({facts.source})",
                source=facts.source,
            )  # fmt: skip
        age = last_known_age(facts.age_s)
        evidence = {"source": facts.source, "block": facts.block_number, "ageSeconds": age}
        limit, block = self.accept_up_to_s, facts.block_number
        age_zh, age_en = ("时间不明", "of unknown age") if age is None else (f"{age} 秒前", f"{age} s old")
        if limit is not None and age is not None and age <= limit:
            return valid(
                self.kind, "LAST_KNOWN_ACCEPTED",
                f"区块链暂不可达，本结果依据本节点索引最后已知的数据（区块 {block}，{age_zh}），本节点策略接受 {limit} 秒内的此类结果"
                f" / The chain cannot be read; this answer rests on the index's last-known facts (block {block}, "
                f"{age_en}), which this node's policy accepts up to {limit} s",
                acceptUpToSeconds=limit, **evidence,
            )  # fmt: skip
        accepts_zh = "不接受此类结果" if limit is None else f"只接受 {limit} 秒内的此类结果"
        accepts_en = "accepts none" if limit is None else f"accepts them up to {limit} s"
        return CheckResult(
            self.kind, Outcome.ERROR, "LAST_KNOWN_REFUSED",
            f"区块链暂不可达，本节点索引最后已知的数据（区块 {block}，{age_zh}）不是当前数据，本节点策略{accepts_zh}：请待区块链恢复后重试"
            f" / The chain cannot be read; the index's last-known answer (block {block}, {age_en}) is not a "
            f"current one and this node's policy {accepts_en} (acceptLastKnownUpToSeconds): try again when the "
            "chain is back",
            evidence,
        )  # fmt: skip


def last_known_age(age_s: float | None) -> int | None:
    """Whole seconds, or None when the index never knew when it was current."""
    return int(age_s) if age_s is not None and math.isfinite(age_s) else None
