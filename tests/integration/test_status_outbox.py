"""Approved status changes to a real anvil chain through the outbox (issuer/proposals.py,
`ProposalSender`): a clerk proposes a bulk revocation of 1,000 certificates by CSV, an approver
approves, the sender revokes them with `revokeCertificates` (four transactions, one per 256-index
word), and the verifier — its own pipeline (`verifier.pipeline.verify_presentation`) reading the
chain through its index (`IndexReader`: the reason of a status comes from the index of the
contract's events) — reports each REVOKED with reason 03. Also: suspend and reinstate
(`setStatusBulk`), a chain refusal, and a crash between storing a transaction and broadcasting it.
(Killing the whole issuer process before mining: tests/faults/test_proposal_crash.py.)"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ZJ_AGENCY_CODE, Roles
from sqlalchemy import select

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.audit import AuditLog
from issuer.benchmark import make_records
from issuer.db import make_engine, migrate, sessions
from issuer.models import Certificate, StatusProposalChunk
from issuer.proposals import (
    ProposalSender,
    SenderSettings,
    StatusProposals,
    after_each,
    decode_upload,
    parse_identifiers,
)
from issuer.service import IssuerService
from issuer.staff import IssuerStaff, StaffView
from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.database import make_engine as make_index_engine
from registry.deploy import Deployment
from registry.errors import ChainUnavailable
from registry.indexer import History, Indexer
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation
from verifier.readers import HeadTracker, IndexReader

pytestmark = pytest.mark.chain

TYPE = "11100000000013338W001"
PASSWORD = "four-eyes-pass-1"


@dataclass
class Issuer:
    service: IssuerService
    proposals: StatusProposals
    sender: ProposalSender
    audit: AuditLog
    staff: dict[str, StaffView]
    sessions: object

    def identifiers(self) -> list[str]:
        with self.sessions() as session:  # type: ignore[operator]
            return list(session.scalars(select(Certificate.identifier).order_by(Certificate.id)))

    def statuses(self) -> dict[str, tuple[str, int | None]]:
        with self.sessions() as session:  # type: ignore[operator]
            return {c.identifier: (c.status, c.status_reason) for c in session.scalars(select(Certificate))}

    def send_until_done(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sender.outstanding():
            assert time.monotonic() < deadline, "the sender did not finish"
            self.sender.run_once()


def issued(tmp_path: Path, registry: CertificateRegistry, roles: Roles, count: int) -> Issuer:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    service = IssuerService(made, secrets.token_bytes(32), chain_id=registry.client.chain_id,
                            registry_address=registry.address, signer_for=lambda _code: roles.agency)  # fmt: skip
    service.ensure_agency(ZJ_AGENCY_CODE, "杭州市市场监督管理局", "330100")
    service.submit(ZJ_AGENCY_CODE, TYPE, make_records(count), type_name="营业执照")
    AnchoringWorker(made, registry, lambda _code: roles.agency, WorkerSettings(batch_size=10_000, batch_window_s=0)
                    ).run_until_idle(timeout_s=300, poll_s=0.01)  # fmt: skip
    accounts = IssuerStaff(made, secrets.token_bytes(32), secrets.token_bytes(32))
    for username, role in (("clerk1", "clerk"), ("approver1", "approver"), ("auditor1", "auditor")):
        accounts.add(ZJ_AGENCY_CODE, role, username, username, PASSWORD)
    audit = AuditLog(made)
    return Issuer(service, StatusProposals(made, audit), ProposalSender(made, registry, lambda _c: roles.agency, audit),
                  audit, {m.username: m for m in accounts.members()}, made)  # fmt: skip


@pytest.fixture
def issuer_1000(tmp_path: Path, registry: CertificateRegistry, roles: Roles) -> Iterator[Issuer]:
    made = issued(tmp_path, registry, roles, 1000)
    yield made
    made.service.close()


def revocations(
    chain: ChainClient, registry: CertificateRegistry, from_block: int = 0
) -> list[tuple[int, int, int]]:
    """`(word, mask, reason)` of every `CertificatesRevoked` — the contract's only one-topic event."""
    logs = chain.w3.eth.get_logs({"address": registry.address, "fromBlock": from_block, "toBlock": "latest"})
    found = []
    for entry in logs:
        if len(entry["topics"]) == 1:
            data = bytes(entry["data"])
            found.append(tuple(int.from_bytes(data[i : i + 32], "big") for i in (0, 32, 64)))
    return found  # type: ignore[return-value]


