"""Issue 12, point 5: the issuer is killed with SIGKILL after an approval, right after the status
change's transaction was broadcast and before it is mined (anvil's automine off); after a restart
the change lands exactly once — counted from the chain's `CertificatesRevoked` events — and the
proposal is confirmed with the transaction stored before the kill."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select

from issuer.audit import AuditLog
from issuer.db import make_engine, sessions
from issuer.models import Certificate, StatusProposal, StatusProposalChunk
from issuer.proposals import StatusProposals
from issuer.staff import IssuerStaff
from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, free_port
from registry.deploy import deploy
from registry.keys import Keystore

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"
COUNT = 300  # two 256-index words: two revokeCertificates transactions
DRIVER = Path(__file__).with_name("proposal_driver.py")


def rpc(client: ChainClient, method: str, *params: Any) -> Any:
    answer = client.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer.get("result")


def driver(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "driver.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, str(DRIVER), AGENCY, TYPE, *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def revocations(client: ChainClient, address: str) -> list[tuple[int, int, int]]:
    logs = client.w3.eth.get_logs({"address": address, "fromBlock": 0, "toBlock": "latest"})  # type: ignore[typeddict-item]
    return [tuple(int.from_bytes(bytes(e["data"])[i : i + 32], "big") for i in (0, 32, 64))  # type: ignore[misc]
            for e in logs if len(e["topics"]) == 1]  # fmt: skip


def test_sigkill_after_approval_before_mining_lands_the_change_exactly_once(tmp_path: Path) -> None:
    home = tmp_path / ".ecert"
    password = secrets.token_hex(8)
    port = free_port()
    node = AnvilNode(home / "chain", port)
    node.start()
    try:
        client = ChainClient.connect(node.url)
        root, authority = Account.create(), Account.create()
        keystore = Keystore(home / "keys", password, scrypt_n=1024)
        agency_address = keystore.create(f"agency-{AGENCY}")
        for address in (root.address, authority.address, agency_address):
            client.fund(address, 10**20)
        deployment = deploy(client, root)
        deployment.save(home / "deployment.json")
        registry = deployment.registry(client)
        registry.add_authority(root, authority.address, 330000, "浙江")
        registry.register_agency(authority, AGENCY, 330100, "杭州市市场监督管理局", agency_address, [TYPE])
        env = {**os.environ, "ECERT_HOME": str(home), "ECERT_RPC_URL": node.url, "ECERT_CHAIN_PORT": str(port),
               "ECERT_KEYSTORE_PASSWORD": password, "ECERT_ISSUER_BATCH_WINDOW_S": "0", "ECERT_ISSUER_BATCH_MAX_WAIT_S": "0",
               "ECERT_ISSUER_RETRY_MAX_S": "1", "ECERT_ISSUER_AUDIT_ANCHOR_INTERVAL_H": "0"}  # fmt: skip
        assert driver(tmp_path, env, "issue", str(COUNT)).wait(timeout=180) == 0, (
            tmp_path / "driver.log"
        ).read_text()[-3000:]

        # a clerk proposes, an approver approves (the console's service, on the issuer's database)
        engine = make_engine(f"sqlite:///{home / 'issuer' / 'issuer.sqlite'}")
        made = sessions(engine)
        accounts = IssuerStaff(made, secrets.token_bytes(32), secrets.token_bytes(32))
        accounts.add(AGENCY, "clerk", "clerk1", "经办人", "four-eyes-pass-1")
        accounts.add(AGENCY, "approver", "approver1", "审批人", "four-eyes-pass-1")
        staff = {m.username: m for m in accounts.members()}
        with made() as session:
            identifiers = list(session.scalars(select(Certificate.identifier).order_by(Certificate.id)))
        assert len(identifiers) == COUNT
        proposals = StatusProposals(made, AuditLog(made))
        done = proposals.propose(
            staff["clerk1"], "revoke", 7, [(i + 1, x) for i, x in enumerate(identifiers)]
        )
        assert done.proposal_id is not None
        proposals.approve(staff["approver1"], done.proposal_id)

        rpc(client, "evm_setAutomine", False)  # nothing is mined until the test says so
        first = driver(tmp_path, env, "run")
        sent: StatusProposalChunk | None = None
        deadline = time.monotonic() + 60
        while sent is None:
            assert time.monotonic() < deadline and first.poll() is None, (
                tmp_path / "driver.log"
            ).read_text()[-3000:]
            with made() as session:
                sent = session.scalars(select(StatusProposalChunk).where(StatusProposalChunk.tx_hash.is_not(None))
                                       .order_by(StatusProposalChunk.id)).first()  # fmt: skip
            if sent is not None and client.w3.eth.get_transaction(sent.tx_hash) is None:  # type: ignore[arg-type]
                sent = None  # stored, not yet broadcast: wait until the node has it
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # the issuer dies with its transaction in the node's pool
        first.wait()
        assert sent.tx_hash is not None
        assert client.w3.eth.get_transaction(sent.tx_hash)["blockNumber"] is None, "not mined before the kill"  # type: ignore[arg-type]
        assert revocations(client, registry.address) == []

        second = driver(tmp_path, env, "run")  # restarted while the transaction is still pending
        time.sleep(1.0)
        rpc(client, "evm_setAutomine", True)
        deadline = time.monotonic() + 120
        while second.poll() is None:
            assert time.monotonic() < deadline, (tmp_path / "driver.log").read_text()[-3000:]
            rpc(client, "evm_mine")
            time.sleep(0.3)
        assert second.returncode == 0, (tmp_path / "driver.log").read_text()[-3000:]

        events = revocations(client, registry.address)
        assert sorted(word for word, _, _ in events) == [0, 1], f"each word revoked exactly once: {events}"
        assert sum(bin(mask).count("1") for _, mask, _ in events) == COUNT and {r for _, _, r in events} == {
            7
        }
        with made() as session:
            proposal = session.get_one(StatusProposal, done.proposal_id)
            chunks = list(session.scalars(select(StatusProposalChunk).order_by(StatusProposalChunk.id)))
            statuses = {
                (r[0], r[1]) for r in session.execute(select(Certificate.status, Certificate.status_reason))
            }
        assert proposal.state == "confirmed" and [c.state for c in chunks] == ["confirmed", "confirmed"]
        assert chunks[0].tx_hash == sent.tx_hash, (
            "the transaction stored before the kill is the one that landed"
        )
        assert statuses == {("revoked", 7)}
        engine.dispose()
    finally:
        node.stop()
