"""Wire an issuer together from settings: database (migrated), service, worker, status, signers.
The API, the CLI and the benchmarks all start from `IssuerRuntime.open()`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.audit import AuditAnchorer, AuditLog
from issuer.blind_index import blind_index_for
from issuer.corrections import CorrectionRequests
from issuer.db import make_engine, migrate, sessions
from issuer.intake_batches import IntakeBatching
from issuer.proposals import ProposalSender, SenderSettings, StatusProposals, after_each
from issuer.service import IssuerService
from issuer.settings import IssuerSettings
from issuer.signers import SignerPool
from issuer.status import StatusService
from registry.rate_limit import KeyedTokenBucket
from registry.workspace import Workspace


@dataclass
class IssuerRuntime:
    workspace: Workspace
    settings: IssuerSettings
    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def open(
        cls, workspace: Workspace | None = None, settings: IssuerSettings | None = None
    ) -> IssuerRuntime:
        workspace = workspace or Workspace()
        settings = settings or IssuerSettings()
        engine = make_engine(settings.url(workspace.settings))
        migrate(engine)
        return cls(workspace, settings, engine, sessions(engine))

    @cached_property
    def signers(self) -> SignerPool:
        return SignerPool(self.workspace.keystore)

    @cached_property
    def service(self) -> IssuerService:
        deployment = self.workspace.deployment
        return IssuerService(
            self.sessions, self.settings.load_data_key(self.workspace.settings),
            chain_id=deployment.chain_id, registry_address=deployment.certificate_registry, signer_for=self.signers,
            claim_ttl=dt.timedelta(days=self.settings.claim_code_ttl_days),
            blind_index=blind_index_for(self),  # every intake (API, `ecert issue`, the demo) is searchable
            national_key_for=self.signers.national_key, national_group=self.settings.national_seal_group,
            intake_batching=IntakeBatching(self.settings.batch_size, self.settings.batch_min_size),
        )  # fmt: skip

    @cached_property
    def worker(self) -> AnchoringWorker:
        s = self.settings
        worker = AnchoringWorker(
            self.sessions, self.workspace.registry, self.signers,
            WorkerSettings(
                s.batch_size, s.batch_window_s, s.confirmations, s.retry_max_s, s.finality_depth,
                batch_max_wait_s=s.batch_max_wait_s, batch_min_size=s.batch_min_size,
            ),
            national_key_for=self.signers.national_key, national_group=s.national_seal_group,
        )  # fmt: skip
        if s.audit_anchor_interval_h > 0:  # the daily anchor of each agency's audit log head
            interval = dt.timedelta(hours=s.audit_anchor_interval_h)
            worker.after_pass = AuditAnchorer(
                AuditLog(self.sessions), self.workspace.registry, self.signers, interval
            )
        worker.after_pass = after_each(worker.after_pass, self.proposal_sender)  # approved status changes
        return worker

    @cached_property
    def proposals(self) -> StatusProposals:
        """Status changes proposed by a clerk, approved by another person (issue 12, point 5)."""
        return StatusProposals(self.sessions, AuditLog(self.sessions))

    @cached_property
    def proposal_sender(self) -> ProposalSender:
        """The outbox that sends approved status changes to the chain (run after each worker pass)."""
        s = self.settings
        return ProposalSender(
            self.sessions, self.workspace.registry, self.signers, AuditLog(self.sessions),
            SenderSettings(confirmations=s.confirmations, retry_max_s=s.retry_max_s),
        )  # fmt: skip

    @cached_property
    def claim_limit(self) -> KeyedTokenBucket:
        """Claim attempts per client address (the public claim endpoint's brute-force guard)."""
        return KeyedTokenBucket(self.settings.claim_rate_per_min)

    @cached_property
    def corrections(self) -> CorrectionRequests:
        """Holders' correction requests and the agency's answers (issue 12, point 9)."""
        return CorrectionRequests(
            self.sessions, self.service, self.settings.load_data_key(self.workspace.settings),
            self.settings.correction_hours_for, audit=AuditLog(self.sessions),
        )  # fmt: skip

    @cached_property
    def correction_limit(self) -> KeyedTokenBucket:
        """Failed correction requests and reads per client address and subject (a request id, a
        certificate), at `ECERT_ISSUER_CLAIM_RATE_PER_MIN`."""
        return KeyedTokenBucket(self.settings.claim_rate_per_min)

    @cached_property
    def correction_flood_limit(self) -> KeyedTokenBucket:
        """Failed correction requests and reads per client address, at ten times that rate (a
        wallet server asks for all its holders from one address)."""
        return KeyedTokenBucket(self.settings.claim_rate_per_min * 10)

    @cached_property
    def status(self) -> StatusService:
        return StatusService(self.sessions, self.service, self.workspace.registry, self.signers)

    def register_agency(self, code: str) -> None:
        """Serve an agency whose key is in the keystore, with its name and region from the chain."""
        info = self.workspace.registry.agency(code)
        self.service.ensure_agency(info.code, info.name, str(info.region))

    def close(self) -> None:
        if "service" in self.__dict__:
            self.service.close()
        self.engine.dispose()