def test_bulk_revocation_of_1000_by_csv_is_approved_sent_and_verified_revoked(
    issuer_1000: Issuer,
    registry: CertificateRegistry,
    chain: ChainClient,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    issuer = issuer_1000
    identifiers = issuer.identifiers()
    assert len(identifiers) == 1000
    csv_bytes = ("identifier\r\n" + "\r\n".join(identifiers) + "\r\n").encode("utf-8-sig")
    rows, errors = parse_identifiers(decode_upload(csv_bytes))
    assert errors == [] and len(rows) == 1000 and rows[0][0] == 2  # line 1 is the header
    start_block = chain.block_number()
    done = issuer.proposals.propose(issuer.staff["clerk1"], "revoke", 3, rows, "撤销：登记事项有误")
    assert done.proposal_id is not None and done.count == 1000
    with pytest.raises(Exception):  # noqa: B017 - the clerk cannot approve (their own or any)
        issuer.proposals.approve(issuer.staff["clerk1"], done.proposal_id)
    with pytest.raises(Exception):  # noqa: B017 - nor can the auditor
        issuer.proposals.approve(issuer.staff["auditor1"], done.proposal_id)
    issuer.sender.run_once()
    assert revocations(chain, registry, start_block) == [], "nothing goes to the chain before approval"
    issuer.proposals.approve(issuer.staff["approver1"], done.proposal_id)
    issuer.send_until_done()

    view = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id)
    assert view.state == "confirmed" and len(view.chunks) == 4 and len(set(view.tx_hashes)) == 4
    assert {c.state for c in view.chunks} == {"confirmed"} and sum(c.count for c in view.chunks) == 1000
    with issuer.sessions() as session:  # type: ignore[operator]  # retention: no signed bytes kept once confirmed
        assert session.scalars(select(StatusProposalChunk.raw_tx)).all() == [None] * 4
    events = revocations(chain, registry, start_block)
    assert sorted(word for word, _, _ in events) == [0, 1, 2, 3]  # one revokeCertificates a word, once
    assert sum(bin(mask).count("1") for _, mask, _ in events) == 1000 and {r for _, _, r in events} == {3}
    assert set(issuer.statuses().values()) == {("revoked", 3)}
    changes = [e for e in issuer.audit.entries(ZJ_AGENCY_CODE) if e.action == "status_change"]
    assert sorted(e.details["txHash"] for e in changes) == sorted(view.tx_hashes)

    # the certificate page's record: each change linked to its proposal and approval
    history = issuer.proposals.certificate_history(ZJ_AGENCY_CODE, identifiers[700])
    assert history.status == "revoked" and len(history.changes) == 1
    change = history.changes[0]
    assert (
        change.proposal.id == done.proposal_id and change.proposal.approver_id == issuer.staff["approver1"].id
    )
    assert (
        change.chunk is not None and change.chunk.tx_hash in view.tx_hashes and change.chunk.word == 700 >> 8
    )

    # the verifier, through its index of the chain's events
    index = make_index_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
    Indexer(chain, registry, index, confirmations=0, start_block=deployment.block_number).sync()
    head = HeadTracker(chain)
    try:
        reader = IndexReader(History(index, max_age_s=0), RegistryReader(registry), head, max_lag=1000)
        for i in (0, 1, 255, 256, 511, 767, 999, *range(100, 1000, 97)):
            report = verify_presentation(issuer.service.package(ZJ_AGENCY_CODE, identifiers[i]), reader)
            status = next(c for c in report.checks if c.kind == "status")
            assert (report.verdict, report.reason) == (Outcome.INVALID, "CERT_REVOKED"), i
            assert status.evidence["reason"] == "03" and status.evidence["reasonZh"] == "撤销", (
                status.evidence
            )
            assert "原因 03" in status.message
    finally:
        head.close()
        index.dispose()
    for i in range(0, 1000, 50):  # and the chain itself
        cert = issuer.service.package(ZJ_AGENCY_CODE, identifiers[i])
        assert registry.status_of(cert.batch_root, cert.batch_index) is Status.REVOKED


