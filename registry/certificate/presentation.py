"""Presentations: the holder package (all fields) and disclosures (chosen fields + multiproof).

Both are one type, `Presentation`: field leaves (all, or the disclosed ones with a multiproof to
the digest), the agency's seal over the digest, the batch position `(root, index, proof)` and,
where the agency co-seals, the national co-seal (SM2 over its group's SM3 root, and the proof).
It travels as JSON (the holder package) or as an `EC1:` string for offline QR codes:
`EC1:` + Base45(zlib(CBOR(compact form))), in the style of the EU digital COVID certificate.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import base45
import cbor2

from registry.certificate.canonical import FieldLeaf, leaf_value, unflatten
from registry.certificate.merkle import MerkleTree, field_digest, process_multiproof
from registry.certificate.model import FORMAT_VERSION
from registry.certificate.national_seal import NationalSeal
from registry.error_codes import ErrorCode
from registry.errors import CertificateError

EC1_PREFIX = "EC1:"
# What a certificate is, and who issued it: part of every disclosure, whatever the holder chose,
# and matched against the chain by the verifier (a hidden type could pass as another type).
BOUND_PATHS = ("identifier", "typeCode", "issuer.code")
_EC1_KEYS = frozenset(range(1, 12))
MAX_EC1_LENGTH = 16_384


@dataclass(frozen=True)
class Presentation:
    """A certificate, or part of one, with everything needed to verify it."""

    chain_id: int
    registry: str
    leaves: tuple[FieldLeaf, ...]
    digest: bytes  # as claimed: sealed and anchored; `computed_digest()` must equal it
    seal: bytes
    batch_root: bytes
    batch_index: int
    batch_proof: tuple[bytes, ...]
    # Set only when some fields are hidden: the multiproof from `leaves` (in its order) to the digest.
    proof: tuple[bytes, ...] | None = None
    proof_flags: tuple[bool, ...] | None = None
    anchor_tx: str | None = field(default=None, compare=False)
    # The national co-seal (SM2/SM3), None for agencies without one and for older packages.
    national_seal: NationalSeal | None = None

    @property
    def is_partial(self) -> bool:
        return self.proof is not None

    def computed_digest(self) -> bytes:
        """The digest these leaves actually hash to (raises if the multiproof is inconsistent)."""
        if not self.leaves:
            raise CertificateError("A presentation discloses no field", code=ErrorCode.CERT_MALFORMED)
        if self.proof is None:
            return field_digest(self.leaves)
        try:
            return process_multiproof(
                [leaf.hash() for leaf in self.leaves], self.proof, self.proof_flags or ()
            )
        except (ValueError, IndexError) as exc:
            raise CertificateError(f"Inconsistent multiproof: {exc}", code=ErrorCode.CERT_TAMPERED) from exc

    def fields(self) -> dict[str, Any]:
        """The disclosed fields as a nested dict."""
        return unflatten((leaf.path, leaf_value(leaf)) for leaf in self.leaves)

    def values(self) -> dict[str, Any]:
        """The disclosed fields flat, by dotted path (`issuer.code`, `ext.scope[0]`)."""
        return {leaf.path: leaf_value(leaf) for leaf in self.leaves}

    def paths(self) -> list[str]:
        return [leaf.path for leaf in self.leaves]

    def disclose(self, paths: Iterable[str]) -> Presentation:
        """A presentation of `paths` (which must all be present) and the `BOUND_PATHS`, with a multiproof."""
        if self.is_partial:
            raise CertificateError(
                "Disclose from the full holder package, not from a disclosure", code=ErrorCode.CERT_PARTIAL
            )
        wanted = set(paths)
        missing = wanted - set(self.paths())
        if missing:
            raise CertificateError(
                f"No such fields: {sorted(missing)}", code=ErrorCode.FIELD_UNKNOWN, field=sorted(missing)[0]
            )
        wanted.update(p for p in BOUND_PATHS if p in self.paths())
        tree = MerkleTree([leaf.hash() for leaf in self.leaves])
        multiproof = tree.multiproof([i for i, leaf in enumerate(self.leaves) if leaf.path in wanted])
        by_hash = {leaf.hash(): leaf for leaf in self.leaves}
        return replace(
            self,
            leaves=tuple(by_hash[h] for h in multiproof.leaves),
            proof=tuple(multiproof.proof),
            proof_flags=tuple(multiproof.proof_flags),
        )

    # ─── JSON (holder package) ────────────────────────────────────────────────────────────

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "registry": {"chainId": self.chain_id, "address": self.registry},
            "leaves": [leaf.to_json() for leaf in self.leaves],
            "digest": _hex(self.digest),
            "seal": _hex(self.seal),
            "batch": {
                "root": _hex(self.batch_root),
                "index": self.batch_index,
                "proof": [_hex(p) for p in self.batch_proof],
            },
        }
        if self.proof is not None:
            data["multiproof"] = {
                "proof": [_hex(p) for p in self.proof],
                "flags": list(self.proof_flags or ()),
            }
        if self.national_seal is not None:
            data["nationalSeal"] = self.national_seal.to_json()
        if self.anchor_tx:
            data["anchor"] = {"txHash": self.anchor_tx}
        return data

    @classmethod
    def from_json(cls, data: Any) -> Presentation:
        """Parse a holder package or disclosure; any shape error is `CERT_MALFORMED`."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise CertificateError(
                    f"Unknown format {data.get('format')!r}: expected {FORMAT_VERSION}",
                    code=ErrorCode.CERT_FORMAT,
                )
            multiproof = data.get("multiproof")
            presentation = cls(
                chain_id=_int(data["registry"]["chainId"]),
                registry=_address(data["registry"]["address"]),
                leaves=tuple(FieldLeaf.from_json(leaf) for leaf in data["leaves"]),
                digest=_bytes(data["digest"], 32),
                seal=_bytes(data["seal"], 65),
                batch_root=_bytes(data["batch"]["root"], 32),
                batch_index=_int(data["batch"]["index"]),
                batch_proof=tuple(_bytes(p, 32) for p in data["batch"]["proof"]),
                proof=tuple(_bytes(p, 32) for p in multiproof["proof"]) if multiproof else None,
                proof_flags=tuple(_bool(f) for f in multiproof["flags"]) if multiproof else None,
                anchor_tx=(data.get("anchor") or {}).get("txHash"),
                national_seal=NationalSeal.from_json(data["nationalSeal"])
                if "nationalSeal" in data
                else None,
            )
        except CertificateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CertificateError(
                f"Malformed certificate package: {exc!r}", code=ErrorCode.CERT_MALFORMED
            ) from exc
        return presentation

    # ─── EC1 (offline QR) ─────────────────────────────────────────────────────────────────

    def to_ec1(self) -> str:
        compact = {
            1: self.chain_id,
            2: bytes.fromhex(self.registry[2:]),
            3: [[leaf.salt, leaf.path, leaf.value] for leaf in self.leaves],
            10: self.digest,
            4: self.seal,
            5: self.batch_root,
            6: self.batch_index,
            7: list(self.batch_proof),
        }
        if self.proof is not None:
            compact[8] = list(self.proof)
            compact[9] = list(self.proof_flags or ())
        if self.national_seal is not None:
            compact[11] = self.national_seal.to_cbor()  # last: older codes stay byte for byte
        encoded: bytes = base45.b45encode(zlib.compress(cbor2.dumps(compact), 9))
        return EC1_PREFIX + encoded.decode("ascii")

    @classmethod
    def from_ec1(cls, text: str) -> Presentation:
        """Parse an `EC1:` string; anything malformed is `CERT_MALFORMED`, never a crash."""
        text = text.strip()
        if not text.startswith(EC1_PREFIX):
            raise CertificateError(
                "Not an ecert QR code: it must start with EC1:", code=ErrorCode.CERT_MALFORMED
            )
        if len(text) > MAX_EC1_LENGTH:
            raise CertificateError("EC1 string too long", code=ErrorCode.CERT_MALFORMED)
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(base45.b45decode(text[len(EC1_PREFIX) :]), 256 * 1024)
            if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
                raise ValueError(
                    "truncated, padded or oversized zlib stream"
                )  # one certificate, one encoding
            compact = cbor2.loads(raw)
            if (
                not isinstance(compact, dict)
                or set(compact) - _EC1_KEYS
                or len(cbor2.dumps(compact)) != len(raw)
            ):
                raise ValueError("unexpected CBOR content")
            from eth_utils import to_checksum_address

            return cls(
                chain_id=_int(compact[1]),
                registry=to_checksum_address(_bytes(compact[2], 20)),
                leaves=tuple(FieldLeaf(_bytes(s, 16), _str(p), _str(v)) for s, p, v in compact[3]),
                digest=_bytes(compact[10], 32),
                seal=_bytes(compact[4], 65),
                batch_root=_bytes(compact[5], 32),
                batch_index=_int(compact[6]),
                batch_proof=tuple(_bytes(p, 32) for p in compact[7]),
                proof=tuple(_bytes(p, 32) for p in compact[8]) if 8 in compact else None,
                proof_flags=tuple(_bool(f) for f in compact[9]) if 8 in compact else None,
                national_seal=NationalSeal.from_cbor(compact[11]) if 11 in compact else None,
            )
        except CertificateError:
            raise
        except Exception as exc:
            raise CertificateError(
                f"Malformed EC1 code ({exc.__class__.__name__})", code=ErrorCode.CERT_MALFORMED
            ) from exc


