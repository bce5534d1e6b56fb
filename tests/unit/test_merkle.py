"""StandardMerkleTree: hand ABI encoders equal eth_abi, trees and proofs equal OpenZeppelin's.

Known answers come from @openzeppelin/merkle-tree 1.0.8 (README example, and trees built with it
once); tests/integration/test_js_interop.py checks many random trees against the JS package live.
"""

from __future__ import annotations

import random
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from Crypto.Hash import keccak as crypto_keccak
from eth_abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificate.canonical import FieldLeaf
from registry.certificate.merkle import (
    BATCH_LEAF_ENCODING,
    FIELD_LEAF_ENCODING,
    MerkleTree,
    MultiProof,
    batch_tree,
    encode_batch_leaf,
    encode_field_leaf,
    field_digest,
    hash_pair,
    keccak,
    process_multiproof,
    standard_leaf_hash,
    verify_multiproof,
    verify_proof,
)

H = bytes.fromhex
ROOT = Path(__file__).resolve().parents[2]


def _hashes(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(out)


def test_keccak_is_ethereum_keccak_whatever_the_backend() -> None:
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    for data in (b"ecert", bytes(200), "证照".encode()):
        assert keccak(data) == crypto_keccak.new(data=data, digest_bits=256).digest()


# --- encoders -----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(min_size=16, max_size=16), st.text(max_size=80), st.text(max_size=80))
def test_field_leaf_encoding_equals_eth_abi(salt: bytes, path: str, value: str) -> None:
    assert encode_field_leaf(salt, path, value) == encode(list(FIELD_LEAF_ENCODING), [salt, path, value])


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 64, 65])
def test_field_leaf_encoding_padding_edges(n: int) -> None:
    salt = bytes(range(16))
    for path, value in (("p" * n, "张" * n), ("", "x" * n), ("证" * n, "")):
        assert encode_field_leaf(salt, path, value) == encode(list(FIELD_LEAF_ENCODING), [salt, path, value])


def test_a_long_path_is_encoded_right_but_not_kept() -> None:
    """Short paths' encodings are cached; a verifier's caller may send any path, so long ones are not."""
    from registry.certificate import merkle

    salt, cached = bytes(range(16)), merkle._cached_encoded_path
    for length, grows in ((256, 1), (257, 0), (100_000, 0)):
        path = ("证" + secrets.token_hex(8)).ljust(length, "p")
        before = cached.cache_info().currsize
        assert encode_field_leaf(salt, path, "1") == encode(list(FIELD_LEAF_ENCODING), [salt, path, "1"])
        assert cached.cache_info().currsize == before + grows, length


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**256 - 1))
def test_batch_leaf_encoding_equals_eth_abi(digest: bytes, index: int) -> None:
    assert encode_batch_leaf(digest, index) == encode(list(BATCH_LEAF_ENCODING), [digest, index])


def test_encoders_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError):
        encode_field_leaf(bytes(15), "a", "1")
    with pytest.raises(ValueError):
        encode_batch_leaf(bytes(31), 0)
    with pytest.raises(OverflowError):
        encode_batch_leaf(bytes(32), -1)


# --- known answers from @openzeppelin/merkle-tree -----------------------------------------------


def test_openzeppelin_readme_example() -> None:
    values = [
        ("0x1111111111111111111111111111111111111111", 5000000000000000000),
        ("0x2222222222222222222222222222222222222222", 2500000000000000000),
    ]
    # address is left-padded to 32 bytes, uint256 big-endian: the same head layout as our leaves
    leaves = [standard_leaf_hash(bytes(12) + H(a[2:]) + n.to_bytes(32, "big")) for a, n in values]
    assert leaves[0] == standard_leaf_hash(encode(["address", "uint256"], list(values[0])))
    tree = MerkleTree(leaves)
    assert tree.root.hex() == "d4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"


BATCH_DIGESTS = [keccak(i.to_bytes(32, "big")) for i in range(5)]


