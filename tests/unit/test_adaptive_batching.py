"""Adaptive batching (issue 14 point 3): under a trickle an agency makes at most one anchoring
transaction per `batch_max_wait_s`; a batch of `batch_min_size` or a full one goes at once; a
lone request after a quiet spell waits only the window. On a real SQLite database; the worker's
clock is moved, the certificates' own times are real."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from test_anchoring_seal import add_pending, issuer_database

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.models import Batch, Certificate

SETTINGS = WorkerSettings(batch_size=1_000, batch_window_s=1.0, batch_max_wait_s=10.0, batch_min_size=100)
# The worker's: SQLite keeps a certificate's time to the second, so a window of 3 s is surely
# not over at the offset 0, however slow the machine.
WORKER_SETTINGS = WorkerSettings(
    batch_size=1_000, batch_window_s=3.0, batch_max_wait_s=10.0, batch_min_size=100
)


@pytest.mark.parametrize(
    ("pending", "oldest_age", "since_sealed", "due"),
    [
        (1, 0.5, float("inf"), False),  # inside the window: wait for others
        (1, 1.0, float("inf"), True),  # the agency's first batch (or after a restart): the window only
        (1, 5.0, 9.9, False),  # a trickle: the agency sealed 9.9 s ago
        (1, 5.0, 10.0, True),  # … and 10 s ago: one more transaction
        (99, 1.0, 0.0, False),
        (100, 1.0, 0.0, True),  # a batch of the minimum size goes once its window is over
        (100, 0.5, 0.0, False),
        (1_000, 0.0, 0.0, True),  # a full batch goes at once
    ],
)
def test_when_a_batch_is_due(pending: int, oldest_age: float, since_sealed: float, due: bool) -> None:
    assert SETTINGS.seal_due(pending, oldest_age, since_sealed) is due


def test_no_max_wait_cuts_every_window_as_before() -> None:
    before = WorkerSettings(batch_window_s=1.0, batch_max_wait_s=0)
    assert before.seal_due(1, 1.0, 0.0) and not before.seal_due(1, 0.9, 0.0)


@pytest.fixture
def made(tmp_path: Path) -> sessionmaker[Session]:
    return issuer_database(tmp_path)


def test_a_trickle_is_cut_once_per_max_wait_and_bulk_at_once(made: sessionmaker[Session]) -> None:
    offset = dt.timedelta()
    worker = AnchoringWorker(
        made, types.SimpleNamespace(client=None), lambda _code: Account.create(), WORKER_SETTINGS,
        clock=lambda: dt.datetime.now(dt.UTC) + offset,
    )  # fmt: skip

    def sealed_after(seconds: float) -> list[int]:
        nonlocal offset
        offset = dt.timedelta(seconds=seconds)
        worker.seal_pending()
        with made() as session:
            return list(session.scalars(select(Batch.count).order_by(Batch.id)))

    add_pending(made, "first", 1)
    assert sealed_after(0) == []  # its window is not over
    assert sealed_after(5) == [1]  # the agency's first batch: the window is enough
    add_pending(made, "second", 1)
    add_pending(made, "third", 1)
    assert sealed_after(8) == [1]  # a trickle: 3 s since the last batch, under 10 s
    assert sealed_after(14) == [1]
    assert sealed_after(16) == [1, 2]  # 11 s since: both go in one transaction
    add_pending(made, "bulk", 150)
    assert sealed_after(19) == [1, 2, 150]  # the minimum size goes once its window is over
    with made() as session:
        pending = select(func.count()).select_from(Certificate).where(Certificate.state == "pending")
        assert session.scalar(pending) == 0


def test_a_flush_seals_a_trickle_at_once(made: sessionmaker[Session]) -> None:
    """`ecert issue` waits for its own certificates: it flushes, whatever the batching."""
    worker = AnchoringWorker(
        made, types.SimpleNamespace(client=None), lambda _code: Account.create(), SETTINGS
    )
    add_pending(made, "first", 1)
    worker.seal_pending(flush=True)
    add_pending(made, "second", 1)
    assert worker.seal_pending(flush=True) == 1
    with made() as session:
        assert list(session.scalars(select(Batch.count))) == [1, 1]
