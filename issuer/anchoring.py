"""The anchoring worker: pending certificates → sealed batches → signed transactions → mined →
confirmed. Each step is one database transaction, so killing the process at any moment loses
nothing, and a batch root is never sent again once it is on chain:

- a batch's signed transaction is stored *before* it is broadcast; after a restart the same
  bytes (same nonce, same hash) are re-broadcast, which the chain accepts at most once;
- before signing anew, the worker asks the chain whether the root is already anchored (the
  contract also refuses a second anchor of a root).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3.exceptions import TransactionNotFound

from issuer.models import Batch, Certificate
from registry.certificate.merkle import batch_tree
from registry.certificate.seal import recover_sealer, sign_seal
from registry.contracts.certificate_registry import ANCHOR_GAS, CertificateRegistry
from registry.contracts.trust_registry import to_bytes32
from registry.errors import ChainError, ChainUnavailable

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    batch_size: int = 10_000
    batch_window_s: float = 1.0
    confirmations: int = 1
    retry_max_s: float = 30.0


class AnchoringWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: CertificateRegistry,
        signer_for: Callable[[str], LocalAccount],
        settings: WorkerSettings | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._client = registry.client
        self._signer_for = signer_for
        self.settings = settings or WorkerSettings()
        self._clock = clock

    # ─── step 1: seal pending certificates into batches ──────────────────────────────────

    def seal_pending(self, *, flush: bool = False) -> int:
        """Make batches of pending certificates (full ones, or older than the window); count them."""
        made = 0
        with self._sessions() as session:
            groups = session.execute(
                select(Certificate.agency_code, Certificate.type_code, func.count(), func.min(Certificate.created_at))
                .where(Certificate.state == "pending")
                .group_by(Certificate.agency_code, Certificate.type_code)
            ).all()
        for agency_code, type_code, count, oldest in groups:
            window_over = oldest is None or _age_s(oldest, self._clock()) >= self.settings.batch_window_s
            while count > 0 and (count >= self.settings.batch_size or flush or window_over):
                # A job committed since the count was read may be sealed along (count goes below
                # zero); nothing left to seal ends the group. Either way the loop ends.
                sealed = self._seal_one(agency_code, type_code)
                if not sealed:
                    break
                count -= sealed
                made += 1
        return made

    def _seal_one(self, agency_code: str, type_code: str) -> int:
        signer = self._signer_for(agency_code)
        with self._sessions() as session:
            pending = (Certificate.state == "pending", Certificate.agency_code == agency_code, Certificate.type_code == type_code)
            rows = session.execute(
                select(Certificate.id, Certificate.digest).where(*pending).order_by(Certificate.id).limit(self.settings.batch_size)
            ).all()
            if not rows:
                return 0
            tree = batch_tree([row.digest for row in rows])
            batch = Batch(agency_code=agency_code, type_code=type_code, root=tree.root, count=len(rows), signer=signer.address)
            session.add(batch)
            session.flush()
            first, last = rows[0].id, rows[-1].id
            if last - first + 1 == len(rows):  # one job's rows are contiguous: one statement
                session.execute(
                    update(Certificate)
                    .where(Certificate.id.between(first, last), *pending)
                    .values(state="sealed", batch_id=batch.id, batch_index=Certificate.id - first)
                )
            else:
                session.execute(
                    update(Certificate),
                    [{"id": row.id, "state": "sealed", "batch_id": batch.id, "batch_index": i} for i, row in enumerate(rows)],
                )
            session.commit()
            log.info("sealed batch %s of %d %s certificates for %s", batch.id, len(rows), type_code, agency_code)
            return len(rows)

    # ─── step 2: sign, store, broadcast ──────────────────────────────────────────────────

    def send_sealed(self) -> int:
        """Sign and broadcast every sealed batch; return how many were sent."""
        with self._sessions() as session:
            batch_ids = session.scalars(select(Batch.id).where(Batch.state == "sealed").order_by(Batch.id)).all()
        for batch_id in batch_ids:
            self._sign_and_send(batch_id)
        return len(batch_ids)

    def _sign_and_send(self, batch_id: int) -> None:
        with self._sessions() as session:
            batch = session.get(Batch, batch_id)
            if self._is_anchored(batch.root):
                batch.state, batch.block_number = "mined", self._anchored_block(batch.root)
                session.commit()
                return
            signer = self._signer_for(batch.agency_code)
            self._seal_with(session, batch, signer)
            nonce = self._free_nonce(session, signer.address)
            try:
                call = self._registry.contract.functions.anchor(batch.root, batch.count, to_bytes32(batch.type_code))
                tx = call.build_transaction(
                    {"from": signer.address, "nonce": nonce, "gas": ANCHOR_GAS, "chainId": self._client.chain_id, **self._client._fees()}
                )
                signed = signer.sign_transaction(tx)
                batch.raw_tx, batch.tx_hash, batch.nonce = bytes(signed.raw_transaction), "0x" + signed.hash.hex().removeprefix("0x"), nonce
                batch.state, batch.attempts = "sending", batch.attempts + 1
                session.commit()  # stored before broadcast: a crash now re-broadcasts these bytes
                self._broadcast(batch)
            finally:  # from here the node (pending) or our table (sending) keeps the nonce taken
                self._client.release_nonce(signer.address, nonce)

    def _seal_with(self, session: Session, batch: Batch, signer: LocalAccount) -> None:
        """Make `signer` (the agency's current key) the sealer of every certificate of `batch`.

        A key rotated between intake and anchoring is retired on chain from that moment, so a
        seal it made would not verify against an anchor made later: such certificates are sealed
        again by the current key (their digests, hence the batch root, do not change).
        """
        rows = session.execute(
            select(Certificate.id, Certificate.digest, Certificate.seal, Certificate.sealed_by)
            .where(Certificate.batch_id == batch.id, or_(Certificate.sealed_by.is_(None), Certificate.sealed_by != signer.address))
        ).all()  # fmt: skip
        if not rows and batch.signer == signer.address:
            return
        chain_id, registry, key = self._client.chain_id, self._registry.address, bytes(signer.key)
        changes = []
        for row in rows:
            if row.sealed_by is None and row.seal and recover_sealer(chain_id, registry, row.digest, row.seal) == signer.address:
                changes.append({"id": row.id, "sealed_by": signer.address})  # from before the column: already this key's
            else:
                changes.append({"id": row.id, "seal": sign_seal(key, chain_id, registry, row.digest), "sealed_by": signer.address})
        if changes:
            session.execute(update(Certificate), changes)
        resealed = sum("seal" in change for change in changes)
        if resealed:
            log.warning("batch %s: %d certificate(s) sealed by a rotated key were sealed again by %s", batch.id, resealed, signer.address)
        batch.signer = signer.address

    def _free_nonce(self, session: Session, signer: str) -> int:
        """The lowest nonce neither the node nor any transaction we stored uses: after a chain lost
        recent blocks (a restart from an older state, a reorg) this fills the gap that would
        otherwise hold every later transaction of the key in the queue forever."""
        taken = set(session.scalars(select(Batch.nonce).where(Batch.signer == signer, Batch.state == "sending")))
        return self._client.allocate_nonce(signer, taken)

    def _broadcast(self, batch: Batch) -> None:
        try:
            self._client.guard(lambda: self._client.w3.eth.send_raw_transaction(batch.raw_tx))
        except ChainUnavailable:
            raise
        except ChainError as exc:  # already known, nonce too low…: the receipt check decides
            log.info("broadcast of batch %s: %s", batch.id, exc.message)

    # ─── step 3: receipts and confirmations ──────────────────────────────────────────────

    def track_sent(self) -> int:
        """Move sending → mined → confirmed as the chain allows; return how many moved."""
        moved = 0
        head = self._client.block_number()
        with self._sessions() as session:
            for batch in session.scalars(select(Batch).where(Batch.state.in_(("sending", "mined"))).order_by(Batch.id)):
                if batch.state == "sending" and self._track_sending(session, batch):
                    moved += 1
                if batch.state == "mined":
                    if not self._is_anchored(batch.root):  # a reorg or a restored older state took it away
                        batch.state, batch.raw_tx, batch.block_number = "sealed", None, None
                        self._set_certificates(session, batch.id, "sealed")
                        moved += 1
                    elif batch.block_number is None or batch.block_number > head:
                        batch.block_number = self._anchored_block(batch.root) or head
                    elif head - batch.block_number + 1 >= self.settings.confirmations:
                        batch.state, batch.confirmed_at = "confirmed", self._clock()
                        self._set_certificates(session, batch.id, "confirmed")
                        moved += 1
                session.commit()
        return moved

    def _track_sending(self, session: Session, batch: Batch) -> bool:
        try:
            receipt = self._client.guard(lambda: self._client.w3.eth.get_transaction_receipt(batch.tx_hash))
        except TransactionNotFound:
            receipt = None
        except ChainError as exc:
            if exc.__cause__ is not None and isinstance(exc.__cause__, TransactionNotFound):
                receipt = None
            elif isinstance(exc, ChainUnavailable):
                raise
            else:
                receipt = None
        if receipt is not None and receipt["status"] == 1:
            batch.state, batch.block_number = "mined", receipt["blockNumber"]
            self._set_certificates(session, batch.id, "anchored")
            return True
        if self._is_anchored(batch.root):
            batch.state, batch.block_number = "mined", self._anchored_block(batch.root)
            self._set_certificates(session, batch.id, "anchored")
            return True
        confirmed_nonce = self._client.guard(lambda: self._client.w3.eth.get_transaction_count(batch.signer, "latest"))
        if receipt is not None or confirmed_nonce > (batch.nonce or 0):
            self._client.release_nonce(batch.signer, batch.nonce)
            batch.state, batch.raw_tx, batch.last_error = "sealed", None, "transaction failed or replaced; signing again"
            return True
        self._broadcast(batch)  # still pending or dropped: the same bytes again
        return False

    def _set_certificates(self, session: Session, batch_id: int, state: str) -> None:
        session.execute(update(Certificate).where(Certificate.batch_id == batch_id).values(state=state))

    def _is_anchored(self, root: bytes) -> bool:
        return self._registry.inspect(root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored

    def _anchored_block(self, root: bytes) -> int | None:
        event = self._registry.contract.events.BatchAnchored()
        logs = self._client.guard(
            lambda: event.get_logs(from_block=0, argument_filters={"root": root})
        )
        return logs[-1]["blockNumber"] if logs else None

    # ─── the loop ────────────────────────────────────────────────────────────────────────

    def run_once(self, *, flush: bool = False) -> bool:
        """One pass of every step; True if anything moved."""
        made = self.seal_pending(flush=flush)
        sent = self.send_sealed()
        moved = self.track_sent()
        return bool(made or sent or moved)

    def run_until_idle(
        self,
        *,
        job_ids: Collection[str] | None = None,
        timeout_s: float = 600.0,
        poll_s: float = 0.05,
        on_pass: Callable[[], None] | None = None,
    ) -> None:
        """Work until the certificates of `job_ids` (default: every one) are confirmed: the CLI's
        synchronous issue, which must not wait on somebody else's stuck batch. `on_pass` is
        called after each pass (the CLI's progress bar)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                self.run_once(flush=True)
                if on_pass is not None:
                    on_pass()
                if not self.outstanding(job_ids):
                    return
                deadline.wait(poll_s)
            raise ChainError(f"Certificates still unconfirmed after {timeout_s:.0f} s", code="ANCHOR_TIMEOUT")
        finally:
            timer.cancel()

    def outstanding(self, job_ids: Collection[str] | None = None) -> int:
        """Certificates not yet confirmed (of `job_ids` only, if given)."""
        query = select(func.count()).select_from(Certificate).where(Certificate.state != "confirmed")
        if job_ids is not None:
            query = query.where(Certificate.job_id.in_(list(job_ids)))
        with self._sessions() as session:
            return session.scalar(query) or 0

    def run_forever(self, stop: threading.Event, *, poll_s: float = 0.2) -> None:
        """Work until `stop` is set; chain outages are retried with capped exponential backoff."""
        backoff = poll_s
        while not stop.is_set():
            try:
                busy = self.run_once()
                backoff = poll_s
                stop.wait(0 if busy else poll_s)
            except ChainError as exc:
                log.warning("anchoring paused (%s): retrying in %.1f s", exc.code, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("anchoring step failed: retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)


def _age_s(moment: dt.datetime, now: dt.datetime) -> float:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return (now - moment).total_seconds()