def test_batch_tree_known_answer() -> None:
    tree = batch_tree(BATCH_DIGESTS)
    assert tree.root.hex() == "de56dd25f31db48169723cc2a019316a2497e972b9c17bf6cd120e584bce7e66"
    assert [p.hex() for p in tree.proof(3)] == [
        "42af6b10e3051357c7f50efd4cec8698ca8016adf4d13ef3ac308a25c265a545",
        "732bd5f4e6845e24976b2803677d6ecdc7ecd21aa58bc8b636454de9068da358",
    ]
    multi = tree.multiproof([0, 3, 4])
    assert multi.value_indices == [0, 4, 3]
    assert [p.hex() for p in multi.proof] == [
        "42af6b10e3051357c7f50efd4cec8698ca8016adf4d13ef3ac308a25c265a545"
    ]
    assert multi.proof_flags == [True, False, True]
    assert multi.leaves == [standard_leaf_hash(encode_batch_leaf(BATCH_DIGESTS[i], i)) for i in (0, 4, 3)]


def test_field_digest_known_answer() -> None:
    leaves = [
        FieldLeaf(bytes(range(16)), "holder.name", '"张三"'),
        FieldLeaf(b"\x11" * 16, "ext.scope[0]", '"食品销售"'),
        FieldLeaf(b"\x22" * 16, "ext.capital", "1000000"),
        FieldLeaf(b"\x33" * 16, "ext.listed", "false"),
    ]
    assert field_digest(leaves).hex() == "896993c4898472c65755c18cc9bf2ee3f5a27beb49e7c7fedb3c4fd6010f8d52"
    assert field_digest(leaves[::-1]) == field_digest(leaves)  # leaves are sorted by hash


# --- structure ----------------------------------------------------------------------------------


def test_tree_layout_is_openzeppelins() -> None:
    leaves = _hashes(11)
    tree = MerkleTree(leaves)
    n = len(leaves)
    assert len(tree.tree) == 2 * n - 1
    assert tree.tree[n - 1 :] == sorted(leaves, reverse=True)  # tree[len-1-i] = sorted[i]
    for i in range(n - 1):
        assert tree.tree[i] == hash_pair(tree.tree[2 * i + 1], tree.tree[2 * i + 2])
    assert [tree.tree[tree.tree_indices[v]] for v in range(n)] == leaves


def test_hash_pair_is_sorted() -> None:
    a, b = _hashes(2)
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


def test_empty_and_bad_trees_are_errors() -> None:
    with pytest.raises(ValueError):
        MerkleTree([])
    with pytest.raises(ValueError):
        MerkleTree([bytes(31)])


def test_single_leaf_tree() -> None:
    (leaf,) = _hashes(1)
    tree = MerkleTree([leaf])
    assert tree.root == leaf
    assert tree.proof(0) == []
    assert verify_proof(tree.root, leaf, [])
    multi = tree.multiproof([0])
    assert (multi.leaves, multi.proof, multi.proof_flags) == ([leaf], [], [])
    assert verify_multiproof(tree.root, multi.leaves, multi.proof, multi.proof_flags)


def test_empty_multiproof_carries_the_root() -> None:
    tree = MerkleTree(_hashes(4))
    multi = tree.multiproof([])
    assert multi == MultiProof([], [tree.root], [], [])
    assert verify_multiproof(tree.root, [], multi.proof, [])


def test_bad_indices() -> None:
    tree = MerkleTree(_hashes(4))
    with pytest.raises(IndexError):
        tree.proof(4)
    with pytest.raises(IndexError):
        tree.proof(-1)
    with pytest.raises(ValueError):
        tree.multiproof([1, 1])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70), st.integers(0, 2**32), st.data())
