"""OpenZeppelin StandardMerkleTree, bit for bit (`@openzeppelin/merkle-tree` 1.0.x, sortLeaves=True).

Layout as in its core.js: leaves sorted by hash, `tree[len-1-i] = leaves[i]`, parents
`tree[i] = hashPair(tree[2i+1], tree[2i+2])` with the pair sorted before hashing, leaf hash
`keccak256(keccak256(abi.encode(...)))`. Proofs verify in JS (`StandardMerkleTree.verify`,
`verifyMultiProof`) and in Solidity (`MerkleProof.verify`, `multiProofVerify`) unchanged.

ABI encoding of our two leaf types is done by hand: `eth_abi.encode` is ~20x slower and this is
the issuance hot path. Unit tests cross-check the encoders against `eth_abi`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.certificate.canonical import FieldLeaf

try:  # safe-pysha3 (eth-hash's "pysha3" backend) is ~3.5x faster than pycryptodome when installed
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - depends on the environment
    from Crypto.Hash import keccak as _crypto_keccak

    def _keccak_256(data: bytes) -> Any:
        return _crypto_keccak.new(data=data, digest_bits=256)


def keccak(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not NIST SHA3-256)."""
    return _keccak_256(data).digest()  # type: ignore[no-any-return]


FIELD_LEAF_ENCODING = ("bytes16", "string", "string")
BATCH_LEAF_ENCODING = ("bytes32", "uint256")

_ZERO32 = bytes(32)
_PAD16 = bytes(16)
_OFFSET_0x60 = (0x60).to_bytes(32, "big")


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OZ `standardNodeHash`: keccak of the two children in ascending byte order."""
    return keccak(a + b) if a <= b else keccak(b + a)


def encode_field_leaf(salt: bytes, path: str, value: str) -> bytes:
    """`abi.encode(bytes16 salt, string path, string value)`."""
    if len(salt) != 16:
        raise ValueError("salt must be 16 bytes")
    v = value.encode()
    lv = len(v)
    head = _cached_encoded_path(path) if len(path) <= _CACHED_PATH_MAX else _encoded_path(path)
    return b"".join((salt, head, lv.to_bytes(32, "big"), v, _ZERO32[: -lv % 32]))


def _encoded_path(path: str) -> bytes:
    """What follows the salt in a field leaf's encoding up to the value: it depends on the path
    only, and every certificate of a type has the same few paths (so they are cached)."""
    p = path.encode()
    lp = len(p)
    pp = -lp % 32
    return b"".join(
        (
            _PAD16,  # bytes16 is left-aligned in its word
            _OFFSET_0x60,
            (0x80 + lp + pp).to_bytes(32, "big"),  # 0x60 + 32 (length word) + padded path
            lp.to_bytes(32, "big"),
            p,
            _ZERO32[:pp],
        )
    )


# Real paths are short; a long one (anyone may send any path to a verifier) is encoded as it
# comes, so the cache holds at most 4,096 short paths, never what a caller chose to make big.
_CACHED_PATH_MAX = 256
_cached_encoded_path = lru_cache(maxsize=4096)(_encoded_path)


def encode_batch_leaf(digest: bytes, index: int) -> bytes:
    """`abi.encode(bytes32 digest, uint256 index)`."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    return bytes(digest) + index.to_bytes(32, "big")  # OverflowError for negative / >= 2**256


def standard_leaf_hash(encoded: bytes) -> bytes:
    """OZ `standardLeafHash`: double keccak so a leaf can never pass for an inner node."""
    return _keccak_256(_keccak_256(encoded).digest()).digest()  # type: ignore[no-any-return]


@dataclass
class MultiProof:
    """OZ multiproof. `leaves` are leaf hashes in the order the proof consumes them (ascending
    hash); `value_indices[i]` is the value index of `leaves[i]`, to line up the disclosed values."""

    leaves: list[bytes]
    proof: list[bytes]
    proof_flags: list[bool]
    value_indices: list[int] = field(default_factory=list)


def _check_node(node: object) -> None:
    if not isinstance(node, (bytes, bytearray)) or len(node) != 32:
        raise ValueError("Merkle tree nodes must be 32 bytes")


