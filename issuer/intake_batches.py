"""Batches cut at intake: a bulk job's certificates are stored already in their batch, so each
certificate row is written once. The anchoring worker cuts the batches of what arrives a few at
a time (`issuer.anchoring`), which costs each of those rows a second version; for an upload of
thousands that second write was the issuer's largest storage cost on PostgreSQL (every update
leaves a dead copy of a ~2 KB row and a new entry in each index).

A batch opened here is inserted with a placeholder root (random, unique) and gets its real root
(the Merkle root of its digests in order, as the worker computes it) when it is full or the job
ends, all in the job's transaction: the worker sees it, sealed, only once it is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy.orm import Session

from issuer.intake import PreparedCertificate
from issuer.models import Batch
from registry.certificate.merkle import batch_tree


@dataclass(frozen=True)
class IntakeBatching:
    """Jobs of at least `minimum` records are stored in batches of up to `size` (the worker's)."""

    size: int
    minimum: int


class IntakeBatcher:
    """Places a job's certificates in batches as its chunks are stored."""

    def __init__(self, session: Session, agency_code: str, type_code: str, signer: str, size: int) -> None:
        self._session = session
        self._agency_code, self._type_code, self._signer = agency_code, type_code, signer
        self._size = size
        self._open: Batch | None = None
        self._digests: list[bytes] = []

    def place(self, prepared: list[PreparedCertificate]) -> list[tuple[int, int]]:
        """(batch id, index in the batch) of each certificate, in order."""
        placed = []
        for certificate in prepared:
            batch = self._open or self._open_batch()
            placed.append((batch.id, len(self._digests)))
            self._digests.append(certificate.digest)
            if len(self._digests) == self._size:
                self.close()
        return placed

    def close(self) -> None:
        """Give the open batch its root and count (the job's end, or the batch is full)."""
        if self._open is not None:
            self._open.root = batch_tree(self._digests).root
            self._open.count = len(self._digests)
            self._session.flush()
        self._open, self._digests = None, []

    def _open_batch(self) -> Batch:
        batch = Batch(
            agency_code=self._agency_code, type_code=self._type_code, root=os.urandom(32), count=0,
            signer=self._signer, sealed_by=self._signer,
        )  # fmt: skip
        self._session.add(batch)
        self._session.flush()
        self._open = batch
        return batch
