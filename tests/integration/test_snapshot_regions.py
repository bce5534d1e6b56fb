"""Region snapshots and deltas (issue 14 point 5), on the session anvil and a real index: a
region's snapshot holds only its batches and says "not covered" for another region's; a delta
since a snapshot brings the holder to exactly what a fresh snapshot says; deltas chain by hash
and a verifier refuses one that does not follow what it holds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from anchored import anchor, shown
from conftest import Roles

from registry.certificate.merkle import batch_tree
from registry.contracts.certificate_registry import Status
from registry.errors import ChainError
from registry.indexer import NOT_ANCHORED, Indexer, make_engine
from verifier.offline import SnapshotReader
from verifier.receipts import ReceiptSigner
from verifier.snapshot import (
    SnapshotInvalid,
    TrustSnapshot,
    parse_snapshot,
    save_snapshot,
    sign_snapshot,
    snapshot_body,
)
from verifier.snapshot_delta import DeltaUnchained, apply_delta, delta_body, parse_delta

pytestmark = pytest.mark.chain
ZHEJIANG = ["330000"]


def signed_bytes(body: dict[str, Any], signer: ReceiptSigner, path: Path) -> bytes:
    return save_snapshot(sign_snapshot(body, signer), path).read_bytes()


def same_facts(held: TrustSnapshot, fresh: TrustSnapshot) -> None:
    assert held.block_number == fresh.block_number and held.scope == fresh.scope
    assert held.trust.agencies == fresh.trust.agencies and held.trust.keys == fresh.trust.keys
    assert held.trust.national_keys == fresh.trust.national_keys
    assert held.trust.authorities == fresh.trust.authorities
    assert set(held.batches) == set(fresh.batches)
    for root, batch in fresh.batches.items():
        mine = held.batches[root]
        assert [mine.status_now(i) for i in range(batch.count)] == [
            batch.status_now(i) for i in range(batch.count)
        ]


def test_a_region_snapshot_and_its_deltas(chain, registry, roles: Roles, deployment, tmp_path: Path) -> None:
    zhejiang = anchor(registry, roles.agency, 4, "zj region one")
    guangdong = anchor(registry, roles.other_agency, 3, "gd region one")
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    indexer = Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number)
    indexer.sync()
    signer = ReceiptSigner.generate()
    common = {"chain_id": chain.chain_id, "registry": registry.address, "region": "330000"}
    key = signer.public_key_pem()

    whole_bytes = signed_bytes(snapshot_body(engine, **common), signer, tmp_path / "whole.json.gz")
    base_bytes = signed_bytes(
        snapshot_body(engine, **common, regions=ZHEJIANG), signer, tmp_path / "zj.json.gz"
    )
    whole, base = parse_snapshot(whole_bytes, key), parse_snapshot(base_bytes, key)
    assert base.scope == ("330000",) and whole.scope == ()
    assert zhejiang.root in base.batches and guangdong.root not in base.batches
    assert {zhejiang.root, guangdong.root} <= set(whole.batches)
    assert len(base.trust.agencies) == len(whole.trust.agencies)  # trust data stays whole

    reader = SnapshotReader(base)
    ok = reader.facts(
        shown(zhejiang.root, 0, zhejiang.digests[0], zhejiang.tree.proof(0)), roles.agency.address
    )
    assert ok.inspection.anchored and ok.inspection.proof_valid
    with pytest.raises(ChainError) as elsewhere:  # another region's batch: not "not anchored"
        reader.facts(
            shown(guangdong.root, 0, guangdong.digests[0], guangdong.tree.proof(0)),
            roles.other_agency.address,
        )
    assert elsewhere.value.code == "SNAPSHOT_OUT_OF_SCOPE" and "440100" in elsewhere.value.message
    unknown = batch_tree([b"\x07" * 32])  # a root nobody anchored, sealed by a Zhejiang key
    missing = reader.facts(shown(unknown.root, 0, b"\x07" * 32, unknown.proof(0)), roles.agency.address)
    assert missing.inspection == NOT_ANCHORED

    # a day passes: Zhejiang anchors and suspends, Guangdong anchors
    later = anchor(registry, roles.agency, 2, "zj region two")
    registry.set_status(roles.agency, zhejiang.root, 1, Status.SUSPENDED, 2)
    anchor(registry, roles.other_agency, 5, "gd region two")
    indexer.sync()
    base_body = json.loads(gzip.decompress(base_bytes))["snapshot"]
    first_body = delta_body(engine, base_body, **common)
    assert {b["root"] for b in first_body["batches"]} == {"0x" + later.root.hex(), "0x" + zhejiang.root.hex()}
    first_bytes = signed_bytes(first_body, signer, tmp_path / "delta-1.json.gz")
    first = parse_delta(first_bytes, key)
    held = apply_delta(base, first)
    fresh = parse_snapshot(
        signed_bytes(snapshot_body(engine, **common, regions=ZHEJIANG), signer, tmp_path / "zj2.json.gz"), key
    )
    same_facts(held, fresh)
    suspended = SnapshotReader(held).facts(
        shown(zhejiang.root, 1, zhejiang.digests[1], zhejiang.tree.proof(1)), roles.agency.address
    )
    assert suspended.inspection.status is Status.SUSPENDED and suspended.block_number == fresh.block_number
    assert len(first_bytes) < len(base_bytes) < len(whole_bytes)

    # the next day's delta chains to the first one, not to the snapshot
    registry.set_status(roles.agency, zhejiang.root, 1, Status.ACTIVE, 1)
    indexer.sync()
    second_body = delta_body(engine, json.loads(gzip.decompress(first_bytes))["snapshot"], **common)
    second = parse_delta(signed_bytes(second_body, signer, tmp_path / "delta-2.json.gz"), key)
    assert [b["root"] for b in second["batches"]] == ["0x" + zhejiang.root.hex()] and not second["agencies"]
    same_facts(
        apply_delta(held, second),
        parse_snapshot(
            signed_bytes(snapshot_body(engine, **common, regions=ZHEJIANG), signer, tmp_path / "zj3.json.gz"),
            key,
        ),
    )
    for wrong, held_now in ((second, base), (first, held)):  # a day skipped; a day applied twice
        with pytest.raises(DeltaUnchained):
            apply_delta(held_now, wrong)
    with pytest.raises(DeltaUnchained):  # a delta of the region's snapshot on the whole registry's
        apply_delta(whole, first)
    with pytest.raises(SnapshotInvalid):  # another node's key
        parse_delta(first_bytes, ReceiptSigner.generate().public_key_pem())
    with pytest.raises(SnapshotInvalid):  # a snapshot is not a delta
        parse_delta(base_bytes, key)
    forged = json.loads(gzip.decompress(first_bytes))
    forged["snapshot"]["batches"] = []
    with pytest.raises(SnapshotInvalid):
        parse_delta(json.dumps(forged).encode(), key)
    engine.dispose()


def test_a_delta_of_a_reorganised_base_is_refused(
    chain, registry, roles: Roles, deployment, tmp_path: Path
) -> None:
    anchor(registry, roles.agency, 1, "before the reorg")
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number).sync()
    common = {"chain_id": chain.chain_id, "registry": registry.address, "region": "330000"}
    base = snapshot_body(engine, **common, regions=ZHEJIANG)
    base["block"]["hash"] = "0x" + "00" * 32  # the counter's base names a block the chain no longer has
    with pytest.raises(DeltaUnchained, match="reorganised"):
        delta_body(engine, base, **common)
    with pytest.raises(DeltaUnchained, match="another chain"):
        delta_body(engine, base, **{**common, "chain_id": 1})
    engine.dispose()
