"""National co-seals stored once per group (`NationalSealGroup`): a group's members are the
certificates naming it, in id order, which is the order they were sealed in (intake inserts a
chunk's certificates in the order it co-sealed them; a re-seal goes by id). A certificate's
`NationalSeal` (the signature and its inclusion proof) is rebuilt from its group's digests when
its package is made: one indexed read of ≤ 64 digests and ~130 SM3 hashes, kept per group."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from issuer.models import Batch, Certificate, NationalSealGroup
from registry.certificate.national_seal import NationalSeal, group_proofs, seal_group_signature
from registry.error_codes import ErrorCode
from registry.errors import Conflict

__all__ = ["GroupSeals", "reseal_stale", "store_seal_groups"]

ANCHORED = ("mined", "confirmed")  # batch states whose anchor time is past: their co-seals stay


def store_seal_groups(
    session: Session, signatures: Sequence[bytes | None], key_id: bytes | None
) -> list[int | None]:
    """Insert one group row per run of equal signatures (a chunk's certificates in order, each with
    its group's signature or None) and give each certificate its group's id."""
    runs: list[bytes] = []
    for signature in signatures:
        if signature is not None and (not runs or runs[-1] != signature):
            runs.append(signature)
    if not runs:
        return [None] * len(signatures)
    if key_id is None:
        raise ValueError("co-sealed certificates need their SM2 key's id")
    ids = session.scalars(
        insert(NationalSealGroup).returning(NationalSealGroup.id, sort_by_parameter_order=True),
        [{"key_id": key_id, "signature": signature} for signature in runs],
    ).all()
    by_signature = dict(zip(runs, ids, strict=True))
    return [None if signature is None else by_signature[signature] for signature in signatures]


class GroupSeals:
    """Each certificate's co-seal from its group (a few hundred groups' proofs kept: a job's
    packages are made in a row, 64 to a group)."""

    def __init__(self, chain_id: int, registry: str, keep: int = 256) -> None:
        self._chain_id, self._registry, self._keep = chain_id, registry, keep
        self._groups: OrderedDict[int, tuple[bytes, dict[int, tuple[bytes, ...]]]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, session: Session, cert: Certificate) -> NationalSeal | None:
        for _ in range(2):
            if cert.national_seal is not None:  # co-sealed before migration 0012, or frozen by a re-seal
                return NationalSeal.from_bytes(cert.national_seal)
            if cert.national_group_id is None:
                return None
            found = self._group(session, cert.national_group_id)
            if found is not None and cert.id in found[1]:
                return NationalSeal(found[0], found[1][cert.id])
            # co-sealed again since the row was read: the group went whole, the row names its new one
            session.refresh(cert, ["national_group_id", "national_seal"])
        raise Conflict(
            f"{cert.identifier} is being co-sealed again: try again shortly", code=ErrorCode.CERT_NOT_READY
        )

    def _group(self, session: Session, group_id: int) -> tuple[bytes, dict[int, tuple[bytes, ...]]] | None:
        with self._lock:
            if (found := self._groups.get(group_id)) is not None:
                self._groups.move_to_end(group_id)
                return found
        # One statement, so one snapshot: a re-seal moves a group's members and deletes it in one
        # transaction, and this sees all of them with their signature or none.
        members = session.execute(
            select(NationalSealGroup.signature, Certificate.id, Certificate.digest)
            .join(NationalSealGroup, NationalSealGroup.id == Certificate.national_group_id)
            .where(Certificate.national_group_id == group_id)
            .order_by(Certificate.id)
        ).all()
        if not members:
            return None
        proofs = group_proofs(self._chain_id, self._registry, [member.digest for member in members])
        found = (
            members[0].signature,
            {member.id: proof for member, proof in zip(members, proofs, strict=True)},
        )
        with self._lock:
            self._groups[group_id] = found
            while len(self._groups) > self._keep:
                self._groups.popitem(last=False)
        return found


def reseal_stale(
    session: Session, batch_id: int, private: bytes, current: bytes, chain_id: int, registry: str, size: int
) -> tuple[int, list[int]]:
    """Co-seal again, with the current SM2 key, every certificate of the batch co-sealed by
    another key, with the other members of their groups that are not anchored yet (a group cut at
    intake may straddle batches: its root must stay what its signature signed). Members already
    anchored keep the seal they were anchored with, frozen in their own row (signature ‖ proof):
    the new key was not good at their anchor time. How many were co-sealed again, and the groups
    that went."""
    stale = select(NationalSealGroup.id).where(
        NationalSealGroup.key_id != current,
        NationalSealGroup.id.in_(
            select(Certificate.national_group_id).where(Certificate.batch_id == batch_id).distinct()
        ),
    )
    stale_ids = list(session.scalars(stale))
    members = select(
        Certificate.id, Certificate.digest, Certificate.national_group_id, Batch.state
    ).outerjoin(Batch, Batch.id == Certificate.batch_id)
    legacy = members.where(  # co-sealed before 0012, each row its own share: this batch's only
        Certificate.batch_id == batch_id,
        Certificate.national_seal.is_not(None),
        Certificate.national_key_id != current,
    )
    # two statements, each on its index (an OR of the two made SQLite scan the table every batch)
    rows = sorted(
        [*session.execute(legacy), *(session.execute(members.where(Certificate.national_group_id.in_(stale_ids)))
                                     if stale_ids else ())],
        key=lambda row: row.id,
    )  # fmt: skip
    if not rows:
        return 0, []
    changes = _frozen(session, stale_ids, rows, chain_id, registry)
    frozen = {change["id"] for change in changes}
    moving = [row for row in rows if row.id not in frozen]
    for start in range(0, len(moving), size):
        group = moving[start : start + size]
        signature = seal_group_signature(private, chain_id, registry, [row.digest for row in group])
        group_id = session.scalar(
            insert(NationalSealGroup)
            .values(key_id=current, signature=signature)
            .returning(NationalSealGroup.id)
        )
        changes += [{"id": row.id, "national_group_id": group_id, "national_seal": None, "national_key_id": None}
                    for row in group]  # fmt: skip
    session.execute(update(Certificate), changes)
    if stale_ids:
        session.execute(delete(NationalSealGroup).where(NationalSealGroup.id.in_(stale_ids)))
    return len(moving), stale_ids


def _frozen(
    session: Session, stale_ids: list[int], rows: Sequence[Any], chain_id: int, registry: str
) -> list[dict[str, Any]]:
    """The anchored members of stale groups with their seal written into their own row."""
    changes: list[dict[str, Any]] = []
    by_group: dict[int, list[Any]] = {}
    for row in rows:  # in id order, so each group's members are in their sealing order
        by_group.setdefault(row.national_group_id, []).append(row)
    for group_id in stale_ids:
        members = by_group.get(group_id, [])
        if not any(row.state in ANCHORED for row in members):
            continue
        signature, key_id = session.execute(
            select(NationalSealGroup.signature, NationalSealGroup.key_id).where(
                NationalSealGroup.id == group_id
            )
        ).one()
        proofs = group_proofs(chain_id, registry, [row.digest for row in members])
        changes += [
            {"id": row.id, "national_group_id": None, "national_seal": signature + b"".join(proof),
             "national_key_id": key_id}
            for row, proof in zip(members, proofs, strict=True)
            if row.state in ANCHORED
        ]  # fmt: skip
    return changes
