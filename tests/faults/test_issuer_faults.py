"""Fault tests: SIGKILL the issuer in the middle of a 5,000-record job, and stop the chain for a
while during anchoring. Afterwards every record is anchored exactly once, counted from the
chain's BatchAnchored events (no missing digest, no duplicate root)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select

from issuer.db import make_engine, sessions
from issuer.models import Batch, Certificate
from registry.certificate.merkle import batch_tree
from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, free_port
from registry.deploy import deploy
from registry.keys import Keystore

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"
RECORDS = 5_000
DRIVER = Path(__file__).with_name("issuer_driver.py")


@pytest.fixture
def home(tmp_path: Path):
    """An ecert home with its own anvil, registry, agency key (in the keystore) and records."""
    password = os.urandom(8).hex()
    port = free_port()
    node = AnvilNode(tmp_path / ".ecert" / "chain", port)
    node.start()
    client = ChainClient.connect(node.url)
    root, authority = Account.create(), Account.create()
    keystore = Keystore(tmp_path / ".ecert" / "keys", password, scrypt_n=1024)
    agency_address = keystore.create(f"agency-{AGENCY}")
    for address in (root.address, authority.address, agency_address):
        client.fund(address, 10**20)
    deployment = deploy(client, root)
    deployment.save(tmp_path / ".ecert" / "deployment.json")
    registry = deployment.registry(client)
    registry.add_authority(root, authority.address, 330000, "浙江")
    registry.register_agency(authority, AGENCY, 330100, "杭州市市场监督管理局", agency_address, [TYPE])
    records = tmp_path / "records.jsonl"
    with records.open("w", encoding="utf-8") as handle:
        for i in range(RECORDS):
            handle.write(
                json.dumps(
                    {"holder": {"name": f"商户{i}", "code": "91330106MA2H3XY60L"}, "ext": {"n": i}},
                    ensure_ascii=False,
                )
                + "\n"
            )
    env = {
        **os.environ,
        "ECERT_HOME": str(tmp_path / ".ecert"),
        "ECERT_RPC_URL": node.url,
        "ECERT_CHAIN_PORT": str(port),
        "ECERT_KEYSTORE_PASSWORD": password,
        "ECERT_ISSUER_BATCH_SIZE": "500",
        "ECERT_ISSUER_BATCH_WINDOW_S": "0",
        "ECERT_ISSUER_BATCH_MAX_WAIT_S": "0",
        "ECERT_ISSUER_RETRY_MAX_S": "1",
    }
    yield tmp_path, env, node, registry
    node.stop()


def start_driver(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "driver.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, str(DRIVER), AGENCY, TYPE, str(tmp_path / "records.jsonl"), "job-1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: killed whole
    )  # fmt: skip


def assert_anchored_exactly_once(tmp_path: Path, registry) -> None:
    events = registry.contract.events.BatchAnchored().get_logs(from_block=0)
    roots = [e["args"]["root"] for e in events]
    assert len(roots) == len(set(roots)), "a batch root was anchored twice"
    assert sum(e["args"]["count"] for e in events) == RECORDS
    engine = make_engine(f"sqlite:///{tmp_path / '.ecert' / 'issuer' / 'issuer.sqlite'}")
    with sessions(engine)() as session:
        certificates = session.scalars(select(Certificate)).all()
        assert len(certificates) == RECORDS and {c.state for c in certificates} == {"confirmed"}
        assert sorted(c.position for c in certificates) == list(range(1, RECORDS + 1))
        batches = session.scalars(select(Batch)).all()
        assert {b.root for b in batches} == set(roots)
        for batch in batches:  # every digest sits in its anchored batch at its index
            digests = session.scalars(
                select(Certificate.digest)
                .where(Certificate.batch_id == batch.id)
                .order_by(Certificate.batch_index)
            ).all()
            assert batch_tree(digests).root == batch.root
    engine.dispose()


def test_sigkill_at_random_moments_loses_nothing_and_anchors_nothing_twice(home) -> None:
    tmp_path, env, _node, registry = home
    rng = random.Random(int.from_bytes(os.urandom(4)))
    kills = 0
    for _ in range(8):
        driver = start_driver(tmp_path, env)
        try:
            driver.wait(timeout=rng.uniform(0.8, 3.0))
        except subprocess.TimeoutExpired:
            os.killpg(
                driver.pid, signal.SIGKILL
            )  # the issuer and its intake processes, as when the machine dies
            driver.wait()
            kills += 1
            continue
        break
    final = start_driver(tmp_path, env)
    assert final.wait(timeout=180) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    assert kills >= 1, "the driver was never killed: the test proved nothing"
    assert_anchored_exactly_once(tmp_path, registry)


def test_chain_stopped_during_anchoring_then_restarted(home) -> None:
    tmp_path, env, node, registry = home
    # 100 batches of 50: anchoring takes long enough that the chain goes down mid-job (with 10
    # batches the worker could finish them all while anvil was stopping, and the test failed)
    driver = start_driver(tmp_path, {**env, "ECERT_ISSUER_BATCH_SIZE": "50"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not registry.contract.events.BatchAnchored().get_logs(from_block=0):
        time.sleep(0.05)
    node.stop()  # anvil writes its state and goes away mid-job
    time.sleep(4)
    assert driver.poll() is None, "the issuer must keep retrying while the chain is down"
    node.start()
    assert driver.wait(timeout=180) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    assert_anchored_exactly_once(tmp_path, registry)
