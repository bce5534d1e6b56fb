"""Batches of made-up digests anchored straight through the registry, for tests of what readers
(index, snapshot, chain) answer about them: no issuer, no certificate, only what `facts` reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from conftest import TYPE_BUSINESS_LICENCE

from registry.certificate.merkle import MerkleTree, batch_tree
from registry.certificate.presentation import Presentation
from registry.contracts.certificate_registry import CertificateRegistry


@dataclass
class Anchored:
    tree: MerkleTree
    digests: list[bytes]

    @property
    def root(self) -> bytes:
        return self.tree.root

    def shown(self, index: int) -> Presentation:
        """Certificate `index` of the batch, as a reader sees it."""
        return shown(self.root, index, self.digests[index], self.tree.proof(index))


def anchor(registry: CertificateRegistry, key: Any, count: int, label: str) -> Anchored:
    made = [hashlib.sha3_256(f"{label}#{i}".encode()).digest() for i in range(count)]
    tree = batch_tree(made)
    registry.anchor(key, tree.root, count, TYPE_BUSINESS_LICENCE)
    return Anchored(tree, made)


def shown(root: bytes, index: int, digest: bytes, proof: list[bytes]) -> Presentation:
    """What `facts` reads of a presentation."""
    return SimpleNamespace(batch_root=root, batch_index=index, digest=digest, batch_proof=proof)  # type: ignore[return-value]
