"""Sealing pending certificates into batches (the anchoring worker's first step), on SQLite."""

from __future__ import annotations

import os
import threading
import types
from pathlib import Path

from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Batch, Certificate, Job

AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"


def issuer_database(tmp_path: Path) -> sessionmaker[Session]:
    """A migrated SQLite issuer database with the agency of `AGENCY`."""
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    factory = sessions(engine)
    with factory.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
    return factory


def add_pending(session_factory, job: str, count: int) -> None:
    with session_factory.begin() as session:
        if session.get(Job, job) is None:
            session.add(Job(id=job, agency_code=AGENCY, type_code=TYPE, request_hash="0" * 64, total=count))
            session.flush()
        start = session.scalar(select(func.count()).select_from(Certificate)) or 0
        session.add_all(
            Certificate(
                identifier=f"{job}-{start + i}",
                agency_code=AGENCY,
                type_code=TYPE,
                job_id=job,
                position=i + 1,
                sealed_fields=b"",
                digest=os.urandom(32),
                seal=os.urandom(65),
            )
            for i in range(count)
        )


def test_a_job_committed_while_sealing_is_sealed_along_and_the_step_ends(tmp_path: Path) -> None:
    """The group count is read first; a job that commits before the batch is taken makes the batch
    bigger than the count. That once left the count below zero and the worker looping forever."""
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    with made.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
    add_pending(made, "first", 2)
    worker = AnchoringWorker(
        made,
        types.SimpleNamespace(client=None),
        lambda _code: Account.create(),
        WorkerSettings(batch_window_s=0),
    )
    real_seal_one = worker._seal_one

    def seal_one_after_a_commit(agency_code: str, type_code: str) -> int:
        add_pending(made, "raced", 3)  # commits between the count and the batch
        worker._seal_one = real_seal_one
        return real_seal_one(agency_code, type_code)

    worker._seal_one = seal_one_after_a_commit
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(worker.seal_pending()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "seal_pending did not return"
    assert result == [1]
    with made() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Certificate).where(Certificate.state == "pending")
            )
            == 0
        )
        assert session.scalars(select(Batch.count)).all() == [5]
    engine.dispose()
