"""A process killed (SIGKILL) in the middle of its first migration of a SQLite database leaves
nothing half made: the next start migrates to the head. (Python's sqlite3 committed each CREATE
TABLE on its own, so such a kill left tables without their version row, and every later start
failed with "table … already exists": `registry.database._sqlite_ddl_transaction`.)"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from issuer.db import MIGRATIONS

READY = "imported"
SCRIPT = """
import sys
from registry.database import make_engine
from issuer.db import migrate
engine = make_engine(sys.argv[1])
print("imported", flush=True)
migrate(engine)
"""


def migration(url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, url], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == READY
    return process


def head() -> str:
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("0*.py"))


def test_a_kill_during_the_first_migration_leaves_a_database_the_next_start_migrates(tmp_path: Path) -> None:
    timed = migration(f"sqlite:///{tmp_path / 'timed.sqlite'}")
    started = time.monotonic()  # from the imports done: the migrations alone
    assert timed.wait(timeout=60) == 0
    took = time.monotonic() - started
    rng = random.Random()
    killed = 0
    for attempt in range(12):
        database = tmp_path / f"issuer-{attempt}.sqlite"
        process = migration(f"sqlite:///{database}")
        time.sleep(rng.uniform(0.0, took))  # somewhere inside the migrations
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed += 1
        assert migration(f"sqlite:///{database}").wait(timeout=60) == 0, (
            f"attempt {attempt}: no start after the kill"
        )
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT version_num FROM alembic_version_issuer").fetchall() == [(head(),)]
    assert killed >= 1, "no migration was killed: the test proved nothing"
