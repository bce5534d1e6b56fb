"""Attacks on trust snapshot deltas (issue 14, `verifier.snapshot_delta`).

On the session anvil: a delta is computed from the node's index "as of the base's block" and
"now", and refused when the chain was reorganised under the base (`delta_body` compares the
base block's hash with the index's). But the index records only some blocks (`idx_blocks`: a
range's ends and blocks with events); after a reorg the re-indexed range need not record the
base's block, the comparison is skipped, and "as of the base" is read from the *new* chain. A
batch whose anchor the reorg took away is then in the holder's snapshot and in neither side of
the delta: `removed` never names it, and the counter keeps verifying a certificate the chain no
longer has as VALID offline.

No chain: signed but malformed deltas (every key given a wrong type, dropped, or an entry
replaced) give SNAPSHOT_INVALID or SNAPSHOT_DELTA_UNCHAINED, never another exception; an unsigned
key added beside a signed delta is refused."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account

sys.path.insert(0, str(Path(__file__).parents[1]))

from anchored import anchor
from conftest import GD_AGENCY_CODE, TYPE_BUSINESS_LICENCE, Roles, fund

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.errors import EcertError
from registry.indexer import Indexer, make_engine
from registry.indexer.records import batch_record
from verifier.offline import SnapshotReader
from verifier.receipts import ReceiptSigner
from verifier.snapshot import _batch_json, parse_snapshot, save_snapshot, sign_snapshot, snapshot_body
from verifier.snapshot_delta import apply_delta, delta_body, digest_of, parse_delta

ZHEJIANG = ["330000"]
AGENCY = "11330100002493028E"


def rpc(chain: ChainClient, method: str, *params: Any) -> Any:
    return chain.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


@pytest.mark.chain
def test_a_delta_after_a_reorg_never_leaves_a_lost_batch_with_the_holder(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    indexer = Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number)
    indexer.sync()
    fork_point = rpc(chain, "evm_snapshot")
    for _ in range(3):
        rpc(chain, "evm_mine")
    lost = anchor(registry, roles.agency, 2, "delta reorg lost")
    indexer.sync()
    signer = ReceiptSigner.generate()
    key = signer.public_key_pem()
    common: dict[str, Any] = {"chain_id": chain.chain_id, "registry": registry.address, "region": "330000"}
    block_time = lambda n: int(chain.w3.eth.get_block(n)["timestamp"])  # noqa: E731  # as `block_time_of`
    base_bytes = save_snapshot(
        sign_snapshot(snapshot_body(engine, **common, regions=ZHEJIANG), signer), tmp_path / "base.json.gz"
    ).read_bytes()
    held = parse_snapshot(base_bytes, key)
    assert lost.tree.root in held.batches

    rpc(chain, "evm_revert", fork_point)  # the anchor's block is gone …
    chain._held_nonces.clear()
    anchor(registry, roles.agency, 1, "delta reorg kept")  # … and another chain grows past it
    for _ in range(6):
        rpc(chain, "evm_mine")
    indexer.sync()
    assert not registry.inspect(
        lost.tree.root, 0, lost.digests[0], lost.tree.proof(0), roles.agency.address
    ).anchored

    try:
        body = delta_body(
            engine, json.loads(gzip.decompress(base_bytes))["snapshot"], **common, block_time=block_time
        )
    except EcertError:
        return  # refused: the counter takes a full snapshot
    moved = apply_delta(
        held,
        parse_delta(save_snapshot(sign_snapshot(body, signer), tmp_path / "d.json.gz").read_bytes(), key),
    )
    assert lost.tree.root not in moved.batches, "the delta left a batch the chain no longer has"
    engine.dispose()


@pytest.mark.chain
def test_a_region_snapshot_never_says_not_anchored_of_another_regions_new_key(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    """Guangdong adds a sealing key after Zhejiang's counters took their snapshot and anchors with
    it: the Zhejiang snapshot cannot know that certificate's region, so it must not call it "not
    anchored" (INVALID) but say it cannot answer, as it does for Guangdong's known keys."""
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    indexer = Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number)
    indexer.sync()
    signer = ReceiptSigner.generate()
    common: dict[str, Any] = {"chain_id": chain.chain_id, "registry": registry.address, "region": "330000"}
    held = parse_snapshot(
        save_snapshot(
            sign_snapshot(snapshot_body(engine, **common, regions=ZHEJIANG), signer), tmp_path / "zj.json.gz"
        ).read_bytes(),
        signer.public_key_pem(),
    )
    new_key = Account.create()
    fund(chain, new_key)
    registry.add_key(roles.other_agency, GD_AGENCY_CODE, new_key.address)
    guangdong = anchor(registry, new_key, 2, "region snapshot new gd key")
    assert registry.inspect(
        guangdong.tree.root, 0, guangdong.digests[0], guangdong.tree.proof(0), new_key.address
    ).anchored
    shown = SimpleNamespace(
        batch_root=guangdong.tree.root, batch_index=0, digest=guangdong.digests[0],
        batch_proof=guangdong.tree.proof(0),
    )  # fmt: skip
    try:
        facts = SnapshotReader(held).facts(shown, new_key.address)  # type: ignore[arg-type]
    except EcertError:
        return  # "this snapshot cannot say": the answer a region's snapshot owes
    assert facts.inspection.anchored, "another region's certificate called not anchored"
    engine.dispose()


