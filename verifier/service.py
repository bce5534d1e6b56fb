"""Verify, sign a receipt, log the access: the one path every channel (API, share link, QR
upload, CLI) goes through, so every verification is logged and every answer is receipted."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.certificate.presentation import Presentation
from verifier.access_log import Access, AccessRecorder
from verifier.checks.base import Check, Outcome
from verifier.context import ChainReader
from verifier.pipeline import Report, verify_presentation
from verifier.receipts import ReceiptSigner, make_receipt

ANONYMOUS = "公开链接访问者 / link visitor"


@dataclass(frozen=True)
class Who:
    """Who asked, as the access log and the holder see it."""

    name: str
    region: str


@dataclass(frozen=True)
class Verification:
    report: Report
    receipt: dict[str, Any]
    source: str | None
    block: int | None

    @property
    def http_status(self) -> int:
        """200 for a decided answer (valid or not); 503 when a check could not run."""
        return 503 if self.report.verdict is Outcome.ERROR else 200

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "source": self.source, "block": self.block, "receipt": self.receipt}


class VerificationService:
    def __init__(
        self,
        reader: ChainReader | None,
        *,
        checks: Sequence[Check],
        receipts: ReceiptSigner,
        access_log: AccessRecorder,
        region: str,
        chain_id: int,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.reader = reader
        self._checks = tuple(checks)
        self.receipts = receipts
        self._log = access_log
        self.region = region
        self.chain_id = chain_id
        self._clock = clock

    def verify(
        self,
        presentation: Presentation,
        *,
        who: Who,
        purpose: str,
        channel: str,
        request_digest: bytes,
        share: Any = None,
        at: dt.datetime | None = None,
    ) -> Verification:
        report = verify_presentation(presentation, self.reader, clock=self._clock, checks=self._checks, at=at, share=share)
        facts = next((c.evidence for c in report.checks if c.kind == "anchor" and "block" in c.evidence), {})
        source, block = facts.get("source"), facts.get("block")
        receipt = self.receipts.sign(
            make_receipt(
                report, request_digest=request_digest, chain_id=self.chain_id, block=block,
                source=source or "offline", region=self.region,
            )  # fmt: skip
        )
        self._log.record(
            Access(
                at=report.checked_at, organisation=who.name, organisation_region=who.region, purpose=purpose,
                digest="0x" + presentation.digest.hex(), identifier=_identifier(presentation),
                share_id=getattr(share, "token_id", None), fields=presentation.paths(), verdict=report.verdict.value,
                reason=report.reason, channel=channel,
            )  # fmt: skip
        )
        return Verification(report, receipt, source, block)


def _identifier(presentation: Presentation) -> str | None:
    for leaf in presentation.leaves:
        if leaf.path == "identifier":
            return leaf.value.strip('"')
    return None


def digest_of(*parts: bytes | str) -> bytes:
    """SHA-256 over the request's parts: what the receipt commits to."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.digest()
