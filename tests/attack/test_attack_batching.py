"""Attacks on adaptive batching (issue 14, `issuer.anchoring.WorkerSettings.seal_due`), on a
real SQLite database.

The worker remembers when it last cut each agency's batch (`_agency_sealed_at`) by its wall
clock. When that clock is set back (NTP stepping a drifted clock, an operator fixing the time
zone), "since the agency's last batch" is negative until the clock catches up with the old
reading: every trickle batch of that agency waits the full step, an hour for an hour, instead
of `batch_max_wait_s`. The certificates' own window is not the point here: they are made after
the step, so their age is right.

Holds: an agency with a steady trickle on one type never starves its lone request on another
type; the lone one goes with the trickle's next batch, inside `batch_max_wait_s` plus the window.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the helpers of tests/unit

from test_anchoring_seal import AGENCY, TYPE, add_pending, issuer_database

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.models import Batch, Certificate, Job

OTHER_TYPE = "11100000000013338W002"
REGISTRY: Any = types.SimpleNamespace(client=None)  # sealing never reaches the chain
SETTINGS = WorkerSettings(batch_size=1_000, batch_window_s=1.0, batch_max_wait_s=2.0, batch_min_size=100)


@pytest.fixture
def made(tmp_path: Path) -> sessionmaker[Session]:
    return issuer_database(tmp_path)


def batches(made: sessionmaker[Session]) -> list[tuple[str, int]]:
    with made() as session:
        return [(t, c) for t, c in session.execute(select(Batch.type_code, Batch.count).order_by(Batch.id))]


def test_a_clock_set_back_does_not_hold_a_trickle_for_the_step(made: sessionmaker[Session]) -> None:
    offset = dt.timedelta(hours=1)  # the worker's clock runs an hour fast …
    worker = AnchoringWorker(
        made, REGISTRY, lambda _code: Account.create(), SETTINGS,
        clock=lambda: dt.datetime.now(dt.UTC) + offset,
    )  # fmt: skip
    add_pending(made, "before the step", 1)
    worker.seal_pending()
    assert len(batches(made)) == 1  # the agency's first batch
    offset = dt.timedelta()  # … and is set right
    add_pending(made, "after the step", 1)
    time.sleep(SETTINGS.batch_max_wait_s + 0.5)  # longer than the window and the max wait, really
    worker.seal_pending()
    assert len(batches(made)) == 2, "the request waits for the clock to catch up with the old reading"


def add_of_type(made: sessionmaker[Session], job: str, type_code: str) -> None:
    """One pending certificate of `type_code` (as `add_pending` makes them, of its own job)."""
    with made.begin() as session:
        session.add(Job(id=job, agency_code=AGENCY, type_code=type_code, request_hash="0" * 64, total=1))
        session.flush()
        session.add(
            Certificate(
                identifier=f"{job}-0", agency_code=AGENCY, type_code=type_code, job_id=job, position=1,
                sealed_fields=b"", digest=os.urandom(32), seal=os.urandom(65),
            )
        )  # fmt: skip


def test_a_trickle_on_one_type_never_starves_a_lone_request_on_another(made: sessionmaker[Session]) -> None:
    offset = dt.timedelta()
    worker = AnchoringWorker(
        made, REGISTRY, lambda _code: Account.create(), SETTINGS,
        clock=lambda: dt.datetime.now(dt.UTC) + offset,
    )  # fmt: skip
    add_of_type(made, "trickle 0", TYPE)
    offset = dt.timedelta(seconds=5)
    worker.seal_pending()  # the agency's first batch
    add_of_type(made, "lone", OTHER_TYPE)
    waited = 0
    for waited in range(1, 12):  # a new trickle certificate every second of worker time
        add_of_type(made, f"trickle {waited}", TYPE)
        offset = dt.timedelta(seconds=5 + waited)
        worker.seal_pending()
        if OTHER_TYPE in {type_code for type_code, _ in batches(made)}:
            break
    assert OTHER_TYPE in {type_code for type_code, _ in batches(made)}
    assert waited <= SETTINGS.batch_max_wait_s + SETTINGS.batch_window_s + 1
