"""Status changes on chain (suspend, reinstate, revoke), mirrored in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction

from issuer.audit import SYSTEM, AuditAction, AuditLog
from issuer.models import Batch, Certificate
from issuer.service import IssuerService
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.error_codes import ErrorCode
from registry.errors import Conflict, EcertError

# GB status codes: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.
REASONS: dict[Status, frozenset[int]] = {
    Status.ACTIVE: frozenset({1, 99}),
    Status.SUSPENDED: frozenset({2, 99}),
    Status.REVOKED: frozenset({3, 4, 7, 99}),
}
REASON_SUPERSEDED = 4
# The database status a certificate must have for a change to `Status` to be legal (revocation is final).
LEGAL_FROM: dict[Status, frozenset[str]] = {
    Status.SUSPENDED: frozenset({"active"}),
    Status.ACTIVE: frozenset({"suspended"}),
    Status.REVOKED: frozenset({"active", "suspended"}),
}


def word_masks(indices: Iterable[int]) -> dict[int, int]:
    """Batch indices as 256-index words: `{word: mask}`, bit `i` of `mask` = index `word * 256 + i`
    (as `CertificateRegistry.set_status_many` groups them: one transaction a word)."""
    masks: dict[int, int] = {}
    for index in indices:
        masks[index >> 8] = masks.get(index >> 8, 0) | (1 << (index & 0xFF))
    return masks


def status_call(
    registry: CertificateRegistry, root: bytes, word: int, mask: int, status: Status, reason: int
) -> ContractFunction:
    """The unsent contract call that sets `status` for the certificates of `mask` in `word` of
    batch `root`: `revokeCertificates` for a revocation (the cheaper call, as `set_status_many`
    chooses), `setStatusBulk` otherwise. For an outbox that signs and stores before it sends."""
    functions = registry.contract.functions
    if status == Status.REVOKED:
        if not 0 <= reason <= 0xFF:
            raise ValueError(f"reason {reason} does not fit a uint8")
        return functions.revokeCertificates(root, word << 8 | reason, mask)
    return functions.setStatusBulk(root, word, mask, int(status), reason)


def check_reason(status: Status, reason: int) -> None:
    if reason not in REASONS[status]:
        allowed = ", ".join(f"{r:02d}" for r in sorted(REASONS[status]))
        raise EcertError(
            f"Reason {reason:02d} does not fit status {status.name.lower()}: use one of {allowed}",
            code=ErrorCode.REASON_INVALID, field="reason",
        )  # fmt: skip


class StatusService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        issuer: IssuerService,
        registry: CertificateRegistry,
        signer_for: Callable[[str], LocalAccount],
        audit: AuditLog | None = None,
    ) -> None:
        self._sessions = sessions
        self._audit = audit if audit is not None else AuditLog(sessions)
        self._issuer = issuer
        self._registry = registry
        self._signer_for = signer_for

    def change(
        self,
        agency_code: str,
        identifier: str,
        status: Status,
        reason: int,
        note: str | None = None,
        *,
        actor: str = SYSTEM,
    ) -> dict[str, Any]:
        """Change one certificate's status on chain, then record it; a revoked one stays revoked.

        The direct path, for an agency's systems (an API key with the `status` scope) and its
        operators (`ecert issuer status set`): staff go through the console's maker-checker.
        Each change is in the agency's audit log with `actor` (`api-key:<id>`, `cli:<user>`), so
        a change without a second person is never an unrecorded one."""
        check_reason(status, reason)
        with self._sessions() as session:
            cert = self._issuer.certificate(session, agency_code, identifier)
            batch = session.get(Batch, cert.batch_id) if cert.batch_id else None
            if batch is None or cert.batch_index is None or batch.state not in ("mined", "confirmed"):
                raise Conflict(
                    f"{identifier} is not anchored yet: try again when its job is confirmed",
                    code=ErrorCode.CERT_NOT_ANCHORED,
                )
            if cert.status == "revoked":
                raise Conflict(f"{identifier} is revoked; revocation is final", code=ErrorCode.CERT_REVOKED)
            receipt = self._registry.set_status(
                self._signer_for(agency_code), batch.root, cert.batch_index, status, reason
            )
            cert.status, cert.status_reason, cert.status_note = status.name.lower(), reason, note
            session.commit()
            self._audit.append(agency_code, actor, AuditAction.STATUS_CHANGE, identifier, {
                "status": status.name.lower(), "reason": reason, "txHash": receipt.tx_hash, "direct": True,
            })  # fmt: skip  # the note is free text, kept with the certificate, not in the log
            return {
                "identifier": identifier,
                "status": cert.status,
                "reason": reason,
                "txHash": receipt.tx_hash,
                "block": receipt.block_number,
            }

    def retire_superseded(self) -> int:
        """Revoke (04 注销) every certificate whose successor is confirmed; return how many."""
        done = 0
        with self._sessions() as session:
            pairs = session.execute(
                select(Certificate.agency_code, Certificate.previous_identifier).where(
                    Certificate.state == "confirmed", Certificate.previous_identifier.is_not(None)
                )
            ).all()
            for agency_code, previous in pairs:
                old = session.scalar(select(Certificate).where(Certificate.identifier == previous))
                old_batch = session.get(Batch, old.batch_id) if old and old.batch_id else None
                if (
                    old is None
                    or old.status == "revoked"
                    or old_batch is None
                    or old.batch_index is None
                    or old_batch.state not in ("mined", "confirmed")
                ):
                    continue
                self._registry.set_status(
                    self._signer_for(agency_code),
                    old_batch.root,
                    old.batch_index,
                    Status.REVOKED,
                    REASON_SUPERSEDED,
                )
                old.status, old.status_reason, old.status_note = "revoked", REASON_SUPERSEDED, "superseded"
                session.commit()
                done += 1
        return done
