"""The core scenario on two EVM engines, anvil and Hardhat's node (issue 14, point 7): deploy,
appoint an authority and an agency, issue through the issuer's anchoring worker, verify VALID
through the verifier's pipeline reading its index, revoke, verify INVALID CERT_REVOKED, and a
reorg that takes the anchor away (the worker sends the batch back to `sealed`, the indexer rolls
back, both recover).

Neither engine reorganises its chain on its own. anvil has `anvil_reorg`, Hardhat nothing of the
kind, so the reorg is made the same way on both, with the standard development RPCs: an
`evm_snapshot` before the anchor, `evm_revert` after it, then more blocks than were lost, so the
chain the services see is longer and lacks the anchor's block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TYPE_BUSINESS_LICENCE as TYPE
from conftest import ZJ_AGENCY_CODE as AGENCY
from conftest import fund
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.db import make_engine, migrate, sessions
from issuer.models import Batch, BatchEvent, Certificate
from issuer.service import IssuerService
from issuer.status import StatusService
from registry.certificate.presentation import Presentation
from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, HardhatNode, LocalNode, free_port
from registry.contracts.certificate_registry import CertificateRegistry, Status
from registry.database import make_engine as make_index_engine
from registry.deploy import Deployment, deploy
from registry.errors import ContractRevert
from registry.indexer import History, Indexer
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation
from verifier.readers import HeadTracker, IndexReader

pytestmark = pytest.mark.chain

ENGINES: dict[str, type[LocalNode]] = {"anvil": AnvilNode, "hardhat": HardhatNode}
CLIENT_VERSIONS = {"anvil": "anvil/", "hardhat": "HardhatNetwork/"}


@dataclass
class World:
    """One engine with the registry deployed on it and its parties appointed."""

    engine: str
    client: ChainClient
    deployment: Deployment
    root: LocalAccount
    authority: LocalAccount  # 浙江 330000
    agency: LocalAccount  # the 杭州 agency's key

    @property
    def registry(self) -> CertificateRegistry:
        return self.deployment.registry(self.client)

    def rpc(self, method: str, *params: object) -> object:
        answer = self.client.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer["result"]

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")


@pytest.fixture(scope="module", params=sorted(ENGINES))
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    made = ENGINES[request.param](tmp_path_factory.mktemp(request.param), free_port())
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def world(node: LocalNode) -> World:
    """Deploy and appoint, as `ecert deploy`, `authority add` and `agency add` do."""
    client = ChainClient.connect(node.url)
    root, authority, agency = (Account.create() for _ in range(3))
    for account in (root, authority, agency):
        fund(client, account)
    deployment = deploy(client, root)
    registry = deployment.registry(client)
    registry.add_authority(root, authority.address, 330000, "浙江省数据局")
    registry.register_agency(authority, AGENCY, 330100, "杭州市市场监督管理局", agency.address, [TYPE])
    return World(node.engine, client, deployment, root, authority, agency)


@pytest.fixture
def chain(world: World) -> Iterator[World]:
    """The module's chain, reverted to its state before the test when the test ends."""
    snapshot = world.rpc("evm_snapshot")
    yield world
    world.rpc("evm_revert", snapshot)
    world.client._held_nonces.clear()


@dataclass
class Services:
    """The issuer (service, anchoring worker, status changes) and a verifier reading its index."""

    sessions: sessionmaker[Session]
    service: IssuerService
    worker: AnchoringWorker
    status: StatusService
    indexer: Indexer
    reader: IndexReader

    def issue(self, count: int) -> list[str]:
        records = [{"holder": {"name": f"商户{i}", "code": "91330106MA2H3XY60L"}, "validUntil": "2040-12-31"}
                   for i in range(count)]  # fmt: skip
        job_id = self.service.submit(AGENCY, TYPE, records, type_name="营业执照").id
        self.worker.run_until_idle(job_ids=[job_id], timeout_s=60)
        job = self.service.job(AGENCY, job_id)
        assert job.done and job.counts["confirmed"] == count, job.counts
        return list(job.identifiers)

    def verify(self, identifier: str) -> tuple[Outcome, str | None, str | None]:
        """The verdict, its reason and where the anchor's facts came from, after indexing the chain."""
        self.indexer.sync()
        package: Presentation = self.service.package(AGENCY, identifier)
        report = verify_presentation(package, self.reader)
        anchor = next(c for c in report.checks if c.kind == "anchor")
        return report.verdict, report.reason, anchor.evidence.get("source")

    def batch(self) -> Batch:
        with self.sessions() as session:
            return session.scalars(select(Batch)).one()

    def certificate_states(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(Certificate.state)))

    def moves(self) -> list[tuple[str, str, str | None]]:
        with self.sessions() as session:
            events = session.scalars(select(BatchEvent).order_by(BatchEvent.id))
            return [(e.from_state, e.to_state, e.reason) for e in events]


