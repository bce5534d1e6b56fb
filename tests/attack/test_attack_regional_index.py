"""Attacks on the regional index (issue 14, `ECERT_VERIFIER_INDEX_REGIONS`), on the session anvil.

A regional index holds the trust data whole and only its regions' batches and statuses
(`registry.indexer.indexer.Indexer._in_scope`); another region's certificate is asked of the
chain. The chain answers only about now (`RegistryReader.facts` refuses `at`), so a question
"as of T" (`POST /v1/verifications` with `at`) is the index's alone: for a batch it does not
hold because of its scope, "not anchored" is a wrong INVALID (NOT_ANCHORED).

Holds: a status row or batch revocation of a kept batch, in the anchor's range or in a later
one, is kept; another region's are not."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parents[1]))

from anchored import anchor
from conftest import Roles

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.errors import EcertError
from registry.indexer import History, Indexer, make_engine
from registry.indexer.store import BatchRevocation, StatusChange, table
from verifier.chain_reader import RegistryReader
from verifier.readers import HeadTracker, IndexReader

pytestmark = pytest.mark.chain
ZHEJIANG = ["330000"]


def rows(engine: Any, model: Any, root: bytes) -> int:
    t = table(model)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t).where(t.c.root == root)).scalar_one())


def test_another_regions_certificate_as_of_a_time_is_never_not_anchored_at_a_regional_node(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    guangdong = anchor(registry, roles.other_agency, 2, "regional at gd")
    engine = make_engine(f"sqlite:///{tmp_path / 'regional.db'}")
    Indexer(
        chain, registry, engine, confirmations=0, start_block=deployment.block_number, regions=ZHEJIANG
    ).sync()
    head = HeadTracker(chain, poll_s=0.1)
    try:
        reader = IndexReader(History(engine), RegistryReader(registry), head, max_lag=5)
        now = reader.facts(guangdong.shown(0), roles.other_agency.address)
        assert now.source == "chain" and now.inspection.anchored  # asked of the chain: right
        at = int(time.time()) + 60  # "as of" a minute from now: the batch was long anchored then
        try:
            then = reader.facts(guangdong.shown(0), roles.other_agency.address, at=at)
        except EcertError:
            return  # "cannot say" is an honest answer
        assert then.inspection.anchored, f"{then.source} at block {then.block_number}: not anchored"
    finally:
        head.close()
        engine.dispose()


def test_a_regional_index_keeps_its_batches_statuses_in_any_range_and_drops_the_others(
    chain: ChainClient, registry: CertificateRegistry, roles: Roles, deployment: Any, tmp_path: Path
) -> None:
    """Ranges of one block: the anchor, its status changes and a batch revocation each land in
    their own range (the kept set is read back from the database), and in one range together."""
    zhejiang = anchor(registry, roles.agency, 3, "regional ranges zj")
    guangdong = anchor(registry, roles.other_agency, 3, "regional ranges gd")
    registry.set_status(roles.agency, zhejiang.tree.root, 1, Status.SUSPENDED, 2)
    registry.set_status(roles.other_agency, guangdong.tree.root, 1, Status.SUSPENDED, 2)
    registry.revoke_batch(roles.agency, zhejiang.tree.root, 3)
    registry.revoke_batch(roles.other_agency, guangdong.tree.root, 3)
    start = deployment.block_number
    for name, range_blocks in (("one-block", 1), ("whole", 2000)):
        engine = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
        Indexer(
            chain, registry, engine, confirmations=0, start_block=start, range_blocks=range_blocks, regions=ZHEJIANG
        ).sync()  # fmt: skip
        assert rows(engine, StatusChange, zhejiang.tree.root) == 1, name
        assert rows(engine, BatchRevocation, zhejiang.tree.root) == 1, name
        assert rows(engine, StatusChange, guangdong.tree.root) == 0, name
        assert rows(engine, BatchRevocation, guangdong.tree.root) == 0, name
        history = History(engine)
        assert history.certificate_status_at(zhejiang.tree.root, 0).status is Status.REVOKED, name
        engine.dispose()
