"""The national co-seal: one SM2 signature over the SM3 Merkle root of a group of certificates.

A signature per certificate would cost two thirds of intake throughput; one per group of 64 costs
~9 µs of the ~200 µs a certificate takes to prepare (more than half of it the signature), and
the evidence stays per certificate: each one carries the group's signature and its inclusion
proof, the signature covers the root, the root commits to every leaf (SM3 collision resistance)
and the leaf binds chain, registry and digest. Byte by byte in docs/PROTOCOL.md ("The national
co-seal (SM2/SM3)"):

    leaf    = SM3(0x00 ‖ uint256 chainId ‖ registry (20 bytes) ‖ digest (32 bytes))
    node    = SM3(0x01 ‖ min(a, b) ‖ max(a, b))     neighbours paired left to right,
                                                   an odd last node carried up unchanged
    message = "ecert-national-seal/1" ‖ root        signed with SM2 (default ID), r ‖ s

Pure code, no I/O: the keys come from the caller (the issuer's keystore, the verifier's trust
registry snapshot).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.error_codes import ErrorCode
from registry.errors import CertificateError
from registry.national import SIGNATURE_SIZE, sm2_sign, sm2_verify, sm3

SEAL_DOMAIN = b"ecert-national-seal/1"
# A group has at most 1,024 certificates (ECERT_ISSUER_NATIONAL_SEAL_GROUP), so 10 siblings; 16
# leaves room and still bounds what a hostile package can make a verifier hash.
MAX_PROOF_ITEMS = 16
NATIONAL_GROUP, MAX_GROUP = 64, 1024  # certificates per co-seal: the default, and the most allowed
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def seal_leaf(chain_id: int, registry: str | bytes, digest: bytes) -> bytes:
    """SM3(0x00 ‖ uint256(chainId) ‖ registry address ‖ digest): one certificate in one registry.

    ValueError for a chain id outside uint256, an address that is not 20 bytes (or 0x + 40 hex)
    or a digest that is not 32 bytes.
    """
    return _leaf(_leaf_prefix(chain_id, registry), digest)


def _leaf_prefix(chain_id: int, registry: str | bytes) -> bytes:
    """0x00 ‖ uint256(chainId) ‖ registry address: what every leaf of a group begins with, checked
    and encoded once per group rather than once per certificate."""
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 <= chain_id < 2**256:
        raise ValueError("chainId must be a uint256")
    if isinstance(registry, str):
        if not _ADDRESS_RE.fullmatch(registry):
            raise ValueError("registry must be a 0x address")
        address = bytes.fromhex(registry[2:])
    elif isinstance(registry, (bytes, bytearray)) and len(registry) == 20:
        address = bytes(registry)
    else:
        raise ValueError("registry must be a 20-byte address")
    return _LEAF_PREFIX + chain_id.to_bytes(32, "big") + address


def _leaf(prefix: bytes, digest: bytes) -> bytes:
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    return sm3(prefix + bytes(digest))


def seal_node(a: bytes, b: bytes) -> bytes:
    """SM3(0x01 ‖ min(a, b) ‖ max(a, b)): sorted, so a proof needs no left/right flags."""
    return sm3(_NODE_PREFIX + a + b) if a <= b else sm3(_NODE_PREFIX + b + a)


def group_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root over `leaves` (in order) and each leaf's proof (siblings from leaf to root)."""
    if not leaves:
        raise ValueError("a seal group has at least one certificate")
    for leaf in leaves:
        if not isinstance(leaf, (bytes, bytearray)) or len(leaf) != 32:
            raise ValueError("leaves must be 32 bytes")
    level = [bytes(leaf) for leaf in leaves]
    proofs: list[list[bytes]] = [[] for _ in level]
    # position of each leaf's ancestor in the current level
    positions = list(range(len(level)))
    while len(level) > 1:
        width = len(level)
        for proof, i in zip(proofs, positions, strict=True):
            sibling = i ^ 1
            if sibling < width:  # else: the odd last node, carried up with no sibling
                proof.append(level[sibling])
        level = [seal_node(level[i], level[i + 1]) for i in range(0, width - 1, 2)] + (
            [level[-1]] if width % 2 else []
        )
        positions = [i // 2 for i in positions]
    return level[0], [tuple(proof) for proof in proofs]


def root_from_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """h = leaf; h = node(h, p) for each sibling p: the group root if the proof is right."""
    h = bytes(leaf)
    for sibling in proof:
        h = seal_node(h, bytes(sibling))
    return h


def seal_message(root: bytes) -> bytes:
    """What SM2 signs: the ASCII domain (21 bytes) ‖ the group root (32 bytes)."""
    return SEAL_DOMAIN + root


@dataclass(frozen=True)
class NationalSeal:
    """One certificate's share of its group's co-seal: the SM2 signature (r ‖ s) over the group
    root and the certificate's inclusion proof."""

    signature: bytes
    proof: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise CertificateError(
                "nationalSeal.signature must be 64 bytes r ‖ s", code=ErrorCode.CERT_MALFORMED
            )
        if not isinstance(self.proof, tuple) or len(self.proof) > MAX_PROOF_ITEMS:
            raise CertificateError(
                f"nationalSeal.proof must be at most {MAX_PROOF_ITEMS} hashes", code=ErrorCode.CERT_MALFORMED
            )
        for item in self.proof:
            if not isinstance(item, bytes) or len(item) != 32:
                raise CertificateError(
                    "nationalSeal.proof items must be 32 bytes", code=ErrorCode.CERT_MALFORMED
                )

    def to_json(self) -> dict[str, Any]:
        return {"signature": "0x" + self.signature.hex(), "proof": ["0x" + p.hex() for p in self.proof]}

    @classmethod
    def from_json(cls, data: Any) -> NationalSeal:
        """`{"signature": "0x…", "proof": ["0x…", …]}`; anything else is CERT_MALFORMED."""
        if (
            not isinstance(data, dict)
            or set(data) != {"signature", "proof"}
            or not isinstance(data["proof"], list)
            or len(data["proof"]) > MAX_PROOF_ITEMS
        ):
            raise CertificateError("Malformed nationalSeal", code=ErrorCode.CERT_MALFORMED)
        return cls(_hex_bytes(data["signature"]), tuple(_hex_bytes(p) for p in data["proof"]))

    def to_bytes(self) -> bytes:
        """Signature ‖ proof items, for storage (the issuer's database keeps it per certificate)."""
        return self.signature + b"".join(self.proof)

    @classmethod
    def from_bytes(cls, raw: bytes) -> NationalSeal:
        if len(raw) < SIGNATURE_SIZE or (len(raw) - SIGNATURE_SIZE) % 32:
            raise CertificateError("Malformed stored national seal", code=ErrorCode.CERT_MALFORMED)
        items = raw[SIGNATURE_SIZE:]
        return cls(raw[:SIGNATURE_SIZE], tuple(items[i : i + 32] for i in range(0, len(items), 32)))

    def to_cbor(self) -> list[Any]:
        """EC1 key 11: `[bytes(64) signature, [bytes(32), …] proof]`."""
        return [self.signature, list(self.proof)]

    @classmethod
    def from_cbor(cls, value: Any) -> NationalSeal:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], bytes)
            or not isinstance(value[1], list)
            or len(value[1]) > MAX_PROOF_ITEMS
        ):
            raise CertificateError("Malformed EC1 national seal", code=ErrorCode.CERT_MALFORMED)
        return cls(value[0], tuple(value[1]))