def test_suspend_then_reinstate_go_through_set_status_bulk(
    tmp_path: Path, registry: CertificateRegistry, roles: Roles, chain: ChainClient
) -> None:
    issuer = issued(tmp_path, registry, roles, 5)
    try:
        ids = issuer.identifiers()
        clerk, approver = issuer.staff["clerk1"], issuer.staff["approver1"]
        suspended = issuer.proposals.propose(clerk, "suspend", 2, [(1, ids[1]), (2, ids[3])])
        assert suspended.proposal_id is not None
        issuer.proposals.approve(approver, suspended.proposal_id)
        issuer.send_until_done()
        assert issuer.statuses()[ids[1]] == ("suspended", 2) and issuer.statuses()[ids[0]] == ("active", None)
        cert = issuer.service.package(ZJ_AGENCY_CODE, ids[3])
        assert registry.status_of(cert.batch_root, cert.batch_index) is Status.SUSPENDED
        again = issuer.proposals.propose(clerk, "reinstate", 1, [(1, ids[3])])
        assert again.proposal_id is not None
        issuer.proposals.approve(approver, again.proposal_id)
        issuer.send_until_done()
        assert registry.status_of(cert.batch_root, cert.batch_index) is Status.ACTIVE
        assert issuer.statuses()[ids[3]] == ("active", 1) and issuer.statuses()[ids[1]] == ("suspended", 2)
        assert len(issuer.proposals.certificate_history(ZJ_AGENCY_CODE, ids[3]).changes) == 2
    finally:
        issuer.service.close()


def test_a_refusal_fails_the_proposal_and_changes_nothing(
    tmp_path: Path, registry: CertificateRegistry, roles: Roles, chain: ChainClient
) -> None:
    issuer = issued(tmp_path, registry, roles, 3)
    try:
        ids = issuer.identifiers()
        cert = issuer.service.package(ZJ_AGENCY_CODE, ids[0])
        suspended = issuer.proposals.propose(issuer.staff["clerk1"], "suspend", 2, [(1, ids[0])])
        assert suspended.proposal_id is not None
        issuer.proposals.approve(issuer.staff["approver1"], suspended.proposal_id)
        issuer.send_until_done()
        # revoked on chain behind the database's back (another tool): reinstating it is refused
        registry.revoke_certificates(roles.agency, cert.batch_root, 0, 1, 7)
        proposal = issuer.proposals.propose(issuer.staff["clerk1"], "reinstate", 1, [(1, ids[0])])
        assert proposal.proposal_id is not None
        issuer.proposals.approve(issuer.staff["approver1"], proposal.proposal_id)
        issuer.send_until_done()
        view = issuer.proposals.get(ZJ_AGENCY_CODE, proposal.proposal_id)
        assert view.state == "failed" and view.chunks[0].refusal == "CertificateRegistryAlreadyRevoked"
        assert view.chunks[0].tx_hash is None, "simulated before signing: no gas spent"
        assert issuer.statuses()[ids[0]] == ("suspended", 2)
    finally:
        issuer.service.close()


def test_a_crash_between_storing_and_broadcasting_sends_the_same_transaction_once(
    tmp_path: Path,
    registry: CertificateRegistry,
    roles: Roles,
    chain: ChainClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = issued(tmp_path, registry, roles, 300)
    try:
        ids = issuer.identifiers()
        start_block = chain.block_number()
        done = issuer.proposals.propose(
            issuer.staff["clerk1"], "revoke", 4, [(i + 1, x) for i, x in enumerate(ids)]
        )
        assert done.proposal_id is not None
        issuer.proposals.approve(issuer.staff["approver1"], done.proposal_id)

        class Crash(BaseException):
            pass

        def crash(_chunk: object) -> None:
            raise Crash

        monkeypatch.setattr(issuer.sender, "_broadcast", crash)
        with pytest.raises(Crash):  # stored, then the process "dies" before the broadcast
            issuer.sender.run_once()
        with issuer.sessions() as session:  # type: ignore[operator]
            stored = list(session.scalars(select(StatusProposalChunk)))
        assert [c.state for c in stored] == ["sending", "ready"] and stored[0].raw_tx and stored[0].tx_hash
        assert revocations(chain, registry, start_block) == []
        chain._held_nonces.clear()
        restarted = ProposalSender(issuer.sessions, registry, lambda _c: roles.agency, issuer.audit)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while restarted.outstanding():
            assert time.monotonic() < deadline
            restarted.run_once()
        view = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id)
        assert view.state == "confirmed" and view.chunks[0].tx_hash == stored[0].tx_hash  # the stored bytes
        events = revocations(chain, registry, start_block)
        assert (
            sorted(w for w, _, _ in events) == [0, 1] and sum(bin(m).count("1") for _, m, _ in events) == 300
        )
    finally:
        issuer.service.close()


