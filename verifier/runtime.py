"""Wire a verifier node together: database, index (its own indexer thread), chain head, readers,
checks with the node's policy, receipts key, shares, organisations and the access log."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry.crypto import DataCipher
from registry.errors import ChainUnavailable, EcertError
from registry.indexer import History, Indexer, create_schema
from registry.indexer.indexer import index_scope
from registry.indexer.lease import IndexerLease
from registry.secrets_files import load_or_create_secret
from registry.workspace import Workspace
from verifier.access_log import AccessLog, AccessRecorder, ForwardedAccessLog
from verifier.chain_reader import RegistryReader
from verifier.checks.freshness import KIND as FRESHNESS
from verifier.checks.freshness import FreshnessCheck
from verifier.checks.national_seal import KIND as NATIONAL_SEAL
from verifier.checks.national_seal import NationalSealCheck
from verifier.checks.policy import PolicyCheck
from verifier.checks.share import ShareCheck
from verifier.db import make_engine, migrate, sessions
from verifier.history import VerificationHistory
from verifier.holdings import Holdings
from verifier.orgs import Organisations
from verifier.outbox import OutboxSender
from verifier.pipeline import DEFAULT_CHECKS
from verifier.policy import Policy
from verifier.readers import HeadTracker, IndexReader
from verifier.receipt_store import ReceiptStore
from verifier.receipts import ReceiptSigner
from verifier.service import VerificationService
from verifier.settings import VerifierSettings
from verifier.shares import Shares
from verifier.staff import StaffAccounts
from verifier.subscriptions import Notifier, Subscriptions
from verifier.webhooks import WebhookSender

log = logging.getLogger(__name__)
STALL_S = 10.0  # an index lagging this long without moving has no working indexer


@dataclass
class VerifierRuntime:
    workspace: Workspace
    settings: VerifierSettings
    engine: Engine
    sessions: sessionmaker[Session]
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _outbox_written: threading.Event = field(default_factory=threading.Event)  # wakes the outbox sender
    _webhooks_wake: threading.Event = field(default_factory=threading.Event)  # wakes the webhook sender
    indexer_role: str = "another process"  # who indexes this node's database, as far as this process knows
    _seen_indexed: int = -1
    _progress_at: float = field(default_factory=time.monotonic)

    @classmethod
    def open(
        cls, workspace: Workspace | None = None, settings: VerifierSettings | None = None
    ) -> VerifierRuntime:
        workspace = workspace or Workspace()
        settings = settings or VerifierSettings()
        engine = make_engine(settings.url(workspace.settings))
        migrate(engine)
        create_schema(engine)
        index_scope(engine, settings.index_regions)  # a node started with another scope is refused now
        return cls(workspace, settings, engine, sessions(engine))

    @property
    def folder(self) -> Path:
        return self.settings.folder(self.workspace.settings)

    @cached_property
    def policy(self) -> Policy:
        return Policy.load(self.settings.policy_path())

    @cached_property
    def receipts(self) -> ReceiptSigner:
        return ReceiptSigner.load_or_create(self.settings.receipt_key_file or self.folder / "receipt-key.pem")

    @cached_property
    def organisations(self) -> Organisations:
        return Organisations(self.sessions, rate_per_min=self.settings.rate_limit_per_min)

    @cached_property
    def shares(self) -> Shares:
        return Shares(
            self.sessions,
            load_or_create_secret(self.folder / "data.key"),
            load_or_create_secret(self.settings.share_secret_file or self.folder / "share-hmac.key"),
        )

    @cached_property
    def staff(self) -> StaffAccounts:
        return StaffAccounts(
            self.sessions,
            load_or_create_secret(self.folder / "data.key"),
            load_or_create_secret(self.folder / "staff-hmac.key"),
        )

    @cached_property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(
            self.sessions,
            load_or_create_secret(self.folder / "data.key"),
            allow_http=self.settings.webhook_allow_http,
        )

    @cached_property
    def holdings(self) -> Holdings:
        return Holdings(self.sessions)

    @cached_property
    def access_log(self) -> AccessRecorder:
        """The database writer, or in a worker process of a node the sender to its node process."""
        if self.settings.access_log_socket:
            return ForwardedAccessLog(self.settings.access_log_socket, self.sessions)
        return AccessLog(self.sessions, on_outbox=self._outbox_written.set, cipher=self.data_cipher)

    @cached_property
    def data_cipher(self) -> DataCipher:
        """The node's data key (`data.key`): personal data at rest (shares, kept receipts' values)."""
        return DataCipher(load_or_create_secret(self.folder / "data.key"))

    @cached_property
    def receipt_store(self) -> ReceiptStore:
        return ReceiptStore(self.sessions, self.data_cipher, self.access_log)

    @cached_property
    def verification_history(self) -> VerificationHistory:
        return VerificationHistory(self.sessions, self.access_log)

    @cached_property
    def history(self) -> History:
        return History(self.engine)

    @cached_property
    def head(self) -> HeadTracker:
        return HeadTracker(self.workspace.client)

    @cached_property
    def reader(self) -> IndexReader:
        return IndexReader(
            self.history,
            RegistryReader(self.workspace.registry),
            self.head,
            max_lag=self.settings.index_max_lag_blocks,
        )

    @cached_property
    def service(self) -> VerificationService:
        checks = (  # the node's policy also says where the national seal is required, and how old a
            # last-known answer it accepts
            *(c for c in DEFAULT_CHECKS if c.kind not in (NATIONAL_SEAL, FRESHNESS)),
            NationalSealCheck(self.policy), FreshnessCheck(self.policy.accept_last_known_up_to_s),
            ShareCheck(), PolicyCheck(self.policy),
        )  # fmt: skip
        return VerificationService(
            self.reader, checks=checks, receipts=self.receipts, access_log=self.access_log,
            region=self.settings.region, chain_id=self.workspace.deployment.chain_id,
        )  # fmt: skip

    def start_outbox(self, poll_s: float = 1.0) -> None:
        """Send the access-log entries owed to other regions' nodes (`verifier.outbox`) in a
        background thread: each new one at once, retries when due, until `close`."""
        s = self.settings
        sender = OutboxSender(
            self.sessions, s.node_key, retry_base_s=s.outbox_retry_base_s, retry_max_s=s.outbox_retry_max_s,
            give_up_s=s.outbox_give_up_s,
        )  # fmt: skip
        thread = threading.Thread(
            target=sender.run,
            args=(self._stop, self._outbox_written, poll_s),
            name="access-outbox",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def start_webhooks(self, poll_s: float = 0.5) -> None:
        """Turn indexed status changes into subscribers' notifications and post those with a
        webhook (`verifier.webhooks`) in a background thread, until `close`. Safe in several
        processes on one database (notifications are made once, posts are claimed), but one is
        enough: `ecert serve verifier` runs it in the node process."""
        s = self.settings
        sender = WebhookSender(
            self.sessions, self.subscriptions, Notifier(self.sessions, region=s.region),
            retry_base_s=s.webhook_retry_base_s, retry_max_s=s.webhook_retry_max_s,
            max_attempts=s.webhook_max_attempts, give_up_s=s.webhook_give_up_s, timeout_s=s.webhook_timeout_s,
        )  # fmt: skip
        thread = threading.Thread(
            target=sender.run, args=(self._stop, self._webhooks_wake, poll_s), name="webhooks", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def start_indexer(self, poll_s: float = 0.5) -> None:
        """Follow the chain in a background thread while this process holds the database's indexer
        lease; otherwise stand by and take over when the indexing process dies."""
        thread = threading.Thread(
            target=self._index_while_leading, args=(poll_s,), name="indexer", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _index_while_leading(self, poll_s: float) -> None:
        lease = IndexerLease(self.engine)
        self.indexer_role = "standby"
        try:
            while not self._stop.is_set():
                try:
                    if lease.acquire():
                        self.indexer_role = "this process"
                        indexer = Indexer(  # made anew on each lease: another process may have moved the index on
                            self.workspace.client, self.workspace.registry, self.engine,
                            confirmations=self.settings.index_confirmations, start_block=self.workspace.deployment.block_number,
                            regions=self.settings.index_regions,
                        )  # fmt: skip
                        indexer.run_forever(poll_s, self._stop, while_=lease.check)
                    self.indexer_role = "standby"
                except (
                    EcertError,
                    SQLAlchemyError,
                ) as exc:  # chain or database away while taking over: try again
                    log.warning("indexer not running (%s): retrying", exc.__class__.__name__)
                self._stop.wait(poll_s * 4)
        finally:
            lease.release()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Whether this node can answer from a fresh index and a reachable chain, and the facts:
        the chain unreachable, or the index lagging with no progress for `STALL_S`, is unhealthy."""
        self.history.refresh()
        indexed, problems = self.history.indexed_block, list[str]()
        try:
            head: int | None = self.head.block
        except ChainUnavailable:
            head = None
            problems.append("CHAIN_UNAVAILABLE")
        now = time.monotonic()
        lag = head - indexed if head is not None else None
        if indexed != self._seen_indexed or (lag is not None and lag <= self.settings.index_max_lag_blocks):
            self._seen_indexed, self._progress_at = indexed, now
        elif lag is not None and now - self._progress_at > STALL_S:
            problems.append("INDEX_STALLED")
        return not problems, {
            "region": self.settings.region, "status": "unhealthy" if problems else "ok", "problems": problems,
            "indexedBlock": indexed, "headBlock": head, "lagBlocks": lag, "indexer": self.indexer_role,
        }  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._outbox_written.set()  # the outbox sender waits on this, not on `_stop`
        self._webhooks_wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if "access_log" in self.__dict__:
            self.access_log.close()
        self.engine.dispose()