def batch_presentations(
    *,
    chain_id: int,
    registry: str,
    leaves: list[list[FieldLeaf]],
    digests: list[bytes],
    seals: list[bytes],
    tree: MerkleTree,
    national_seals: Sequence[NationalSeal] | None = None,
) -> list[Presentation]:
    """The holder packages of one batch, in record order (`national_seals`: one per record, from
    `national_seal.seal_group` over its groups, or None where the agency does not co-seal)."""
    root = tree.root
    co_seals: Sequence[NationalSeal | None] = (
        [None] * len(digests) if national_seals is None else national_seals
    )
    return [
        Presentation(
            chain_id,
            registry,
            tuple(cert_leaves),
            digest,
            seal,
            root,
            index,
            tuple(tree.proof(index)),
            national_seal=co_seal,
        )
        for index, (cert_leaves, digest, seal, co_seal) in enumerate(
            zip(leaves, digests, seals, co_seals, strict=True)
        )
    ]


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _bytes(value: Any, size: int) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else value
    if not isinstance(raw, bytes) or len(raw) != size:
        raise ValueError(f"expected {size} bytes")
    return raw


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >= 2**256:
        raise ValueError("expected a non-negative integer")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected a boolean")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an address")
    return _checked_address(value)


@functools.lru_cache(maxsize=1024)
def _checked_address(value: str) -> str:
    """Checksummed `value` (two keccaks): cached, a node sees a handful of registry addresses."""
    from eth_utils import is_address, to_checksum_address

    if not is_address(value):
        raise ValueError("expected an address")
    return to_checksum_address(value)