def test_a_chain_outage_at_any_step_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
    registry: CertificateRegistry,
    roles: Roles,
    chain: ChainClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = issued(tmp_path, registry, roles, 3)
    try:
        ids = issuer.identifiers()
        start_block = chain.block_number()
        done = issuer.proposals.propose(
            issuer.staff["clerk1"], "revoke", 99, [(i + 1, x) for i, x in enumerate(ids)]
        )
        assert done.proposal_id is not None
        issuer.proposals.approve(issuer.staff["approver1"], done.proposal_id)
        client = issuer.sender._client

        def down(*_args: object, **_kwargs: object) -> object:
            raise ChainUnavailable("the node is down (simulated)")

        with monkeypatch.context() as outage:  # down before signing: the chunk stays ready
            outage.setattr(client, "revert_of", down)
            with pytest.raises(ChainUnavailable):
                issuer.sender.run_once()
        assert [c.state for c in issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id).chunks] == ["ready"]
        issuer.sender.send_ready()
        with monkeypatch.context() as outage:
            outage.setattr(client, "guard", down)
            with pytest.raises(ChainUnavailable):
                issuer.sender.track_sent()
        view = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id)
        assert [c.state for c in view.chunks] == ["sending"] and view.state == "sent"
        issuer.send_until_done()  # the node is back
        view = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id)
        assert view.state == "confirmed" and len(revocations(chain, registry, start_block)) == 1
        assert set(issuer.statuses().values()) == {("revoked", 99)}
    finally:
        issuer.service.close()


def test_after_each_runs_every_job_whatever_the_others_do() -> None:
    ran: list[str] = []

    def failing() -> None:
        ran.append("audit")
        raise ChainUnavailable("down")

    def broken() -> None:
        ran.append("other")
        raise RuntimeError("bug")

    job = after_each(failing, None, broken, lambda: ran.append("status"))
    assert job is not None
    job()
    assert ran == ["audit", "other", "status"]
    assert after_each(None, None) is None and after_each(None, failing) is failing


def test_a_reorg_that_drops_the_transaction_sends_the_same_bytes_again(
    tmp_path: Path, registry: CertificateRegistry, roles: Roles, chain: ChainClient
) -> None:
    issuer = issued(tmp_path, registry, roles, 3)
    try:
        ids = issuer.identifiers()
        done = issuer.proposals.propose(
            issuer.staff["clerk1"], "revoke", 7, [(i + 1, x) for i, x in enumerate(ids)]
        )
        assert done.proposal_id is not None
        issuer.proposals.approve(issuer.staff["approver1"], done.proposal_id)
        sender = ProposalSender(issuer.sessions, registry, lambda _c: roles.agency, issuer.audit,  # type: ignore[arg-type]
                                SenderSettings(confirmations=3))  # fmt: skip
        start_block = chain.block_number()
        snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        sender.run_once()
        mined = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id).chunks[0]
        assert (
            mined.state == "mined" and mined.tx_hash and len(revocations(chain, registry, start_block)) == 1
        )
        chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]  # the block is gone
        assert revocations(chain, registry, start_block) == []
        sender.run_once()
        assert issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id).chunks[0].state == "sending"
        assert set(issuer.statuses().values()) == {("active", None)}, (
            "not confirmed: the database is unchanged"
        )
        deadline = time.monotonic() + 60
        while sender.outstanding():
            assert time.monotonic() < deadline
            sender.run_once()
            chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        view = issuer.proposals.get(ZJ_AGENCY_CODE, done.proposal_id)
        assert view.state == "confirmed" and view.chunks[0].tx_hash == mined.tx_hash  # the same transaction
        assert len(revocations(chain, registry, start_block)) == 1
        assert set(issuer.statuses().values()) == {("revoked", 7)}
    finally:
        issuer.service.close()
