"""The `ecert` command as a user runs it: its own chain, keystore and files, in a temporary home."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from service_process import ECERT, ecert_home_env

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ecert-home")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    return ecert_home_env(home)


def ecert(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECERT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def issued(env: dict[str, str], home: Path):
    """A chain with one agency and three issued certificates (one record rejected)."""
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
    records = home / "records.csv"
    records.write_text(
        "holder.name,holder.code,validUntil,ext.address\n"
        "张三,11010519491231002X,2040-01-01,杭州市西湖区\n"
        "李四,11010519491231002X,,杭州市上城区\n"
        "王五,110105194912310021,,杭州市滨江区\n"
        "赵六,11010519491231002X,2040-13-01,杭州市拱墅区\n",
        encoding="utf-8",
    )
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
        str(home / "out"),
        "--qr",
    )
    assert done.returncode == 1, done.stdout + done.stderr  # two rejected records
    yield sorted((home / "out").glob("*.json"))
    ecert(env, "chain", "down")


def test_issue_writes_packages_qr_codes_and_reports_rejected_records(issued: list[Path], home: Path) -> None:
    assert len(issued) == 2
    assert all(p.with_suffix(".png").exists() for p in issued)
    rejected = [json.loads(line) for line in (home / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["record"], r["code"], r["field"]) for r in rejected] == [
        (3, "ID_CHECK_CHAR", "holder.code"),
        (4, "FIELD_INVALID", "validUntil"),
    ]


def test_verify_a_package_and_its_qr_code(env: dict[str, str], issued: list[Path]) -> None:
    for source in (issued[0], issued[0].with_suffix(".png")):
        done = ecert(env, "verify", "--json", str(source))
        assert done.returncode == 0, done.stdout
        report = json.loads(done.stdout)
        assert report["verdict"] == "VALID"
        assert [c["kind"] for c in report["checks"]] == [
            "format",
            "integrity",
            "seal",
            "anchor",
            "authority",
            "status",
            "validity",
            "national-seal",
            "freshness",
        ]
        assert report["checks"][-2]["outcome"] == "VALID"  # co-sealed at intake with the agency's SM2 key
        assert report["checks"][-1]["code"] == "FACTS_CURRENT"


def test_status_set_then_verify(env: dict[str, str], issued: list[Path]) -> None:
    package = issued[1]
    assert ecert(env, "status", "set", package.stem, "--status", "suspended", "--reason", "2").returncode == 0
    done = ecert(env, "verify", "--json", str(package))
    assert (done.returncode, json.loads(done.stdout)["reason"]) == (1, "CERT_SUSPENDED")
    assert ecert(env, "status", "set", package.stem, "--status", "active", "--reason", "1").returncode == 0
    assert ecert(env, "verify", str(package)).returncode == 0
    wrong_reason = ecert(env, "status", "set", package.stem, "--status", "revoked", "--reason", "2")
    assert wrong_reason.returncode == 2 and "REASON_INVALID" in wrong_reason.stderr


def test_a_tampered_package_is_invalid(env: dict[str, str], issued: list[Path], tmp_path: Path) -> None:
    data = json.loads(issued[0].read_text())
    leaf = next(leaf for leaf in data["leaves"] if leaf["path"] == "holder.name")
    leaf["value"] = json.dumps("张四", ensure_ascii=False)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data, ensure_ascii=False))
    done = ecert(env, "verify", "--json", str(tampered))
    assert (done.returncode, json.loads(done.stdout)["reason"]) == (1, "CERT_TAMPERED")
    garbage = ecert(env, "verify", "EC1:NOT-BASE45-%%%")
    assert garbage.returncode == 1 and "CERT_MALFORMED" in garbage.stdout


def test_issue_of_a_type_not_granted_is_refused_before_intake(
    env: dict[str, str], issued: list[Path], home: Path
) -> None:
    """Checked on chain before a record is stored, as the API does: it used to store the job and
    then send reverting anchors until the 600 s timeout."""
    import sqlite3

    records = home / "ungranted.jsonl"
    records.write_text(
        json.dumps({"holder": {"name": "钱七", "code": "11010519491231002X"}}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    out = home / "out-ungranted"
    done = subprocess.run(
        [*ECERT, "issue", "--agency", AGENCY, "--type", "11100000000013338W002", "--input", str(records), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "TYPE_NOT_GRANTED" in done.stdout + done.stderr, done.stdout + done.stderr
    assert not out.exists()
    with sqlite3.connect(home / ".ecert" / "issuer" / "issuer.sqlite") as db:
        assert db.execute(
            "SELECT count(*) FROM jobs WHERE type_code = '11100000000013338W002'"
        ).fetchone() == (0,)


def test_key_rotation_keeps_old_certificates_valid(env: dict[str, str], issued: list[Path]) -> None:
    assert ecert(env, "agency", "rotate-key", "--code", AGENCY).returncode == 0
    assert ecert(env, "verify", str(issued[0])).returncode == 0


@pytest.mark.parametrize(
    ("identifier", "exit_code", "needle"),
    [
        ("91110000600037341L", 0, "uscc"),
        ("91110000600037341M", 1, "expected 'L'"),
        ("11010519491231002X", 0, "id_number"),
        ("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F", 0, "licence"),
        ("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.G", 1, "expected 'F'"),
    ],
)
def test_id_check(env: dict[str, str], identifier: str, exit_code: int, needle: str) -> None:
    done = ecert(env, "id", "check", identifier)
    assert done.returncode == exit_code
    assert needle in done.stdout + done.stderr


def test_help_reads_well(env: dict[str, str]) -> None:
    done = ecert(env, "--help")
    assert done.returncode == 0
    for command in ("chain", "deploy", "authority", "agency", "issue", "verify", "status", "id", "demo"):
        assert command in done.stdout


def test_verify_with_the_chain_stopped_exits_2_and_never_says_valid(
    env: dict[str, str], issued: list[Path]
) -> None:
    assert ecert(env, "chain", "down").returncode == 0
    try:
        done = ecert(env, "verify", "--json", str(issued[0]))
        assert done.returncode == 2
        assert json.loads(done.stdout)["verdict"] == "ERROR"
    finally:
        assert ecert(env, "chain", "up").returncode == 0
    assert ecert(env, "verify", str(issued[0])).returncode == 0  # state survived the restart