@pytest.fixture
def services(chain: World, tmp_path: Path) -> Iterator[Services]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    registry = chain.registry
    service = IssuerService(
        made, os.urandom(32), chain_id=chain.client.chain_id, registry_address=registry.address,
        signer_for=lambda _code: chain.agency, processes=1,
    )  # fmt: skip
    service.ensure_agency(AGENCY, "杭州市市场监督管理局", "330100")
    settings = WorkerSettings(batch_window_s=0, confirmations=1, finality_depth=12)
    worker = AnchoringWorker(made, registry, lambda _code: chain.agency, settings)
    status = StatusService(made, service, registry, lambda _code: chain.agency)
    index: Engine = make_index_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
    indexer = Indexer(
        chain.client, registry, index, confirmations=0, start_block=chain.deployment.block_number
    )
    head = HeadTracker(chain.client, poll_s=0.1)
    reader = IndexReader(History(index, max_age_s=0), RegistryReader(registry), head, max_lag=2)
    try:
        yield Services(made, service, worker, status, indexer, reader)
    finally:
        head.close()
        service.close()
        index.dispose()
        engine.dispose()


# ─── tests ──────────────────────────────────────────────────────────────────────────────


def test_the_engine_is_the_one_asked_for_and_the_parties_are_appointed(world: World) -> None:
    assert world.client.w3.client_version.startswith(CLIENT_VERSIONS[world.engine])
    assert world.client.chain_id == 31337
    registry = world.registry
    assert registry.authority_region(world.authority.address) == 330000
    agency = registry.agency(AGENCY)
    assert (agency.region, agency.suspended, agency.name) == (330100, False, "杭州市市场监督管理局")
    assert registry.agency_keys(AGENCY) == [world.agency.address]
    assert registry.is_granted(AGENCY, TYPE)
    with pytest.raises(ContractRevert) as refused:  # appointing is the root's alone
        registry.add_authority(world.agency, world.agency.address, 440000, "广东省政务服务数据管理局")
    assert refused.value.name == "AccessControlUnauthorizedAccount"
    assert str(refused.value.error_args["account"]).lower() == world.agency.address.lower()


def test_a_transaction_that_reverts_once_mined_is_decoded_by_name(chain: World) -> None:
    """Sent with its gas given (no estimate to refuse it first): the engine mines it with status 0
    (Hardhat's node is told not to answer an RPC error instead), the client replays it by name."""
    blocks = chain.client.block_number()
    call = chain.registry.contract.functions.addAuthority(
        chain.agency.address, 440000, "广东省政务服务数据管理局"
    )
    with pytest.raises(ContractRevert) as reverted:
        chain.client.transact(chain.agency, call, gas=300_000)
    assert reverted.value.name == "AccessControlUnauthorizedAccount"
    assert chain.client.block_number() == blocks + 1  # it was mined, and paid for


def test_issue_verify_revoke(chain: World, services: Services) -> None:
    identifiers = services.issue(3)
    assert services.certificate_states() == {"confirmed"}
    for identifier in identifiers:
        assert services.verify(identifier) == (Outcome.VALID, None, "index")

    changed = services.status.change(AGENCY, identifiers[1], Status.REVOKED, 3)
    assert changed["status"] == "revoked" and changed["txHash"].startswith("0x")
    assert services.verify(identifiers[1]) == (Outcome.INVALID, "CERT_REVOKED", "index")
    assert services.verify(identifiers[0]) == (Outcome.VALID, None, "index")  # its neighbours are untouched

    # revocation is final on chain too: the engine's revert decodes to the contract's error
    package = services.service.package(AGENCY, identifiers[1])
    with pytest.raises(ContractRevert) as reverted:
        chain.registry.set_status(chain.agency, package.batch_root, package.batch_index, Status.ACTIVE, 1)
    assert reverted.value.name == "CertificateRegistryAlreadyRevoked"


def test_a_reorg_takes_the_anchor_away_and_both_services_recover(chain: World, services: Services) -> None:
    fork_point = chain.rpc("evm_snapshot")
    [identifier] = services.issue(1)
    first = services.batch()
    assert first.state == "confirmed" and first.block_number is not None
    assert services.verify(identifier) == (Outcome.VALID, None, "index")
    lost_head = chain.client.block_number()

    chain.rpc("evm_revert", fork_point)  # the anchor's block and those after it are gone
    chain.client._held_nonces.clear()
    chain.mine(lost_head - chain.client.block_number() + 1)  # a longer chain without them
    assert chain.client.block_number() > lost_head
    assert not chain.registry.inspect(first.root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored

    services.worker.track_sent()
    assert services.batch().state == "sealed" and services.certificate_states() == {"sealed"}
    assert [
        (f, t) for f, t, reason in services.moves() if f == "confirmed" and "reorg" in (reason or "")
    ] == [("confirmed", "sealed")]
    report = services.indexer.sync()
    assert report.reorged and report.rolled_back_to is not None and report.rolled_back_to < first.block_number
    package = services.service.package(AGENCY, identifier)
    outcome = verify_presentation(package, services.reader)
    assert (outcome.verdict, outcome.reason) == (Outcome.INVALID, "NOT_ANCHORED")

    services.worker.run_until_idle(timeout_s=60)  # anchored again, in a block of the new chain
    again = services.batch()
    assert again.state == "confirmed" and again.root == first.root and again.block_hash != first.block_hash
    assert services.verify(identifier) == (Outcome.VALID, None, "index")
