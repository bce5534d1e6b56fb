"""No personal field in plain text in the issuer's database file, its logs or on chain: issue
certificates with known holder names and ID numbers, then grep all three for them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from registry.certificate.identifiers import id_number_check_char
from registry.chain.runner import free_port

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"
ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
GIVEN = "甲乙丙丁戊己庚辛壬癸"


def id_number(rng: random.Random) -> str:
    first17 = f"330106{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first17 + id_number_check_char(first17)


def test_personal_fields_never_appear_in_plain_text(tmp_path: Path) -> None:
    rng = random.Random(11)
    holders = [(f"隐私测试{GIVEN[i % 10]}{rng.randint(1000, 9999)}号", id_number(rng)) for i in range(25)]
    records = tmp_path / "records.jsonl"
    records.write_text(
        "".join(
            json.dumps({"holder": {"name": n, "code": c}}, ensure_ascii=False) + "\n" for n, c in holders
        ),
        encoding="utf-8",
    )
    port = free_port()
    env = {
        **os.environ, "ECERT_HOME": str(tmp_path / ".ecert"), "ECERT_CHAIN_PORT": str(port),
        "ECERT_RPC_URL": f"http://127.0.0.1:{port}", "ECERT_KEYSTORE_PASSWORD": os.urandom(8).hex(),
        "ECERT_KEYSTORE_SCRYPT_N": "1024", "ECERT_ISSUER_BATCH_SIZE": "10",
    }  # fmt: skip
    logs: list[str] = []

    def ecert(*args: str) -> None:
        done = subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120)
        logs.append(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr

    ecert("chain", "up")
    try:
        ecert("deploy")
        ecert("authority", "add", "--region", "330000", "--name", "浙江省数据局")
        ecert(
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
        )
        ecert(
            "issue",
            "--agency",
            AGENCY,
            "--type",
            TYPE,
            "--input",
            str(records),
            "--out",
            str(tmp_path / "holders"),
        )
        packages = list((tmp_path / "holders").glob("*.json"))
        assert len(packages) == len(holders)
        ecert(
            "status",
            "set",
            packages[0].stem,
            "--status",
            "suspended",
            "--reason",
            "2",
            "--note",
            "年检未通过",
        )

        needles = [text.encode() for name, code in holders for text in (name, code)]
        needles += [name.encode("utf-16-le") for name, _ in holders]  # no other encoding slips through
        database = b"".join(p.read_bytes() for p in (tmp_path / ".ecert" / "issuer").glob("issuer.sqlite*"))
        assert len(database) > 10_000
        chain = chain_bytes(env["ECERT_RPC_URL"])
        assert len(chain) > 1_000
        for needle in needles:
            assert needle not in database, "personal data in the database file"
            assert needle not in "\n".join(logs).encode(), "personal data in the logs"
            assert needle not in chain and needle.hex().encode() not in chain, "personal data on chain"
        # the holder packages, which go to the holders, do carry them: the test can see them
        assert holders[0][0] in "".join(p.read_text(encoding="utf-8") for p in packages)
    finally:
        ecert("chain", "down")
    state = (tmp_path / ".ecert" / "chain" / "state.json").read_bytes()
    assert all(needle not in state and needle.hex().encode() not in state for needle in needles)


def chain_bytes(url: str) -> bytes:
    """Every transaction's input and every log's data and topics, as raw bytes and as hex text."""
    w3 = Web3(Web3.HTTPProvider(url))
    out = bytearray()
    for number in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            out += bytes(tx["input"])
            for log in w3.eth.get_transaction_receipt(tx["hash"])["logs"]:
                out += bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"])
    return bytes(out) + bytes(out).hex().encode()
