"""Our trees, proofs, dumps and seals, checked by the JS tools a third party would use.

One node process per test (start-up costs ~100 ms): all random cases go in one JSON on stdin.
Seeds are fixed so a failure reproduces; keys are made at run time.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from registry.certificate.canonical import make_leaves
from registry.certificate.merkle import BATCH_LEAF_ENCODING, FIELD_LEAF_ENCODING, MerkleTree, batch_tree
from registry.certificate.seal import address_of, seal_hash, sign_seal, to_checksum_address

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        shutil.which("node") is None
        or not (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir(),
        reason="needs node and `npm ci` (node_modules/@openzeppelin/merkle-tree, ethers)",
    ),
]


def _run(script: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", str(JS / script)],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
    assert len(results) == len(cases)
    return results


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


_TEXT = '张三李四王五营业执照食品销售杭州市浙江省证照编号abcXYZ019 -_/"\\\n\t\x01é😀'
_KEY = "holdercodenameext姓名证号范围类型"


def _text(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def _scalar(rng: random.Random) -> object:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return None
    if kind == 3:
        return rng.choice([0.5, -1.25, 1e21, 3.14159, 1e-7, 100.0])
    return _text(rng, _TEXT, 0, 40)


def _node(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(6) if depth < 3 else 5
    if kind == 0:
        return {_text(rng, _KEY, 1, 6): _node(rng, depth + 1) for _ in range(rng.randint(1, 4))}
    if kind == 1:
        return [_node(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    return _scalar(rng)


def _proof_case(
    tree: MerkleTree, values: list[Any], encoding: tuple[str, ...], rng: random.Random, max_proofs: int
) -> dict[str, Any]:
    n = len(values)
    indices = range(n) if n <= max_proofs else rng.sample(range(n), max_proofs)
    # JS hashes slowly (pure-JS keccak): cap subsets at 40 leaves, prove everything on small trees
    subsets = [rng.sample(range(n), rng.randint(1, min(n, 40))) for _ in range(2)]
    if n <= 40:
        subsets.append(list(range(n)))
    multiproofs = []
    for subset in subsets:
        multi = tree.multiproof(subset)
        multiproofs.append(
            {
                "indices": subset,
                "leaves": [values[v] for v in multi.value_indices],  # JS takes values, in proof order
                "proof": [_hex(p) for p in multi.proof],
                "proofFlags": multi.proof_flags,
            }
        )
    return {
        "encoding": list(encoding),
        "values": values,
        # JS verifies every proof; its own getProof is compared for a few (each costs a JS verify)
        "proofs": [[i, [_hex(p) for p in tree.proof(i)], k < 5] for k, i in enumerate(indices)],
        "multiproofs": multiproofs,
        "dump": tree.dump(values, encoding),
    }


def _check_merkle(cases: list[dict[str, Any]], roots: list[bytes]) -> None:
    for case, root, result in zip(cases, roots, _run("merkle_oracle.js", cases), strict=True):
        assert result["root"] == _hex(root)
        assert result["loadRoot"] == _hex(root)
        for (_, proof, compare), checked in zip(case["proofs"], result["proofs"], strict=True):
            assert checked["ok"]
            assert checked["js"] == (proof if compare else None)
        for multi, checked in zip(case["multiproofs"], result["multiproofs"], strict=True):
            assert checked["ok"]
            assert checked["js"] == {k: multi[k] for k in ("leaves", "proof", "proofFlags")}


def test_field_trees_match_openzeppelin() -> None:
    rng = random.Random(20240501)
    cases, roots = [], []
    for _ in range(110):
        fields = {_text(rng, _KEY, 1, 8): _node(rng, 0) for _ in range(rng.randint(1, 12))}
        if rng.random() < 0.1:
            fields = {"only": _scalar(rng)}  # single-leaf trees: root = leaf hash
        leaves = make_leaves(fields, salt_source=rng.randbytes)
        if not leaves:  # a set of empty containers has no leaves
            continue
        values = [[_hex(leaf.salt), leaf.path, leaf.value] for leaf in leaves]
        tree = MerkleTree([leaf.hash() for leaf in leaves])
        cases.append(_proof_case(tree, values, FIELD_LEAF_ENCODING, rng, max_proofs=50))
        roots.append(tree.root)
    assert len(cases) >= 100
    _check_merkle(cases, roots)


def test_batch_trees_match_openzeppelin() -> None:
    rng = random.Random(8785)
    cases, roots = [], []
    # sizes log-uniform over 1..300: every tree shape is hit, at a third of the JS hashing time
    for size in [1, 2, 3, 299, 300] + [round(math.exp(rng.uniform(0, math.log(300)))) for _ in range(100)]:
        digests = [rng.randbytes(32) for _ in range(size)]
        tree = batch_tree(digests)
        values = [[_hex(d), str(i)] for i, d in enumerate(digests)]
        cases.append(_proof_case(tree, values, BATCH_LEAF_ENCODING, rng, max_proofs=20))
        roots.append(tree.root)
    _check_merkle(cases, roots)


def test_seals_recover_in_ethers() -> None:
    rng = random.Random(712)
    cases, expected = [], []
    for i in range(150):
        key = rng.randrange(1, N).to_bytes(32, "big")
        chain_id = rng.choice([1, 11155111, 31337, rng.randint(1, 2**64)])
        contract = to_checksum_address(rng.randbytes(20))
        if i % 3 == 0:
            contract = contract.lower()
        digest = rng.randbytes(32)
        signature = sign_seal(key, chain_id, contract, digest)
        cases.append(
            {
                "chainId": str(chain_id),
                "verifyingContract": contract,
                "digest": _hex(digest),
                "signature": _hex(signature),
            }
        )
        expected.append((address_of(key), _hex(seal_hash(chain_id, contract, digest))))
    for (address, digest_hash), result in zip(expected, _run("seal_oracle.js", cases), strict=True):
        assert result["hash"] == digest_hash
        assert result["recovered"] == address