# ─── no chain: malformed signed deltas ───────────────────────────────────────────────────

WRONG: list[Any] = [None, 1, -1, 1.5, "x", [], {}, [1], {"a": 1}, True, "0x12", [[1]], [{}], {"regions": [1]}]


@pytest.fixture(scope="module")
def held_and_delta() -> tuple[ReceiptSigner, Any, dict[str, Any]]:
    root = hashlib.sha256(b"delta attack root").digest()
    fields = {"root": root, "agency_code": AGENCY, "agency_index": 1, "key": "0x" + "11" * 20, "count": 5,
              "type_code": TYPE_BUSINESS_LICENCE, "anchored_at": 900, "block_number": 9, "log_index": 0, "tx_hash": b""}  # fmt: skip
    signer = ReceiptSigner.generate()
    body = {
        "format": "ecert-trust-snapshot", "version": 3, "scope": {"regions": ZHEJIANG}, "chainId": 31337,
        "registry": "0x" + "22" * 20, "block": {"number": 12, "hash": None, "time": 1000},
        "createdAt": "2026-01-01T00:00:00.000Z", "node": {"region": "330000"}, "authorities": [], "agencies": [],
        "keys": [], "nationalKeys": [], "batches": [_batch_json(batch_record(fields, []))],
    }  # fmt: skip
    signed = sign_snapshot(body, signer)
    held = parse_snapshot(json.dumps(signed).encode(), signer.public_key_pem())
    delta = {
        "format": "ecert-trust-delta", "version": 1, "base": {"block": 12, "digest": "0x" + digest_of(signed["snapshot"]).hex()},
        "scope": {"regions": ZHEJIANG}, "chainId": 31337, "registry": "0x" + "22" * 20,
        "block": {"number": 13, "hash": None, "time": 1001}, "createdAt": "2026-01-01T00:00:01.000Z",
        "node": {"region": "330000"}, "authorities": [], "agencies": [], "keys": [], "nationalKeys": [], "batches": [],
        "removed": {"agencies": [], "keys": [], "nationalKeys": [], "batches": []},
    }  # fmt: skip
    return signer, held, delta


def variants(delta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    made: list[tuple[str, dict[str, Any]]] = []
    for name in delta:
        if name == "node":  # the signer writes its key id in it: always an object
            continue
        made.extend((f"{name}={value!r}", {**copy.deepcopy(delta), name: value}) for value in WRONG)
        made.append((f"without {name}", {k: v for k, v in copy.deepcopy(delta).items() if k != name}))
    for name in ("base", "block", "removed"):
        for inner in delta[name]:
            for value in WRONG:
                changed = copy.deepcopy(delta)
                changed[name][inner] = value
                made.append((f"{name}.{inner}={value!r}", changed))
    for kind in ("agencies", "keys", "nationalKeys", "batches"):
        made.extend((f"{kind}=[{value!r}]", {**copy.deepcopy(delta), kind: [value]}) for value in WRONG)
    return made


def test_a_signed_but_malformed_delta_is_refused_with_a_code_never_a_traceback(held_and_delta: Any) -> None:
    signer, held, delta = held_and_delta
    key = signer.public_key_pem()
    applied = apply_delta(
        held, parse_delta(json.dumps(sign_snapshot(copy.deepcopy(delta), signer)).encode(), key)
    )
    assert applied.block_number == 13  # the well-formed one applies
    refused = 0
    for label, changed in variants(delta):
        data = json.dumps(sign_snapshot(changed, signer)).encode()
        try:
            apply_delta(held, parse_delta(data, key))
        except EcertError as exc:
            assert exc.code in ("SNAPSHOT_INVALID", "SNAPSHOT_DELTA_UNCHAINED"), (label, exc.code)
            refused += 1
    assert refused > 100  # most of them are refused (a few are harmless, e.g. an empty list as {})


def test_an_unsigned_key_beside_a_signed_delta_or_in_it_is_refused(held_and_delta: Any) -> None:
    signer, _, delta = held_and_delta
    key = signer.public_key_pem()
    signed = sign_snapshot(copy.deepcopy(delta), signer)
    for forged in (
        {**signed, "batches": [{"root": "0x" + "33" * 32}]},  # beside the body
        {
            **signed,
            "snapshot": {
                **signed["snapshot"],
                "removed": {**delta["removed"], "batches": ["0x" + "00" * 32]},
            },
        },
    ):
        with pytest.raises(EcertError) as caught:
            parse_delta(json.dumps(forged).encode(), key)
        assert caught.value.code == "SNAPSHOT_INVALID"
