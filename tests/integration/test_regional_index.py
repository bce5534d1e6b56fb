"""A regional node's index (issue 14 point 4), on the session anvil: it holds the trust data whole
and only its region's batches and statuses; another region's certificate is asked of the chain
when verified and the answer kept while the index itself may lag; an index keeps its scope."""

from __future__ import annotations

from pathlib import Path

import pytest
from anchored import anchor, shown
from conftest import Roles
from sqlalchemy import func, select

from registry.contracts.certificate_registry import Status
from registry.errors import ChainUnavailable, ConfigError, EcertError
from registry.indexer import History, Indexer, make_engine
from registry.indexer.errors import IndexMismatch
from registry.indexer.store import Agency, Batch, StatusChange, table
from registry.settings import Settings
from registry.workspace import Workspace
from verifier.chain_reader import RegistryReader
from verifier.readers import HeadTracker, IndexReader
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings
from verifier.snapshot import snapshot_body

pytestmark = pytest.mark.chain


def count(engine, model, **where) -> int:  # type: ignore[no-untyped-def]
    t = table(model)
    query = select(func.count()).select_from(t)
    for column, value in where.items():
        query = query.where(t.c[column] == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_a_regional_index_holds_its_region_and_asks_the_chain_for_the_rest(
    chain, registry, roles: Roles, deployment, tmp_path: Path
) -> None:
    zhejiang = anchor(registry, roles.agency, 3, "regional zj")
    guangdong = anchor(registry, roles.other_agency, 2, "regional gd")
    registry.set_status(roles.agency, zhejiang.root, 1, Status.SUSPENDED, 2)
    registry.set_status(roles.other_agency, guangdong.root, 0, Status.SUSPENDED, 2)
    regional = make_engine(f"sqlite:///{tmp_path / 'regional.db'}")
    whole = make_engine(f"sqlite:///{tmp_path / 'whole.db'}")
    start = deployment.block_number
    Indexer(chain, registry, regional, confirmations=0, start_block=start, regions=["330000"]).sync()
    Indexer(chain, registry, whole, confirmations=0, start_block=start).sync()

    assert count(regional, Agency) == count(whole, Agency) > 0  # trust data whole
    assert (
        count(regional, Batch, root=zhejiang.root) == 1 and count(regional, Batch, root=guangdong.root) == 0
    )
    assert count(regional, StatusChange, root=zhejiang.root) == 1
    assert count(regional, StatusChange, root=guangdong.root) == 0
    assert count(regional, Batch) < count(whole, Batch)

    head = HeadTracker(chain, poll_s=0.1)
    try:
        reader = IndexReader(History(regional), RegistryReader(registry), head, max_lag=5)
        own = reader.facts(
            shown(zhejiang.root, 1, zhejiang.digests[1], zhejiang.tree.proof(1)), roles.agency.address
        )
        assert own.source == "index" and own.inspection.status is Status.SUSPENDED
        asked = shown(guangdong.root, 0, guangdong.digests[0], guangdong.tree.proof(0))
        first = reader.facts(asked, roles.other_agency.address)
        assert (
            first.source == "chain"
            and first.inspection.anchored
            and first.inspection.status is Status.SUSPENDED
        )
        assert reader.facts(asked, roles.other_agency.address) is first  # kept: no second call
        other_index = shown(guangdong.root, 1, guangdong.digests[1], guangdong.tree.proof(1))
        assert reader.facts(other_index, roles.other_agency.address) is not first  # another question
        for _ in range(6):  # the chain moves past what the index may lag: asked again
            registry.set_status(roles.agency, zhejiang.root, 2, Status.SUSPENDED, 2)
        head._poll()
        again = reader.facts(asked, roles.other_agency.address)
        assert again is not first and again.block_number > first.block_number
        unknown = shown(b"\x09" * 32, 0, b"\x09" * 32, [])
        assert not reader.facts(unknown, roles.agency.address).inspection.anchored  # a "no" is not kept
        with pytest.raises(ChainUnavailable):  # neither the index nor the chain ever said yes
            reader._last_known(unknown, roles.agency.address)
        last = reader._last_known(asked, roles.other_agency.address)  # the chain's last answer
        assert last.source == "lastKnown" and last.inspection.anchored and last.age_s is not None
    finally:
        head.close()

    common = {"chain_id": chain.chain_id, "registry": registry.address, "region": "330000"}
    body = snapshot_body(regional, **common)  # a regional index snapshots its own regions
    assert body["scope"] == {"regions": ["330000"]} and "0x" + guangdong.root.hex() not in str(
        body["batches"]
    )
    assert snapshot_body(regional, **common, regions=["330100"])["scope"] == {"regions": ["330100"]}
    with pytest.raises(EcertError, match="cannot snapshot 440000"):
        snapshot_body(regional, **common, regions=["440000"])

    with pytest.raises(IndexMismatch, match="330000"):
        Indexer(chain, registry, regional, confirmations=0, start_block=start, regions=["440000"])
    with pytest.raises(IndexMismatch):
        Indexer(chain, registry, whole, confirmations=0, start_block=start, regions=["330000"])
    assert Indexer(chain, registry, regional, confirmations=0, start_block=start).regions == ("330000",)
    regional.dispose()
    whole.dispose()


def test_a_node_keeps_the_scope_its_index_was_made_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ECERT_VERIFIER_INDEX_REGIONS` (a JSON list) makes a regional node; restarting it with
    another scope is refused at start, not discovered as missing batches."""
    workspace = Workspace(Settings(home=tmp_path / ".ecert"))
    monkeypatch.setenv("ECERT_VERIFIER_INDEX_REGIONS", '["330000"]')
    settings = VerifierSettings(region="330000")
    assert settings.index_regions == ["330000"]
    VerifierRuntime.open(workspace, settings).close()
    VerifierRuntime.open(workspace, VerifierSettings(region="330000")).close()  # the same scope again
    monkeypatch.setenv("ECERT_VERIFIER_INDEX_REGIONS", '["440000"]')
    with pytest.raises(IndexMismatch, match="not of 440000"):
        VerifierRuntime.open(workspace, VerifierSettings(region="330000"))
    monkeypatch.setenv("ECERT_VERIFIER_INDEX_REGIONS", '["33"]')
    with pytest.raises(ConfigError):  # not a region pattern
        VerifierRuntime.open(workspace, VerifierSettings(region="330000"))
