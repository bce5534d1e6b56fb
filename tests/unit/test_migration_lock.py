"""Processes that open one new database at the same moment (a service starting while a CLI
command runs) migrate it one at a time: none fails on a version table the other just made."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import postgres_database
from sqlalchemy import inspect

from registry.database import make_engine

PROCESSES = 6
MIGRATE = """
import sys, time
from registry.database import make_engine
from issuer.db import migrate
from verifier.db import migrate as migrate_verifier
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start together (late ones at once)
migrate(engine)
migrate_verifier(engine)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("set ECERT_TEST_POSTGRES_URL to run on PostgreSQL")
    with postgres_database(admin) as fresh:
        yield fresh


def test_processes_migrating_one_new_database_together_all_succeed(url: str) -> None:
    import time

    start = f"{time.time() + 5:.3f}"
    runs = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url, start], stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    failures = [err for run in runs if (err := run.communicate(timeout=120)[1]) and run.returncode != 0]
    assert not failures, failures[0][-2000:]
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {"alembic_version_issuer", "alembic_version_verifier", "certificates", "shares"} <= tables
