"""The anchoring worker: pending certificates → sealed batches → signed transactions → mined →
confirmed. Each step is one database transaction, so killing the process at any moment loses
nothing, and a batch root is never sent again once it is on chain:

- a batch's signed transaction is stored *before* it is broadcast; after a restart the same
  bytes (same nonce, same hash) are re-broadcast, which the chain accepts at most once;
- before signing anew, the worker asks the chain whether the root is already anchored (the
  contract also refuses a second anchor of a root).

A reverted anchor is never sent again blindly: the revert is decoded (`anchor_outcome`). A
refusal that another attempt would meet again (type not granted, key not active, agency unknown
or suspended) moves the batch and its certificates to `refused`, with the contract error, and
stops; anything else (out of gas, a panic, an unknown error) is tried again after an exponential
back-off. Every anchor is simulated (`eth_call`) before it is signed, so a refusal costs no gas.

Anchors are followed to `finality_depth` blocks: one that a reorg takes away sends its batch back
to `sealed` (its certificates too, even if they were confirmed) to be anchored again. Every
state change of a batch is recorded in `batch_events`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import cast

from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, TxReceipt

from issuer.models import Batch, BatchEvent, Certificate, Job
from issuer.national_groups import reseal_stale
from registry.certificate.merkle import batch_tree
from registry.certificate.national_seal import NATIONAL_GROUP
from registry.certificate.seal import recover_sealer, sign_seal
from registry.chain.client import checksum_address
from registry.chain.reverts import anchor_outcome
from registry.contracts.certificate_registry import ANCHOR_GAS, CertificateRegistry
from registry.contracts.trust_registry import to_bytes32
from registry.error_codes import ErrorCode
from registry.errors import ChainError, ChainUnavailable, ContractRevert
from registry.national import key_id, public_key

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    """How batches are cut. Under bulk load a batch fills to `batch_size`. Otherwise pending
    certificates wait `batch_window_s` for others; then their batch is sealed if it has
    `batch_min_size` certificates, or if the agency's last batch was sealed `batch_max_wait_s`
    ago or more: a trickle of single requests makes at most one anchoring transaction per agency
    and type every `batch_max_wait_s`, while a lone request after a quiet spell waits only the
    window. `batch_max_wait_s=0` cuts a batch every window, whatever its size."""

    batch_size: int = 10_000
    batch_window_s: float = 1.0
    confirmations: int = 1
    retry_max_s: float = 30.0
    finality_depth: int = 12
    retry_base_s: float = 1.0  # the first back-off after a failed anchor; doubles up to retry_max_s
    batch_max_wait_s: float = 10.0
    batch_min_size: int = 100

    @property
    def watch_depth(self) -> int:
        """Blocks an anchor is followed for: a confirmed anchor is watched until this deep."""
        return max(self.confirmations, self.finality_depth)

    def seal_due(self, pending: int, oldest_age_s: float, since_agency_sealed_s: float) -> bool:
        """Whether a group of `pending` certificates, the oldest waiting `oldest_age_s`, is sealed
        now, the agency's last batch being `since_agency_sealed_s` old (infinite: none yet)."""
        if pending >= self.batch_size:
            return True
        if oldest_age_s < self.batch_window_s:
            return False
        return pending >= self.batch_min_size or since_agency_sealed_s >= self.batch_max_wait_s


class AnchoringWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: CertificateRegistry,
        signer_for: Callable[[str], LocalAccount],
        settings: WorkerSettings | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        national_key_for: Callable[[str], bytes | None] | None = None,
        national_group: int = NATIONAL_GROUP,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._client = registry.client
        self._signer_for = signer_for
        self._national_key_for = national_key_for  # the agency's current SM2 key (national co-seal)
        self._national_group = national_group
        self.settings = settings or WorkerSettings()
        self._clock = clock
        self._agency_sealed_at: dict[str, dt.datetime] = {}  # when each agency's last batch was cut
        self._watched_head: tuple[int, bytes] | None = None  # head when confirmed anchors were last checked
        # A periodic job run after each pass of `run_forever` (the daily audit log anchor,
        # `issuer.audit.AuditAnchorer`); its failures are logged, never the anchoring's back-off.
        self.after_pass: Callable[[], object] | None = None

    # ─── step 1: seal pending certificates into batches ──────────────────────────────────

    def seal_pending(self, *, flush: bool = False) -> int:
        """Make batches of pending certificates (full ones, or older than the window); count them."""
        made = 0
        with self._sessions() as session:
            groups = session.execute(pending_groups()).all()
        now, sealed_agencies = self._clock(), set[str]()
        for agency_code, type_code, pending, oldest in groups:
            # A negative age (the clock was set back, or disagrees with the database's) counts
            # as long over: a certificate never waits for a clock to catch up.
            age = _age_or_inf(oldest, now)
            last = self._agency_sealed_at.get(agency_code)
            since_last = float("inf") if agency_code in sealed_agencies else _age_or_inf(last, now)
            count = pending
            while count > 0 and (flush or self.settings.seal_due(count, age, since_last)):
                # A job committed since the count was read may be sealed along (count goes below
                # zero); nothing left to seal ends the group. Either way the loop ends.
                sealed = self._seal_one(agency_code, type_code)
                if not sealed:
                    break
                count -= sealed
                made += 1
                sealed_agencies.add(agency_code)  # its other types' batches of this pass go too
        for agency_code in sealed_agencies:
            self._agency_sealed_at[agency_code] = now
        return made

    def _seal_one(self, agency_code: str, type_code: str) -> int:
        signer = self._signer_for(agency_code)
        with self._sessions() as session:
            pending = _pending_of(agency_code, type_code)
            rows = session.execute(pending_rows(agency_code, type_code, self.settings.batch_size)).all()
            if not rows:
                return 0
            tree = batch_tree([row.digest for row in rows])
            batch = Batch(
                agency_code=agency_code,
                type_code=type_code,
                root=tree.root,
                count=len(rows),
                signer=signer.address,
            )
            session.add(batch)
            session.flush()
            first, last = rows[0].id, rows[-1].id
            if last - first + 1 == len(rows):  # one job's rows are contiguous: one statement
                session.execute(
                    update(Certificate)
                    .where(Certificate.id.between(first, last), *pending)
                    .values(intake_state="sealed", batch_id=batch.id, batch_index=Certificate.id - first)
                )
            else:
                session.execute(
                    update(Certificate),
                    [
                        {"id": row.id, "intake_state": "sealed", "batch_id": batch.id, "batch_index": i}
                        for i, row in enumerate(rows)
                    ],
                )
            session.commit()
            log.info(
                "sealed batch %s of %d %s certificates for %s", batch.id, len(rows), type_code, agency_code
            )
            return len(rows)

    # ─── step 2: sign, store, broadcast ──────────────────────────────────────────────────

    def send_sealed(self) -> int:
        """Sign and broadcast every sealed batch whose back-off is over; return how many were tried."""
        now = self._clock()
        with self._sessions() as session:
            rows = session.execute(
                select(Batch.id, Batch.retry_at).where(Batch.state == "sealed").order_by(Batch.id)
            ).all()
        due = [row.id for row in rows if row.retry_at is None or _age_s(row.retry_at, now) >= 0]
        for batch_id in due:
            self._sign_and_send(batch_id)
        return len(due)

    def _sign_and_send(self, batch_id: int) -> None:
        with self._sessions() as session:
            batch = session.get_one(Batch, batch_id)
            if self._is_anchored(batch.root):
                self._anchored_elsewhere(session, batch)
                session.commit()
                return
            signer = self._signer_for(batch.agency_code)
            call = self._anchor_call(batch)
            revert = self._client.revert_of(signer.address, call)  # what the chain would say, for free
            if revert is not None:
                batch.attempts += 1  # a failed attempt, for the back-off, though nothing was sent
                self._reverted(session, batch, revert, "anchor simulated before signing")
                session.commit()
                return
            self._seal_with(session, batch, signer)
            self._national_seal_with(session, batch)
            # A retry (after out of gas, say) asks the node how much gas the anchor needs now.
            gas = ANCHOR_GAS
            if batch.attempts:
                gas = max(
                    ANCHOR_GAS, self._client._estimate(signer.address, call, "CertificateRegistry") * 3 // 2
                )
            nonce = self._free_nonce(session, signer.address)
            try:
                chain_id, fees = self._client.chain_id, self._client._fees()
                params: TxParams = {
                    "from": signer.address,
                    "nonce": Nonce(nonce),
                    "gas": gas,
                    "chainId": chain_id,
                    "maxFeePerGas": fees["maxFeePerGas"],
                    "maxPriorityFeePerGas": fees["maxPriorityFeePerGas"],
                }
                tx = call.build_transaction(params)
                # eth-account types the dict it signs as a plain dict, web3 builds a TypedDict
                signed = signer.sign_transaction(cast(TransactionDictType, tx))
                batch.raw_tx, batch.tx_hash, batch.nonce = (
                    bytes(signed.raw_transaction),
                    "0x" + signed.hash.hex().removeprefix("0x"),
                    nonce,
                )
                batch.attempts, batch.retry_at = batch.attempts + 1, None
                self._move(
                    session,
                    batch,
                    "sending",
                    f"attempt {batch.attempts}: transaction {batch.tx_hash}, nonce {nonce}",
                )
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
        if batch.sealed_by == signer.address:
            batch.signer = signer.address
            return
        stale = select(Certificate.id, Certificate.digest, Certificate.seal).where(
            Certificate.batch_id == batch.id
        )
        if batch.sealed_by is None:  # each member as its job was sealed: only other keys' (or unknown)
            stale = (
                stale.add_columns(Job.sealed_by)
                .join(Job, Job.id == Certificate.job_id)
                .where(or_(Job.sealed_by.is_(None), Job.sealed_by != signer.address))
            )
        chain_id, registry, key = self._client.chain_id, self._registry.address, bytes(signer.key)
        changes = [
            {"id": row.id, "seal": sign_seal(key, chain_id, registry, row.digest)}
            for row in session.execute(stale)
            if not (  # a job from before its `sealed_by`: the seal itself says whose it is
                batch.sealed_by is None
                and row.sealed_by is None
                and row.seal
                and recover_sealer(chain_id, registry, row.digest, row.seal) == signer.address
            )
        ]
        if changes:
            session.execute(update(Certificate), changes)
        resealed = len(changes)
        if resealed:
            log.warning(
                "batch %s: %d certificate(s) sealed by a rotated key were sealed again by %s",
                batch.id,
                resealed,
                signer.address,
            )
        batch.signer = batch.sealed_by = signer.address

    def _national_seal_with(self, session: Session, batch: Batch) -> None:
        """Make the agency's current SM2 key the national co-sealer of `batch`'s sealed
        certificates, as `_seal_with` does for the EIP-712 seal: a rotation between intake and
        anchoring retires the old SM2 key on chain, so its group seals are made again, in groups
        of the same size, by the current key (the digests do not change)."""
        if self._national_key_for is None:
            return
        private = self._national_key_for(batch.agency_code)
        if private is None:
            return
        current = key_id(public_key(private))
        count, _ = reseal_stale(
            session,
            batch.id,
            private,
            current,
            self._client.chain_id,
            self._registry.address,
            self._national_group,
        )
        if count:
            log.warning(
                "batch %s: %d certificate(s) co-sealed by a rotated SM2 key were co-sealed again",
                batch.id,
                count,
            )

    def _free_nonce(self, session: Session, signer: str) -> int:
        """The lowest nonce neither the node nor any transaction we stored uses: after a chain lost
        recent blocks (a restart from an older state, a reorg) this fills the gap that would
        otherwise hold every later transaction of the key in the queue forever."""
        taken = {
            nonce
            for nonce in session.scalars(
                select(Batch.nonce).where(Batch.signer == signer, Batch.state == "sending")
            )
            if nonce is not None
        }
        return self._client.allocate_nonce(signer, taken)

    def _broadcast(self, batch: Batch) -> None:
        raw_tx = batch.raw_tx
        assert raw_tx is not None, "a batch is signed and stored before it is broadcast"
        try:
            self._client.guard(lambda: self._client.w3.eth.send_raw_transaction(raw_tx))
        except ChainUnavailable:
            raise
        except ChainError as exc:  # already known, nonce too low…: the receipt check decides
            log.info("broadcast of batch %s: %s", batch.id, exc.message)

    # ─── step 3: receipts and confirmations ──────────────────────────────────────────────

    def track_sent(self) -> int:
        """Move sending → mined → confirmed as the chain allows, and follow confirmed anchors
        until they are `watch_depth` blocks deep; return how many batches moved."""
        moved = 0
        head = self._client.block_number()
        with self._sessions() as session:
            watched = list(
                session.scalars(select(Batch).where(Batch.state.in_(("sending", "mined"))).order_by(Batch.id))
            )
            watched += self._confirmed_to_watch(session, head)
            for batch in watched:
                just_mined = False
                if batch.state == "sending" and self._track_sending(session, batch):
                    moved, just_mined = moved + 1, batch.state == "mined"
                if batch.state in ("mined", "confirmed"):
                    if not just_mined and not self._follow(
                        batch, head
                    ):  # a reorg or a restored older state took it away
                        self._move(
                            session, batch, "sealed",
                            f"reorg: the anchor of block {batch.block_number} ({batch.block_hash}) is no longer on chain; anchoring again",
                            head,
                        )  # fmt: skip
                        batch.raw_tx = batch.block_number = batch.block_hash = batch.confirmed_at = None
                        moved += 1
                    elif (
                        batch.state == "confirmed"
                        and batch.block_number is not None  # set by `_follow` or `_track_sending`
                        and head - batch.block_number + 1 < self.settings.confirmations
                    ):
                        self._move(
                            session,
                            batch,
                            "mined",
                            f"reorg: the anchor moved to block {batch.block_number}",
                            head,
                        )
                        batch.confirmed_at = None
                        moved += 1
                    elif (
                        batch.state == "mined"
                        and batch.block_number is not None
                        and head - batch.block_number + 1 >= self.settings.confirmations
                    ):
                        self._move(session, batch, "confirmed", None, head)
                        # retention: a mined transaction is never sent again (a reorg signs anew)
                        batch.confirmed_at, batch.raw_tx = self._clock(), None
                        moved += 1
                session.commit()
        return moved

    def _confirmed_to_watch(self, session: Session, head: int) -> list[Batch]:
        """Confirmed batches not yet `watch_depth` deep, if the chain changed since the last look."""
        depth = self.settings.watch_depth
        if depth <= 1:
            return []  # instant finality: a confirmed anchor stays
        recent = and_(
            Batch.state == "confirmed", Batch.block_number.is_not(None), Batch.block_number > head - depth
        )
        if not session.scalar(select(func.count()).select_from(Batch).where(recent)):
            return []
        latest = self._client.guard(lambda: self._client.w3.eth.get_block("latest"))
        seen = (latest["number"], bytes(latest["hash"]))
        if seen == self._watched_head:
            return []  # the same head as at the last look: nothing on chain moved
        self._watched_head = seen
        return list(session.scalars(select(Batch).where(recent).order_by(Batch.id)))

    def _follow(self, batch: Batch, head: int) -> bool:
        """Whether the batch's root is on chain; updates its block (and hash) if it moved."""
        receipt = self._receipt(batch.tx_hash) if batch.tx_hash else None
        if receipt is not None and receipt["status"] == 1:
            batch.block_number, batch.block_hash = receipt["blockNumber"], _hex(receipt["blockHash"])
            return True
        if not self._is_anchored(batch.root):
            return False
        if batch.block_number is None or batch.block_number > head or batch.block_hash is None:
            batch.block_number = self._anchored_block(batch.root) or head
            batch.block_hash = self._block_hash(batch.block_number)
        return True

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self._client.guard(lambda: self._client.w3.eth.get_transaction_receipt(HexStr(tx_hash)))
        except TransactionNotFound:
            return None
        except ChainUnavailable:
            raise
        except ChainError:  # the node does not know it (some wrap TransactionNotFound)
            return None

    def _block_hash(self, number: int | None) -> str | None:
        if number is None:
            return None
        return _hex(self._client.guard(lambda: self._client.w3.eth.get_block(number))["hash"])

    def _track_sending(self, session: Session, batch: Batch) -> bool:
        signer, nonce, tx_hash = batch.signer, batch.nonce, batch.tx_hash
        assert signer is not None and nonce is not None and tx_hash is not None, "set when sent"
        receipt: TxReceipt | None
        try:
            receipt = self._client.guard(lambda: self._client.w3.eth.get_transaction_receipt(HexStr(tx_hash)))
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
            batch.block_number, batch.block_hash = receipt["blockNumber"], _hex(receipt["blockHash"])
            self._move(session, batch, "mined", None, receipt["blockNumber"])
            return True
        if self._is_anchored(batch.root):
            self._anchored_elsewhere(session, batch)
            return True
        if receipt is not None:  # mined and reverted: why, and would it revert again?
            self._client.release_nonce(signer, nonce)
            revert = self._client.revert_of(signer, self._anchor_call(batch))
            where = f"transaction {batch.tx_hash} reverted in block {receipt['blockNumber']}"
            if revert is None:  # it would go through now: out of gas, or the chain changed back
                self._back_off(session, batch, f"{where} (gas used {receipt['gasUsed']}: out of gas?)")
            else:
                self._reverted(session, batch, revert, where)
            return True
        confirmed_nonce = self._client.guard(
            lambda: self._client.w3.eth.get_transaction_count(checksum_address(signer), "latest")
        )
        if confirmed_nonce > nonce:
            self._client.release_nonce(signer, nonce)
            batch.raw_tx, batch.last_error = (
                None,
                "transaction replaced (its nonce was used by another); signing again",
            )
            self._move(session, batch, "sealed", batch.last_error)
            return True
        self._broadcast(batch)  # still pending or dropped: the same bytes again
        return False

    # ─── reverts, refusals, back-off ─────────────────────────────────────────────────────

    def _anchor_call(self, batch: Batch) -> ContractFunction:
        return self._registry.contract.functions.anchor(batch.root, batch.count, to_bytes32(batch.type_code))

    def _anchored_elsewhere(self, session: Session, batch: Batch) -> None:
        """The root is on chain already (an earlier attempt, another process): the batch is mined."""
        batch.block_number = self._anchored_block(batch.root)
        batch.block_hash = self._block_hash(batch.block_number)
        self._move(session, batch, "mined", "the root is already anchored", batch.block_number)

    def _reverted(self, session: Session, batch: Batch, revert: ContractRevert, where: str) -> None:
        outcome = anchor_outcome(revert)
        if outcome == "done":
            self._anchored_elsewhere(session, batch)
        elif outcome == "refused":
            batch.raw_tx, batch.retry_at, batch.refusal = None, None, revert.name
            batch.last_error = f"{where}: {revert.message}"
            self._move(session, batch, "refused", batch.last_error)
            log.error("batch %s refused by the chain, not retried: %s", batch.id, batch.last_error)
        else:
            self._back_off(session, batch, f"{where}: {revert.message}")

    def _back_off(self, session: Session, batch: Batch, reason: str) -> None:
        """Back to sealed, tried again after `retry_base_s` doubled per failed attempt (capped)."""
        delay = min(self.settings.retry_base_s * 2 ** max(batch.attempts - 1, 0), self.settings.retry_max_s)
        batch.raw_tx, batch.retry_at = None, self._clock() + dt.timedelta(seconds=delay)
        batch.last_error = f"{reason}; trying again in {delay:g} s"
        self._move(session, batch, "sealed", batch.last_error)
        log.warning("batch %s: %s", batch.id, batch.last_error)

    def _move(
        self, session: Session, batch: Batch, state: str, reason: str | None, block: int | None = None
    ) -> None:
        """Set the batch's state and record the change."""
        session.add(
            BatchEvent(
                batch_id=batch.id, from_state=batch.state, to_state=state, reason=reason, block_number=block
            )
        )
        batch.state = state

    def _is_anchored(self, root: bytes) -> bool:
        return self._registry.inspect(root, 0, b"\0" * 32, [], "0x" + "00" * 20).anchored

    def _anchored_block(self, root: bytes) -> int | None:
        event = self._registry.contract.events.BatchAnchored()
        logs = self._client.guard(lambda: event.get_logs(from_block=0, argument_filters={"root": root}))
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
            raise ChainError(
                f"Certificates still unconfirmed after {timeout_s:.0f} s", code=ErrorCode.ANCHOR_TIMEOUT
            )
        finally:
            timer.cancel()

    def outstanding(self, job_ids: Collection[str] | None = None) -> int:
        """Certificates not yet confirmed nor refused (of `job_ids` only, if given): the pending
        ones (a small index) and those of batches still on their way (batch rows, not certificates)."""
        pending = select(func.count()).select_from(Certificate).where(Certificate.intake_state == "pending")
        on_the_way = Batch.state.not_in(("confirmed", "refused"))
        with self._sessions() as session:
            if job_ids is None:
                batched = session.scalar(select(func.sum(Batch.count)).where(on_the_way))
                return (session.scalar(pending) or 0) + (batched or 0)
            jobs = Certificate.job_id.in_(list(job_ids))
            in_batches = (
                select(func.count())
                .select_from(Certificate)
                .join(Batch, Batch.id == Certificate.batch_id)
                .where(jobs, on_the_way)
            )
            return (session.scalar(pending.where(jobs)) or 0) + (session.scalar(in_batches) or 0)

    def run_forever(self, stop: threading.Event, *, poll_s: float = 0.2) -> None:
        """Work until `stop` is set; chain outages are retried with capped exponential backoff."""
        backoff = poll_s
        while not stop.is_set():
            try:
                busy = self.run_once()
                self._run_after_pass()
                backoff = poll_s
                stop.wait(0 if busy else poll_s)
            except ChainError as exc:
                log.warning("anchoring paused (%s): retrying in %.1f s", exc.code, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)
            except Exception:
                log.exception("anchoring step failed: retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)

    def _run_after_pass(self) -> None:
        if self.after_pass is None:
            return
        try:
            self.after_pass()
        except Exception:
            log.exception("periodic job after an anchoring pass failed; it runs again after the next pass")


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def pending_groups() -> Select[str, str, int, dt.datetime]:
    """The anchoring queue by agency and type: how many wait, and since when (the partial index
    `ix_certificates_pending` holds exactly these rows)."""
    return (
        select(Certificate.agency_code, Certificate.type_code, func.count(), func.min(Certificate.created_at))
        .where(Certificate.intake_state == "pending")
        .group_by(Certificate.agency_code, Certificate.type_code)
    )


def pending_rows(agency_code: str, type_code: str, limit: int) -> Select[int, bytes]:
    """The next batch's certificates, oldest first."""
    return (
        select(Certificate.id, Certificate.digest)
        .where(*_pending_of(agency_code, type_code))
        .order_by(Certificate.id)
        .limit(limit)
    )


def _pending_of(agency_code: str, type_code: str) -> tuple[ColumnElement[bool], ...]:
    return (
        Certificate.intake_state == "pending",
        Certificate.agency_code == agency_code,
        Certificate.type_code == type_code,
    )


def _age_or_inf(moment: dt.datetime | None, now: dt.datetime) -> float:
    age = float("inf") if moment is None else _age_s(moment, now)
    return age if age >= 0 else float("inf")


def _age_s(moment: dt.datetime, now: dt.datetime) -> float:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return (now - moment).total_seconds()