def _hex_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise CertificateError("nationalSeal holds 0x hex strings", code=ErrorCode.CERT_MALFORMED)
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise CertificateError("nationalSeal holds 0x hex strings", code=ErrorCode.CERT_MALFORMED) from exc


def seal_group(
    private: bytes, chain_id: int, registry: str | bytes, digests: Sequence[bytes]
) -> list[NationalSeal]:
    """Co-seal one group: one SM2 signature over the root of `digests` (in order), and for each
    certificate that signature with its proof. Empty in, empty out."""
    if not digests:
        return []
    signature, proofs = _signed_group(private, chain_id, registry, digests)
    return [NationalSeal(signature, proof) for proof in proofs]


def seal_group_signature(
    private: bytes, chain_id: int, registry: str | bytes, digests: Sequence[bytes]
) -> bytes:
    """The group's SM2 signature alone: what the issuer stores once per group (each certificate's
    proof is rebuilt from the group's digests when its package is made: `group_proofs`)."""
    prefix = _leaf_prefix(chain_id, registry)
    return sm2_sign(private, seal_message(group_tree([_leaf(prefix, digest) for digest in digests])[0]))


def group_proofs(chain_id: int, registry: str | bytes, digests: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """Each certificate's proof in a group of `digests` (in the order they were sealed)."""
    prefix = _leaf_prefix(chain_id, registry)
    return group_tree([_leaf(prefix, digest) for digest in digests])[1]


def _signed_group(
    private: bytes, chain_id: int, registry: str | bytes, digests: Sequence[bytes]
) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The group's signature and each certificate's proof."""
    prefix = _leaf_prefix(chain_id, registry)
    root, proofs = group_tree([_leaf(prefix, digest) for digest in digests])
    return sm2_sign(private, seal_message(root)), proofs


def check_seal(
    public_keys: Iterable[bytes], chain_id: int, registry: str | bytes, digest: bytes, seal: NationalSeal
) -> bytes | None:
    """The first of `public_keys` (64 bytes X ‖ Y each) under which `seal` is this certificate's
    co-seal, or None (also for a malformed chain id, registry or digest: nothing verifies)."""
    try:
        leaf = seal_leaf(chain_id, registry, digest)
    except ValueError:
        return None
    if len(seal.proof) > MAX_PROOF_ITEMS:
        return None
    message = seal_message(root_from_proof(leaf, seal.proof))
    for key in public_keys:
        if _verified(bytes(key), message, seal.signature):
            return bytes(key)
    return None


@functools.lru_cache(maxsize=16_384)
def _verified(public: bytes, message: bytes, signature: bytes) -> bool:
    """`sm2_verify`, remembered: the certificates of one group share their root and signature,
    and an SM2 verification costs ~1 ms, so a node that sees a group's certificates (or one
    certificate again) verifies the signature once. Keyed by every input: a pure function."""
    return sm2_verify(public, message, signature)
