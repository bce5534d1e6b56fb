"""Verify, sign a receipt, log the access: the one path every channel (API, share link, QR
upload, CLI) goes through, so every verification is logged and every answer is receipted.
`ecert verify` runs it too (`VerificationService.local`): the same checks and verdict, with no
node key to sign a receipt and no access log to write."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.certificate.presentation import Presentation
from verifier.access_log import ANONYMOUS, Access, AccessRecorder, StoredReceipt
from verifier.checks.base import Check, Outcome
from verifier.context import ChainReader
from verifier.metrics import count_verification
from verifier.pipeline import DEFAULT_CHECKS, Report, verify_presentation
from verifier.receipts import ReceiptSigner, digest_disclosed, disclosed_values, make_receipt, receipt_id
from verifier.remote import RemoteShare

__all__ = ["ANONYMOUS", "Verification", "VerificationService", "Visitor", "Who", "digest_of", "ip_prefix"]
USER_AGENT_MAX = 300


@dataclass(frozen=True)
class Who:
    """Who asked, as the access log and the holder see it."""

    name: str
    region: str
    staff: str | None = None  # the signed-in front-desk clerk of the organisation, by name and username
    organisation_id: int | None = None  # an organisation registered here: its receipts are kept for it
    staff_id: int | None = None  # that clerk's id (`staff.id`): whose receipts and history they are


@dataclass(frozen=True)
class Visitor:
    """An anonymous link visitor as the access log keeps them: the purpose they typed (their
    claim, which no organisation answers for), their network and their browser."""

    claimed_purpose: str | None
    ip_prefix: str | None
    user_agent: str | None

    @classmethod
    def of(cls, host: str | None, user_agent: str | None, claimed_purpose: str | None) -> Visitor:
        return cls(
            (claimed_purpose or "").strip() or None,
            ip_prefix(host),
            (user_agent or "")[:USER_AGENT_MAX] or None,
        )


def ip_prefix(host: str | None) -> str | None:
    """An address's network, enough to tell visitors apart and not to name one: IPv4 /24, IPv6 /48."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


@dataclass(frozen=True)
class Verification:
    report: Report
    receipt: dict[str, Any] | None  # None only from a local service (`ecert verify`), which has no node key
    source: str | None
    block: int | None
    disclosed: dict[str, Any] | None = None  # the values the receipt covers, with their salt
    receipt_id: str | None = None

    @property
    def http_status(self) -> int:
        """200 for a decided answer (valid or not); 503 when a check could not run."""
        return 503 if self.report.verdict is Outcome.ERROR else 200

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(), "source": self.source, "block": self.block, "disclosed": self.disclosed,
            "receipt": self.receipt, "receiptId": self.receipt_id,
        }  # fmt: skip


class VerificationService:
    def __init__(
        self,
        reader: ChainReader | None,
        *,
        checks: Sequence[Check],
        receipts: ReceiptSigner | None,
        access_log: AccessRecorder | None,
        region: str,
        chain_id: int | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.reader = reader
        self._checks = tuple(checks)
        self.receipts = receipts
        self._log = access_log
        self.region = region
        self.chain_id = chain_id
        self._clock = clock

    @classmethod
    def local(
        cls, reader: ChainReader | None, *, checks: Sequence[Check] = DEFAULT_CHECKS
    ) -> VerificationService:
        """The service as `ecert verify` runs it: no receipt key, no access log, no node policy."""
        return cls(
            reader,
            checks=checks,
            receipts=None,
            access_log=None,
            region="",
            chain_id=getattr(reader, "chain_id", None),
        )

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
        visitor: Visitor | None = None,
        remote: RemoteShare | None = None,
    ) -> Verification:
        """Verify `presentation`, sign a receipt and log the access; a share fetched from another
        region's node (`remote`) is logged here and owed to that node's log (`verifier.outbox`)."""
        report = verify_presentation(
            presentation, self.reader, clock=self._clock, checks=self._checks, at=at, share=share
        )
        count_verification(report.verdict.value, channel)  # `ecert_verifier_verifications_total`
        facts = next((c.evidence for c in report.checks if c.kind == "anchor" and "block" in c.evidence), {})
        source, block = facts.get("source"), facts.get("block")
        if self.receipts is None:
            return Verification(report, None, source, block)
        disclosed = disclosed_values(presentation)
        receipt = self.receipts.sign(
            make_receipt(
                report, request_digest=request_digest, chain_id=self.chain_id, block=block,
                source=source or "offline", region=self.region, disclosed_digest=digest_disclosed(disclosed),
            )
        )  # fmt: skip
        answer = Verification(report, receipt, source, block, disclosed, receipt_id(receipt))
        if self._log is None:
            return answer
        kept = (
            None
            if who.organisation_id is None
            else StoredReceipt(answer.receipt_id or "", who.organisation_id, who.staff_id, receipt, disclosed)
        )
        self._log.record(
            Access(
                at=report.checked_at,
                organisation=who.name,
                organisation_region=who.region,
                purpose=purpose,
                digest="0x" + presentation.digest.hex(),
                identifier=_identifier(presentation),
                share_id=getattr(share, "token_id", None),
                fields=presentation.paths(),
                verdict=report.verdict.value,
                reason=report.reason,
                channel=channel,
                claimed_purpose=visitor.claimed_purpose if visitor else None,
                ip_prefix=visitor.ip_prefix if visitor else None,
                user_agent=visitor.user_agent if visitor else None,
                event_id=uuid.uuid4().hex if remote else None,
                origin=remote.origin if remote else None,
                share_token_hash=remote.token_hash if remote else None,
                staff=who.staff,
                batch_root="0x" + presentation.batch_root.hex(),
                batch_index=_batch_index(presentation),
                receipt=kept,
            )
        )
        return answer


IDENTIFIER_MAX = 120  # the access log's column: a licence identifier is under 90 characters
INDEX_MAX = 2**31 - 1  # the column's integer; a real batch holds far fewer certificates


def _identifier(presentation: Presentation) -> str | None:
    """The disclosed identifier as the log keeps it: one longer than any licence identifier
    (anyone can send such a package, even in an anonymous EC1 code) is not kept."""
    for leaf in presentation.leaves:
        if leaf.path == "identifier":
            text = leaf.value.strip('"')
            return text if len(text) <= IDENTIFIER_MAX else None
    return None


def _batch_index(presentation: Presentation) -> int | None:
    """The batch index as the log keeps it: one no batch could hold is not kept."""
    index = presentation.batch_index
    return index if 0 <= index <= INDEX_MAX else None


def digest_of(*parts: bytes | str) -> bytes:
    """SHA-256 over the request's parts: what the receipt commits to."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.digest()
