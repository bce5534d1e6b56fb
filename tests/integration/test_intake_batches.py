"""Batches cut at intake (issue 14 point 2): a bulk job is stored already in its batches, so each
certificate row is written once; the worker anchors them as it anchors its own; a job below the
minimum waits for the worker, as before. On the session anvil, a real SQLite issuer database,
and the verifier's pipeline reading the chain."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from conftest import ZJ_AGENCY_CODE, Roles
from sqlalchemy import func, select

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.benchmark import make_records
from issuer.db import make_engine, migrate, sessions
from issuer.intake_batches import IntakeBatching
from issuer.models import Batch, Certificate
from issuer.service import IssuerService
from registry.certificate.merkle import batch_tree
from registry.contracts.certificate_registry import CertificateRegistry
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation

pytestmark = pytest.mark.chain
TYPE = "11100000000013338W001"


def counted(counts: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in counts.items() if n}


def test_a_bulk_job_is_stored_in_its_batches_and_anchored_as_they_are(
    tmp_path: Path, registry: CertificateRegistry, roles: Roles
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    service = IssuerService(
        made, secrets.token_bytes(32), chain_id=registry.client.chain_id, registry_address=registry.address,
        signer_for=lambda _code: roles.agency, processes=1, intake_batching=IntakeBatching(size=100, minimum=50),
    )  # fmt: skip
    service.ensure_agency(ZJ_AGENCY_CODE, "杭州市市场监督管理局", "330100")
    bulk = service.submit(ZJ_AGENCY_CODE, TYPE, make_records(250), type_name="营业执照")
    few = service.submit(ZJ_AGENCY_CODE, TYPE, make_records(3, seed=9), type_name="营业执照")
    assert counted(bulk.counts) == {"sealed": 250} and counted(few.counts) == {"pending": 3}
    with made() as session:
        batches = session.execute(select(Batch.id, Batch.root, Batch.count).order_by(Batch.id)).all()
        assert [count for _, _, count in batches] == [100, 100, 50]
        for batch_id, root, count in batches:  # the root the worker would compute, in index order
            digests = session.scalars(
                select(Certificate.digest)
                .where(Certificate.batch_id == batch_id)
                .order_by(Certificate.batch_index)
            ).all()
            indexes = session.scalars(
                select(Certificate.batch_index).where(Certificate.batch_id == batch_id)
            ).all()
            assert sorted(indexes) == list(range(count)) and batch_tree(digests).root == root
        unbatched = select(func.count()).select_from(Certificate).where(Certificate.batch_id.is_(None))
        assert session.scalar(unbatched) == 3

    worker = AnchoringWorker(made, registry, lambda _code: roles.agency, WorkerSettings(batch_window_s=0))
    worker.run_until_idle(timeout_s=300, poll_s=0.01)
    assert counted(service.job(ZJ_AGENCY_CODE, bulk.id).counts) == {"confirmed": 250}
    assert counted(service.job(ZJ_AGENCY_CODE, few.id).counts) == {"confirmed": 3}
    with made() as session:  # retention: a confirmed batch keeps its transaction's hash, not its bytes
        kept = session.execute(select(Batch.state, Batch.tx_hash, Batch.raw_tx)).all()
    assert len(kept) == 4 and all(state == "confirmed" and tx and raw is None for state, tx, raw in kept)
    reader = RegistryReader(registry)
    for identifier in (bulk.identifiers[0], bulk.identifiers[149], bulk.identifiers[-1], few.identifiers[0]):
        package = service.package(ZJ_AGENCY_CODE, identifier)
        assert verify_presentation(package, reader).verdict is Outcome.VALID, identifier
    engine.dispose()