def test_proofs_verify_and_any_flipped_bit_fails(n: int, seed: int, data: st.DataObject) -> None:
    leaves = _hashes(n, seed)
    tree = MerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_proof(tree.root, leaf, tree.proof(i))
    i = data.draw(st.integers(0, n - 1))
    bit = data.draw(st.integers(0, 255))
    proof = tree.proof(i)
    assert not verify_proof(tree.root, _flip(leaves[i], bit), proof)
    assert not verify_proof(_flip(tree.root, bit), leaves[i], proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_proof(tree.root, leaves[i], [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70), st.integers(0, 2**32), st.data())
def test_multiproofs_verify_and_tampering_fails(n: int, seed: int, data: st.DataObject) -> None:
    leaves = _hashes(n, seed)
    tree = MerkleTree(leaves)
    subset = data.draw(st.lists(st.integers(0, n - 1), unique=True, min_size=1))
    multi = tree.multiproof(subset)
    assert sorted(multi.value_indices) == sorted(subset)
    assert multi.leaves == [leaves[v] for v in multi.value_indices]
    assert multi.leaves == sorted(multi.leaves)  # the order the proof needs is ascending hash
    assert process_multiproof(multi.leaves, multi.proof, multi.proof_flags) == tree.root
    assert verify_multiproof(tree.root, multi.leaves, multi.proof, multi.proof_flags)
    bit = data.draw(st.integers(0, 255))
    k = data.draw(st.integers(0, len(multi.leaves) - 1))
    bad_leaves = [*multi.leaves[:k], _flip(multi.leaves[k], bit), *multi.leaves[k + 1 :]]
    assert not verify_multiproof(tree.root, bad_leaves, multi.proof, multi.proof_flags)
    if multi.proof:
        bad_proof = [_flip(multi.proof[0], bit), *multi.proof[1:]]
        assert not verify_multiproof(tree.root, multi.leaves, bad_proof, multi.proof_flags)


def test_inconsistent_multiproofs_raise_in_process_and_fail_in_verify() -> None:
    tree = MerkleTree(_hashes(6))
    multi = tree.multiproof([0, 2, 5])
    cases = [
        (multi.leaves, multi.proof, [*multi.proof_flags, True]),
        (multi.leaves, multi.proof[:-1], multi.proof_flags),
        (multi.leaves[:-1], multi.proof, multi.proof_flags),
        ([*multi.leaves, bytes(31)], multi.proof, multi.proof_flags),
        ([], [], []),
    ]
    for leaves, proof, flags in cases:
        with pytest.raises(ValueError):
            process_multiproof(leaves, proof, flags)
        assert not verify_multiproof(tree.root, leaves, proof, flags)
    # well-formed but wrong: no exception, just another root
    flipped = [not f for f in multi.proof_flags]
    assert process_multiproof(multi.leaves, multi.proof, flipped) != tree.root
    assert not verify_multiproof(tree.root, multi.leaves, multi.proof, flipped)
    assert not verify_multiproof(tree.root, None, None, None)  # type: ignore[arg-type]
    assert not verify_proof(tree.root, bytes(31), [])
    assert not verify_proof(tree.root, tree.tree[-1], [b"short"])


def test_batch_index_is_committed() -> None:
    digests = _hashes(4)
    tree = batch_tree(digests)
    assert tree.root != batch_tree([digests[1], digests[0], *digests[2:]]).root
    leaf = standard_leaf_hash(encode_batch_leaf(digests[2], 2))
    assert verify_proof(tree.root, leaf, tree.proof(2))
    assert not verify_proof(tree.root, standard_leaf_hash(encode_batch_leaf(digests[2], 3)), tree.proof(2))


def test_dump_is_standard_v1() -> None:
    digests = _hashes(3)
    tree = batch_tree(digests)
    dumped = tree.dump([(d, i) for i, d in enumerate(digests)], BATCH_LEAF_ENCODING)
    assert dumped["format"] == "standard-v1"
    assert dumped["leafEncoding"] == ["bytes32", "uint256"]
    assert dumped["tree"][0] == "0x" + tree.root.hex()
    assert dumped["values"][1] == {"value": ["0x" + digests[1].hex(), "1"], "treeIndex": tree.tree_indices[1]}
    with pytest.raises(ValueError):
        tree.dump([], BATCH_LEAF_ENCODING)


def test_pycryptodome_fallback_gives_the_same_trees() -> None:
    """Where safe-pysha3 is not installed the pycryptodome path runs; prove it in a fresh interpreter."""
    code = (
        "import sys; sys.modules['sha3'] = None\n"
        "from registry.certificate.merkle import _keccak_256, batch_tree, keccak\n"
        "assert 'crypto' in _keccak_256.__code__.co_names[0]\n"
        "print(batch_tree([keccak(i.to_bytes(32, 'big')) for i in range(5)]).root.hex())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "de56dd25f31db48169723cc2a019316a2497e972b9c17bf6cd120e584bce7e66"


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_merkle_root_is_the_trees_root(leaf_hashes: list[bytes]) -> None:
    from registry.certificate.merkle import merkle_root

    assert merkle_root(leaf_hashes) == MerkleTree(leaf_hashes).root
