"""Build a batch: records → certificates → salted field leaves → digests → seals → batch tree.

Pure (no I/O): the signing key, clock, salt and serial sources are passed in. A bad record is
reported with its position and does not sink the rest of the batch.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from registry.certificate.canonical import make_leaves
from registry.certificate.merkle import batch_tree, field_digest
from registry.certificate.model import Issuer, build_fields
from registry.certificate.presentation import Presentation, batch_presentations
from registry.certificate.seal import sign_seal
from registry.error_codes import ErrorCode
from registry.errors import EcertError


@dataclass(frozen=True)
class RejectedRecord:
    """A record that could not become a certificate, and why."""

    position: int
    code: ErrorCode
    message: str
    field: str | None = None


@dataclass
class IssuedBatch:
    """Sealed certificates of one type and agency under one batch root (not anchored yet)."""

    type_code: str
    root: bytes
    fields: list[dict[str, Any]]
    presentations: list[Presentation]
    rejected: list[RejectedRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.presentations)

    def with_anchor(self, tx_hash: str) -> IssuedBatch:
        """The same batch with the anchoring transaction recorded in every package."""
        self.presentations = [replace(p, anchor_tx=tx_hash) for p in self.presentations]
        return self


def serial_numbers(prefix: str | None = None) -> Iterator[str]:
    """Serials `[0-9A-Z]+` unique per issuer: a date, a random part and a counter."""
    prefix = prefix or dt.date.today().strftime("%Y%m%d") + secrets.token_hex(3).upper()
    counter = 0
    while True:
        counter += 1
        yield f"{prefix}{counter:07d}"


def build_batch(
    records: Iterable[Mapping[str, Any]],
    *,
    type_code: str,
    type_name: str,
    issuer: Issuer,
    signing_key: bytes,
    chain_id: int,
    registry: str,
    serials: Iterator[str] | None = None,
    salt_source: Callable[[int], bytes] = os.urandom,
    today: dt.date | None = None,
) -> IssuedBatch:
    """Seal every good record and put them all under one batch root."""
    serials = serials or serial_numbers()
    all_fields: list[dict[str, Any]] = []
    all_leaves = []
    digests: list[bytes] = []
    rejected: list[RejectedRecord] = []
    for position, record in enumerate(records, start=1):
        try:
            fields = build_fields(
                record,
                type_code=type_code,
                type_name=type_name,
                issuer=issuer,
                serial=next(serials),
                today=today,
            )
            leaves = make_leaves(fields, salt_source)
        except EcertError as exc:
            rejected.append(RejectedRecord(position, exc.code, exc.message, exc.details.get("field")))
            continue
        all_fields.append(fields)
        all_leaves.append(leaves)
        digests.append(field_digest(leaves))
    if not digests:
        return IssuedBatch(type_code, b"", [], [], rejected)
    seals = [sign_seal(signing_key, chain_id, registry, digest) for digest in digests]
    tree = batch_tree(digests)
    presentations = batch_presentations(
        chain_id=chain_id, registry=registry, leaves=all_leaves, digests=digests, seals=seals, tree=tree
    )
    return IssuedBatch(type_code, tree.root, all_fields, presentations, rejected)
