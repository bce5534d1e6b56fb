"""`ecert issue` as an agency clerk runs it: it says what it is doing (records stored, sealed,
anchored and confirmed, in plain lines when the output is a file), and it waits only for the
certificates it issued, not for another run's batch stuck on the chain."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_process import ECERT, ecert_home_env
from sqlalchemy import update

from issuer.models import Batch
from issuer.runtime import IssuerRuntime

pytestmark = pytest.mark.chain

AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"


def ecert(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = ecert_home_env(tmp_path)
    env.pop("COLUMNS", None)
    for name, value in env.items():
        if name.startswith("ECERT_"):
            monkeypatch.setenv(name, value)  # the in-process runtime reads the same home
    assert ecert(env, "chain", "up").returncode == 0
    try:
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
            assert done.returncode == 0, done.stdout + done.stderr
        yield env
    finally:
        ecert(env, "chain", "down")


def _records(path: Path, *names: str) -> Path:
    path.write_text(
        "".join(f'{{"holder": {{"name": "{n}", "code": "11010519491231002X"}}}}\n' for n in names),
        encoding="utf-8",
    )
    return path


def _strand_a_batch() -> None:
    """Another run's certificates, sealed into a batch whose transaction the chain will never
    mine (bytes it refuses, a nonce far ahead): that batch stays unconfirmed for good."""
    runtime = IssuerRuntime.open()
    try:
        runtime.register_agency(AGENCY)
        runtime.service.submit(
            AGENCY, TYPE, [{"holder": {"name": "滞留", "code": "11010519491231002X"}}], type_name="营业执照"
        )
        assert runtime.worker.seal_pending(flush=True) == 1
        with runtime.sessions() as session:
            session.execute(update(Batch).values(state="sending", raw_tx=b"\x01not a transaction", tx_hash="0x" + "ab" * 32, nonce=10**9,
                                                 signer=runtime.signers(AGENCY).address))  # fmt: skip
            session.commit()
    finally:
        runtime.close()


def test_issue_shows_each_stage_and_waits_only_for_its_own_certificates(
    env: dict[str, str], tmp_path: Path
) -> None:
    _strand_a_batch()
    records = _records(tmp_path / "records.jsonl", "甲", "乙", "丙")
    done = ecert(
        env,
        "issue",
        "--agency",
        AGENCY,
        "--type",
        TYPE,
        "--input",
        str(records),
        "--out",
        str(tmp_path / "out"),
        timeout_s=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((tmp_path / "out").glob("*.json"))) == 3
    assert done.stderr.splitlines()[0] == "stored 0/3 · sealed 0/0 · anchored 0/0 · confirmed 0/0"
    assert "stored 3/3 · sealed 3/3 · anchored 3/3 · confirmed 3/3" in done.stderr.splitlines()
    assert done.stdout.strip().startswith("issued 3 certificate(s) into ")
