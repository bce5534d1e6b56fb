"""Reverted anchors and reorgs, on the session anvil (issue 10, points 10 and 12).

- A permanent refusal (the type grant lost, the key retired) moves the batch and its
  certificates to `refused`, with the contract error, and nothing is sent again; the job says so.
- A transient failure (out of gas) is tried again after a back-off that doubles.
- An anchor that a reorg takes away (anvil `evm_snapshot` / `evm_revert`) sends its batch back
  to be anchored again, recorded in `batch_events`; no certificate stays `confirmed`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TYPE_BUSINESS_LICENCE as TYPE
from conftest import ZJ_AGENCY_CODE as AGENCY
from conftest import Roles
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from issuer import anchoring as anchoring_module
from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.api.schemas import CertificateResponse, JobResponse
from issuer.db import make_engine, migrate, sessions
from issuer.models import Batch, BatchEvent, Certificate
from issuer.service import IssuerService
from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.contracts.trust_registry import to_bytes32
from registry.deploy import Deployment

pytestmark = pytest.mark.chain


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Issuer:
    sessions: sessionmaker[Session]
    service: IssuerService
    worker: AnchoringWorker
    registry: CertificateRegistry
    client: ChainClient
    roles: Roles
    clock: Clock

    def submit(self, n: int = 3) -> str:
        records = [
            {"holder": {"name": f"商户{i}", "code": "91330106MA2H3XY60L"}, "ext": {"n": i}} for i in range(n)
        ]
        return self.service.submit(AGENCY, TYPE, records, type_name="营业执照").id

    def sent(self) -> int:
        """Transactions the agency key has had mined (its confirmed nonce)."""
        return self.client.w3.eth.get_transaction_count(self.roles.agency.address, "latest")

    def batch(self) -> Batch:
        with self.sessions() as session:
            return session.scalars(select(Batch)).one()

    def certificate_states(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(Certificate.state)))

    def events(self) -> list[tuple[str, str, str | None]]:
        with self.sessions() as session:
            return [
                (e.from_state, e.to_state, e.reason)
                for e in session.scalars(select(BatchEvent).order_by(BatchEvent.id))
            ]


@pytest.fixture
def issuer(tmp_path: Path, chain: ChainClient, deployment: Deployment, roles: Roles) -> Iterator[Issuer]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    made = sessions(engine)
    registry = deployment.registry(chain)
    service = IssuerService(
        made, os.urandom(32), chain_id=chain.chain_id, registry_address=deployment.certificate_registry,
        signer_for=lambda _code: roles.agency, processes=1,
    )  # fmt: skip
    service.ensure_agency(AGENCY, "杭州市市场监督管理局", "330100")
    clock = Clock()
    settings = WorkerSettings(
        batch_window_s=0, confirmations=1, finality_depth=12, retry_base_s=1.0, retry_max_s=30.0
    )
    worker = AnchoringWorker(made, registry, lambda _code: roles.agency, settings, clock=clock)
    yield Issuer(made, service, worker, registry, chain, roles, clock)
    service.close()
    engine.dispose()


def assert_refused(issuer: Issuer, job_id: str, error: str) -> None:
    batch = issuer.batch()
    assert batch.state == "refused" and batch.refusal == error, (batch.state, batch.last_error)
    assert error in batch.last_error
    assert issuer.certificate_states() == {"refused"}
    job = issuer.service.job(AGENCY, job_id)
    assert job.done and job.counts["refused"] == 3 and job.counts["confirmed"] == 0
    assert [(r["code"], r["count"]) for r in job.refusals] == [(error, 3)]
    answer = JobResponse.of(job).model_dump(by_alias=True)  # what GET /v1/jobs/{id} answers
    assert answer["done"] and answer["counts"]["refused"] == 3
    assert (
        answer["refusals"][0]["code"] == error
        and answer["refusals"][0]["batchRoot"] == "0x" + batch.root.hex()
    )
    described = CertificateResponse.model_validate(
        issuer.service.describe(AGENCY, job.identifiers[0])
    ).model_dump(by_alias=True)
    assert described["state"] == "refused"  # what GET /v1/certificates/{id} answers
    assert (described["batch"]["state"], described["batch"]["refusal"]) == ("refused", error)
    assert list(issuer.service.job_packages(AGENCY, job_id)) == []  # no package for a root never anchored
    assert issuer.worker.outstanding([job_id]) == 0
    issuer.worker.run_until_idle(job_ids=[job_id], timeout_s=10)  # `ecert issue` stops waiting


def test_a_lost_type_grant_refuses_the_batch_once_and_sends_nothing(issuer: Issuer) -> None:
    job_id = issuer.submit()
    issuer.registry.revoke_types(issuer.roles.authority, AGENCY, [TYPE])
    before = issuer.sent()
    for _ in range(20):
        issuer.worker.run_once(flush=True)
        issuer.clock.advance(60)  # well past any back-off
    assert issuer.sent() == before, "a refused anchor was sent (and paid for)"
    assert_refused(issuer, job_id, "TrustRegistryTypeNotGranted")
    assert [e[:2] for e in issuer.events()] == [("sealed", "refused")]


def test_a_retired_key_refuses_the_batch(issuer: Issuer) -> None:
    job_id = issuer.submit()
    issuer.registry.retire_key(issuer.roles.authority, issuer.roles.agency.address)
    for _ in range(5):
        issuer.worker.run_once(flush=True)
        issuer.clock.advance(60)
    assert_refused(issuer, job_id, "TrustRegistryKeyNotActive")


def test_an_anchor_that_reverts_once_mined_is_refused_and_never_sent_again(issuer: Issuer) -> None:
    """The grant is revoked in the very block that mines the anchor (after the simulation said
    yes): the mined transaction reverts, the revert is decoded and the batch refused."""
    job_id = issuer.submit()
    w3, authority = issuer.client.w3, issuer.roles.authority
    before = issuer.sent()
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        issuer.worker.run_once(flush=True)  # simulated, signed, broadcast: pending
        assert issuer.batch().state == "sending"
        revoke = issuer.registry.contract.functions.revokeTypes(to_bytes32(AGENCY), [to_bytes32(TYPE)]).build_transaction({
            "from": authority.address, "nonce": w3.eth.get_transaction_count(authority.address, "pending"), "gas": 200_000,
            "chainId": issuer.client.chain_id, "maxFeePerGas": 200 * 10**9, "maxPriorityFeePerGas": 100 * 10**9,
        })  # fmt: skip  # the higher tip goes first in the block
        w3.eth.send_raw_transaction(authority.sign_transaction(revoke).raw_transaction)
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    for _ in range(10):
        issuer.worker.run_once(flush=True)
        issuer.clock.advance(60)
    assert issuer.sent() == before + 1, "only the one anchor that reverted was sent"
    assert_refused(issuer, job_id, "TrustRegistryTypeNotGranted")
    assert "reverted in block" in issuer.batch().last_error
    assert [e[:2] for e in issuer.events()] == [("sealed", "sending"), ("sending", "refused")]


def test_out_of_gas_is_retried_after_a_back_off_that_doubles(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = issuer.submit()
    monkeypatch.setattr(anchoring_module, "ANCHOR_GAS", 30_000)  # enough to start, not to finish
    starving = {"on": True}  # while on, a retry's gas estimate is too small as well
    real_estimate = issuer.client._estimate
    monkeypatch.setattr(
        issuer.client, "_estimate", lambda *a, **k: 20_000 if starving["on"] else real_estimate(*a, **k)
    )
    before = issuer.sent()

    issuer.worker.run_once(flush=True)  # sent, mined out of gas, backed off 1 s
    assert issuer.sent() == before + 1
    for _ in range(5):
        issuer.worker.run_once(flush=True)
    assert issuer.sent() == before + 1, "retried before the back-off was over"
    batch = issuer.batch()
    assert batch.state == "sealed" and "out of gas" in batch.last_error
    assert batch.retry_at.replace(tzinfo=dt.UTC) == issuer.clock.now + dt.timedelta(seconds=1)

    issuer.clock.advance(1)
    issuer.worker.run_once(flush=True)  # second attempt, out of gas again: 2 s now
    assert issuer.sent() == before + 2
    assert issuer.batch().retry_at.replace(tzinfo=dt.UTC) == issuer.clock.now + dt.timedelta(seconds=2)
    issuer.clock.advance(1)
    issuer.worker.run_once(flush=True)
    assert issuer.sent() == before + 2, "retried before the doubled back-off was over"

    starving["on"] = False
    issuer.clock.advance(1)
    issuer.worker.run_until_idle(
        job_ids=[job_id], timeout_s=30
    )  # the third, with the estimated gas, goes through
    assert issuer.sent() == before + 3
    assert issuer.batch().state == "confirmed" and issuer.certificate_states() == {"confirmed"}
    assert issuer.registry.inspect(issuer.batch().root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored


def test_a_reorg_sends_a_confirmed_batch_back_to_be_anchored_again(issuer: Issuer) -> None:
    w3 = issuer.client.w3
    job_id = issuer.submit()
    fork_point = w3.provider.make_request("evm_snapshot", [])["result"]
    issuer.worker.run_until_idle(job_ids=[job_id], timeout_s=30)
    first = issuer.batch()
    assert first.state == "confirmed" and issuer.certificate_states() == {"confirmed"}

    w3.provider.make_request("evm_revert", [fork_point])  # the blocks since the fork point are gone
    issuer.client._held_nonces.clear()
    w3.provider.make_request("evm_mine", [])  # another block in their place
    root = first.root
    assert not issuer.registry.inspect(root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored

    issuer.worker.track_sent()
    assert issuer.certificate_states() == {"sealed"}, (
        "a certificate stayed confirmed while its root is not on chain"
    )
    assert issuer.batch().state == "sealed"
    reorg = [e for e in issuer.events() if e[0] == "confirmed"]
    assert len(reorg) == 1 and reorg[0][1] == "sealed" and "reorg" in reorg[0][2]
    assert not issuer.service.job(AGENCY, job_id).done

    issuer.worker.run_until_idle(job_ids=[job_id], timeout_s=30)
    again = issuer.batch()
    assert again.state == "confirmed" and again.root == root and issuer.certificate_states() == {"confirmed"}
    assert issuer.registry.inspect(root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored
    assert (
        first.block_hash
        and again.block_hash == "0x" + bytes(w3.eth.get_block(again.block_number)["hash"]).hex()
    )


def test_anchors_deeper_than_the_finality_depth_are_no_longer_followed(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A confirmed anchor is followed until it is `finality_depth` blocks deep, then costs no
    more calls (a consortium chain with instant finality sets 0 or 1: confirmed is final)."""
    issuer.worker.settings.finality_depth = 2
    job_id = issuer.submit()
    issuer.worker.run_until_idle(job_ids=[job_id], timeout_s=30)
    calls: list[str] = []
    real = issuer.worker._follow
    monkeypatch.setattr(
        issuer.worker, "_follow", lambda batch, head: calls.append(batch.state) or real(batch, head)
    )
    issuer.client.w3.provider.make_request("evm_mine", [])
    issuer.worker.track_sent()
    assert calls == ["confirmed"]  # one block deep of two: still followed
    issuer.client.w3.provider.make_request("evm_mine", [])
    issuer.worker.track_sent()
    assert calls == ["confirmed"]  # two deep: final
    assert issuer.batch().state == "confirmed"