class MerkleTree:
    """StandardMerkleTree over already-hashed leaves, kept in value order (`value_index`)."""

    __slots__ = ("root", "tree", "tree_indices")

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        n = len(leaf_hashes)
        if n == 0:
            raise ValueError("Expected non-zero number of leaves")
        for h in leaf_hashes:
            _check_node(h)
        size = 2 * n - 1
        tree: list[bytes] = [b""] * size
        tree_indices = [0] * n
        # Python's sort is stable like V8's, so equal hashes keep value order as in JS.
        for pos, vi in enumerate(sorted(range(n), key=leaf_hashes.__getitem__)):
            tree[size - 1 - pos] = bytes(leaf_hashes[vi])
            tree_indices[vi] = size - 1 - pos
        k = keccak
        for i in range(n - 2, -1, -1):
            a, b = tree[2 * i + 1], tree[2 * i + 2]
            tree[i] = k(a + b) if a <= b else k(b + a)
        self.tree = tree
        self.tree_indices = tree_indices  # value index -> position in `tree`
        self.root: bytes = tree[0]

    def __len__(self) -> int:
        return len(self.tree_indices)

    def _tree_index(self, value_index: int) -> int:
        if not 0 <= value_index < len(self.tree_indices):
            raise IndexError("Index out of bounds")
        return self.tree_indices[value_index]

    def proof(self, value_index: int) -> list[bytes]:
        """Sibling hashes from the leaf up to (excluding) the root, as OZ `getProof`."""
        i = self._tree_index(value_index)
        tree = self.tree
        out = []
        while i > 0:
            out.append(tree[i + 1 if i % 2 else i - 1])
            i = (i - 1) // 2
        return out

    def multiproof(self, value_indices: Sequence[int]) -> MultiProof:
        """OZ `getMultiProof`: tree indices sorted descending, consumed as a queue."""
        by_tree = {self._tree_index(v): v for v in value_indices}
        if len(by_tree) != len(value_indices):
            raise ValueError("Cannot prove duplicated index")
        indices = sorted(by_tree, reverse=True)
        tree = self.tree
        stack = deque(indices)
        proof: list[bytes] = []
        flags: list[bool] = []
        while stack and stack[0] > 0:
            j = stack.popleft()
            s = j + 1 if j % 2 else j - 1
            if stack and stack[0] == s:
                flags.append(True)
                stack.popleft()
            else:
                flags.append(False)
                proof.append(tree[s])
            stack.append((j - 1) // 2)
        if not indices:
            proof.append(tree[0])
        return MultiProof([tree[i] for i in indices], proof, flags, [by_tree[i] for i in indices])

    def dump(self, values: list[Any], leaf_encoding: Sequence[str]) -> dict[str, Any]:
        """OZ "standard-v1" dump for `StandardMerkleTree.load`; `values` are the unhashed leaves in
        value order. bytes become 0x-hex and ints decimal strings (OZ rejects JS numbers)."""
        if len(values) != len(self.tree_indices):
            raise ValueError("one value per leaf expected")
        return {
            "format": "standard-v1",
            "leafEncoding": list(leaf_encoding),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {"value": _jsonable(v), "treeIndex": ti}
                for v, ti in zip(values, self.tree_indices, strict=False)
            ],
        }


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def verify_proof(root: bytes, leaf_hash: bytes, proof: Sequence[bytes]) -> bool:
    """OZ `processProof(leaf, proof) == root`; False (never an exception) on malformed input."""
    try:
        _check_node(root)
        _check_node(leaf_hash)
        node = bytes(leaf_hash)
        for sibling in proof:
            _check_node(sibling)
            node = hash_pair(node, bytes(sibling))
    except (ValueError, TypeError):
        return False
    return node == root


def process_multiproof(leaves: Sequence[bytes], proof: Sequence[bytes], proof_flags: Sequence[bool]) -> bytes:
    """OZ `processMultiProof`; ValueError where OZ throws."""
    for node in (*leaves, *proof):
        _check_node(node)
    if len(proof) < sum(1 for f in proof_flags if not f):
        raise ValueError("Invalid multiproof format")
    if len(leaves) + len(proof) != len(proof_flags) + 1:
        raise ValueError("Provided leaves and multiproof are not compatible")
    stack = deque(bytes(x) for x in leaves)
    queue = deque(bytes(x) for x in proof)
    try:
        for flag in proof_flags:
            a = stack.popleft()
            b = stack.popleft() if flag else queue.popleft()
            stack.append(hash_pair(a, b))
    except IndexError as e:
        raise ValueError("Invalid multiproof: ran out of nodes") from e
    if len(stack) + len(queue) != 1:
        raise ValueError("Invalid multiproof: nodes left over")
    return stack.pop() if stack else queue.popleft()


def verify_multiproof(
    root: bytes, leaves: Sequence[bytes], proof: Sequence[bytes], proof_flags: Sequence[bool]
) -> bool:
    """True iff the multiproof rebuilds `root`; False (never an exception) on malformed input."""
    try:
        return process_multiproof(leaves, proof, proof_flags) == root
    except (ValueError, TypeError):
        return False


def field_digest(leaves: Sequence[FieldLeaf]) -> bytes:
    """The certificate digest: the root over its field leaves (no proofs kept: issuing is hot)."""
    return merkle_root([leaf.hash() for leaf in leaves])


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root `MerkleTree(leaf_hashes).root` would have, built without its bookkeeping."""
    n = len(leaf_hashes)
    if n == 0:
        raise ValueError("Expected non-zero number of leaves")
    tree: list[bytes] = [b""] * (n - 1) + sorted(leaf_hashes, reverse=True)
    k = keccak
    for i in range(n - 2, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = k(a + b) if a <= b else k(b + a)
    return tree[0]


def batch_tree(digests: Sequence[bytes]) -> MerkleTree:
    """The batch tree over `(digest, index)` leaves, index = position in `digests`."""
    return MerkleTree([standard_leaf_hash(encode_batch_leaf(d, i)) for i, d in enumerate(digests)])
