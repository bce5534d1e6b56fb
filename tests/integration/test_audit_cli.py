"""`ecert audit verify|export|anchor` as an operator runs them (subprocesses, a temporary home):
exit 0 for a log that holds, 1 with the first broken link printed plainly when a row was changed
in the database, and the on-chain anchor that catches a re-hashed log."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_process import ECERT, ecert_home_env
from sqlalchemy import Engine
from test_audit_log import ZJ, fill, rehash, sql

from issuer.audit import AuditLog
from issuer.db import make_engine, migrate, sessions

AGENCY = "11330100002493028E"  # the agency `ecert agency add` registers below (= test_audit_log.ZJ)
TYPE = "11100000000013338W001"


def ecert(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[dict[str, str], Engine]]:
    """A fresh ECERT_HOME whose issuer database (SQLite) holds five entries of the agency's log."""
    url = f"sqlite:///{tmp_path / 'issuer.sqlite'}"
    env = {**ecert_home_env(tmp_path), "ECERT_ISSUER_DATABASE_URL": url}
    engine = make_engine(url)
    migrate(engine)
    fill(AuditLog(sessions(engine)), 5)
    yield env, engine
    engine.dispose()


def test_verify_exits_0_then_1_with_the_row_changed_directly_in_the_database(home) -> None:
    env, engine = home
    done = ecert(env, "audit", "verify", "--no-chain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK      {ZJ}: 5 entries, head ")

    sql(engine, "UPDATE audit_log SET details = :d WHERE agency = :a AND seq = 3", d='{"n":99}', a=ZJ)
    done = ecert(env, "audit", "verify", "--no-chain", "--agency", ZJ)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"BROKEN  {ZJ}: first broken link at entry 3 (id 3): hash_mismatch" in done.stdout
    assert "entry 3 (id 3) was changed" in done.stdout

    sql(engine, "DELETE FROM audit_log WHERE id = 3")  # the changed row removed instead: a gap
    done = ecert(env, "audit", "verify", "--no-chain")
    assert done.returncode == 1 and "first broken link at entry 3 (id 4): gap" in done.stdout


def test_export_csv_and_jsonl_with_filters(home, tmp_path: Path) -> None:
    env, _ = home
    done = ecert(env, "audit", "export", "--agency", ZJ, "--format", "jsonl", "--actor", "clerk0")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["seq"], r["actor"]) for r in rows] == [(1, "clerk0"), (3, "clerk0"), (5, "clerk0")]

    out = tmp_path / "audit.csv"
    done = ecert(env, "audit", "export", "--agency", ZJ, "--format", "csv", "--action", "unmask",
                 "--from", "2000-01-01", "--to", "2999-12-31", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"exported 1 entries of {ZJ}" in done.stderr and out.stat().st_mode & 0o777 == 0o600
    (row,) = csv.DictReader(io.StringIO(out.read_text()))
    assert (row["seq"], row["action"], json.loads(row["details"])["n"]) == ("3", "unmask", 2)

    assert ecert(env, "audit", "export", "--agency", ZJ, "--format", "xml").returncode == 2
    done = ecert(env, "audit", "export", "--agency", ZJ, "--format", "csv", "--action", "nope")
    assert done.returncode == 2 and "AUDIT_ACTION_INVALID" in done.stderr


@pytest.mark.chain
def test_anchor_then_a_rehashed_log_is_caught_by_the_chain(home) -> None:
    env, engine = home
    try:
        assert ecert(env, "chain", "up").returncode == 0
        for args in (
            ["deploy"],
            ["authority", "add", "--region", "330000", "--name", "浙江省数据局"],
            [
                "agency",
                "add",
                "--region",
                "330100",
                "--code",
                AGENCY,
                "--name",
                "杭州市市场监督管理局",
                "--types",
                TYPE,
            ],
        ):
            done = ecert(env, *args)
            assert done.returncode == 0, done.stderr
        done = ecert(env, "audit", "anchor")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{AGENCY}: anchored entry 5, head " in done.stdout
        assert "entry 5 is anchored already" in ecert(env, "audit", "anchor").stdout

        done = ecert(env, "audit", "verify")
        assert done.returncode == 0 and "2 anchored head(s) checked" in done.stdout, done.stdout + done.stderr

        sql(engine, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
        rehash(engine, AGENCY)
        sql(engine, "DELETE FROM audit_anchors")
        assert ecert(env, "audit", "verify", "--no-chain").returncode == 0  # the database alone is fooled
        done = ecert(env, "audit", "verify")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "first broken link at entry 5 (id 5): anchor_mismatch" in done.stdout
        assert "the log was rewritten up to entry 5" in done.stdout
    finally:
        ecert(env, "chain", "down")
