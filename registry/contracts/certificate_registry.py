"""Typed binding of the certificate registry: anchoring, status and the verifier's one-call view."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from registry.chain.client import Receipt
from registry.contracts.trust_registry import TrustRegistry, from_bytes32, to_bytes32

# Gas limits measured on anvil (cancun) with headroom; passing them skips estimation (a round trip).
ANCHOR_GAS = 120_000
STATUS_GAS = 120_000


class Status(enum.IntEnum):
    """A certificate's status on chain (revoked is final)."""

    ACTIVE = 0
    SUSPENDED = 1
    REVOKED = 2


@dataclass(frozen=True)
class Inspection:
    """The answer of `inspect`: everything a verifier needs from the chain, in one call."""

    anchored: bool
    proof_valid: bool
    signer_valid: bool
    anchor_key_valid: bool
    agency_suspended: bool
    status: Status
    agency_code: str
    region: int
    type_code: str
    anchor_key: str
    anchored_at: int
    count: int

    @classmethod
    def from_raw(cls, raw: Any) -> Inspection:
        (
            anchored,
            proof_valid,
            signer_valid,
            anchor_key_valid,
            suspended,
            status,
            agency,
            region,
            type_code,
            key,
            at,
            count,
        ) = raw
        return cls(
            anchored, proof_valid, signer_valid, anchor_key_valid, suspended, Status(status),
            from_bytes32(agency) if anchored else "", region, from_bytes32(type_code) if anchored else "",
            key, at, count,
        )  # fmt: skip


@dataclass(frozen=True)
class AnchoredAuditHead:
    """One `AuditHeadAnchored` event: an agency's audit log head, as the chain holds it."""

    agency_code: str
    key: str
    head: bytes
    count: int
    anchored_at: int
    tx_hash: str
    block_number: int


class CertificateRegistry(TrustRegistry):
    """The deployed registry: the trust registry's calls plus batches and status."""

    def anchor(
        self,
        agency_key: LocalAccount,
        root: bytes,
        count: int,
        type_code: str,
        *,
        gas: int | None = ANCHOR_GAS,
    ) -> Receipt:
        return self._send(agency_key, "anchor", root, count, to_bytes32(type_code), gas=gas)

    def set_status(
        self, actor: LocalAccount, root: bytes, index: int, status: Status, reason: int
    ) -> Receipt:
        return self._send(actor, "setStatus", root, index, int(status), reason)

    def set_status_bulk(
        self,
        actor: LocalAccount,
        root: bytes,
        word: int,
        mask: int,
        status: Status,
        reason: int,
        *,
        gas: int | None = None,
    ) -> Receipt:
        return self._send(actor, "setStatusBulk", root, word, mask, int(status), reason, gas=gas)

    def revoke_certificates(
        self, actor: LocalAccount, root: bytes, word: int, mask: int, reason: int, *, gas: int | None = None
    ) -> Receipt:
        """Revoke up to 256 certificates of batch `root` at once (bit `i` of `mask`: index `word * 256 + i`).

        As `set_status_bulk(..., Status.REVOKED, reason)` for ~2,200 gas less; the contract takes
        `word` and `reason` as one argument, `word << 8 | reason`, and emits `CertificatesRevoked`.
        """
        if not 0 <= reason <= 0xFF:
            raise ValueError(f"reason {reason} does not fit a uint8")
        if not 0 <= word < 1 << 248:
            raise ValueError(f"word {word} is out of range")
        return self._send(actor, "revokeCertificates", root, word << 8 | reason, mask, gas=gas)

    def set_status_many(
        self, actor: LocalAccount, root: bytes, indices: list[int], status: Status, reason: int
    ) -> list[Receipt]:
        """Change many certificates of one batch: one transaction per 256-index word touched
        (`revokeCertificates` for a revocation, the cheaper call)."""
        masks: dict[int, int] = {}
        for index in indices:
            masks[index >> 8] = masks.get(index >> 8, 0) | (1 << (index & 0xFF))
        if status == Status.REVOKED:
            return [
                self.revoke_certificates(actor, root, word, mask, reason)
                for word, mask in sorted(masks.items())
            ]
        return [
            self.set_status_bulk(actor, root, word, mask, status, reason)
            for word, mask in sorted(masks.items())
        ]

    def revoke_batch(self, actor: LocalAccount, root: bytes, reason: int) -> Receipt:
        return self._send(actor, "revokeBatch", root, reason)

    def anchor_audit_head(self, agency_key: LocalAccount, head: bytes, count: int) -> Receipt:
        """Anchor the head of the key's agency's staff audit log: `head` is the hash of entry
        number `count` (emits `AuditHeadAnchored`; nothing is stored on chain)."""
        return self._send(agency_key, "anchorAuditHead", head, count)

    def audit_heads(self, agency_code: str, *, from_block: int = 0) -> list[AnchoredAuditHead]:
        """Every audit log head `agency_code` anchored, oldest first (read from the chain's logs,
        so a database that lost or rewrote its record of them cannot hide one)."""
        event = self.contract.events.AuditHeadAnchored()
        logs = self.client.guard(
            lambda: event.get_logs(
                from_block=from_block, argument_filters={"agency": to_bytes32(agency_code)}
            )
        )
        return [
            AnchoredAuditHead(
                from_bytes32(log["args"]["agency"]),
                log["args"]["key"],
                bytes(log["args"]["head"]),
                log["args"]["count"],
                log["args"]["anchoredAt"],
                "0x" + bytes(log["transactionHash"]).hex(),
                log["blockNumber"],
            )
            for log in sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
        ]

    def status_of(self, root: bytes, index: int) -> Status:
        return Status(self._view("statusOf", root, index))

    def inspect(self, root: bytes, index: int, digest: bytes, proof: list[bytes], signer: str) -> Inspection:
        return Inspection.from_raw(self._view("inspect", root, index, digest, proof, signer))
