"""Follow the registry's events into the database, `confirmations` blocks behind the head.

One sync: (1) check that the last processed block is still on the chain, else walk back over
the blocks we recorded to the newest one the chain still has (the common ancestor), delete every
row above it and go on from there; (2) fetch the contract's logs in ranges up to
`head - confirmations` and write each range, its block headers and the new state in one
transaction, so a crash leaves the index at a range boundary and a restart simply continues.

Confirmations are the first defence against reorgs; the hash checks are the second: every
log's block hash must equal the header fetched after it, and the range's first block must
descend from the stored last block, else the range is dropped and retried on the next sync.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import OperationalError
from web3.exceptions import BlockNotFound
from web3.types import FilterParams

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.errors import ChainError, ChainUnavailable, EcertError
from registry.indexer.errors import IndexInconsistent, IndexMismatch, IndexStale
from registry.indexer.events import EventDecoder, Row, group_rows, rows_for
from registry.indexer.store import (
    EVENT_MODELS,
    Agency,
    Batch,
    BatchRevocation,
    Block,
    IndexerState,
    IndexScope,
    StatusChange,
    create_schema,
    table,
)
from registry.regions import in_regions, region_prefixes

log = logging.getLogger(__name__)

STATE_ID = 1
BATCH_EVENTS = (StatusChange, BatchRevocation)  # rows about a batch, kept with it by a regional index
HEADER_BATCH = 200


@dataclass(frozen=True)
class SyncReport:
    """What one `sync` did. `rolled_back_to` is the common ancestor when a reorg was undone."""

    from_block: int
    to_block: int
    head_block: int
    events: int
    ranges: int
    rolled_back_to: int | None = None

    @property
    def reorged(self) -> bool:
        return self.rolled_back_to is not None


@dataclass(frozen=True)
class Freshness:
    """How far the index is behind the chain, for a verifier to say what its answer rests on."""

    indexed_block: int
    head_block: int
    lag_blocks: int
    indexed_at: dt.datetime | None

    def require(self, max_lag_blocks: int) -> Freshness:
        """Self, or `IndexStale` when the index lags more than `max_lag_blocks` behind the head."""
        if self.lag_blocks > max_lag_blocks:
            raise IndexStale(
                f"Index at block {self.indexed_block} is {self.lag_blocks} blocks behind the head {self.head_block} "
                f"(at most {max_lag_blocks} allowed): is a verifier node (`ecert serve verifier`) indexing? Its /healthz says",
                indexed_block=self.indexed_block, head_block=self.head_block,
            )  # fmt: skip
        return self


@dataclass(frozen=True)
class _Header:
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Indexer:
    """The one writer of an index database (run one per database)."""

    def __init__(
        self,
        client: ChainClient,
        registry: CertificateRegistry,
        engine: Engine,
        *,
        confirmations: int = 2,
        start_block: int = 0,
        range_blocks: int = 2000,
        clock: Callable[[], dt.datetime] = utcnow,
        regions: Sequence[str] | None = None,
    ) -> None:
        """`regions` (GB/T 2260 patterns): index only the batches of agencies there, and the
        trust data whole: a regional node (other regions' batches are asked of the chain on
        demand). None: what the index was made with (a new one: every region); a different
        scope than the index's is refused."""
        if confirmations < 0 or start_block < 0 or range_blocks < 1:
            raise ValueError("confirmations and start_block must be >= 0, range_blocks >= 1")
        self.client = client
        self.registry = registry
        self.engine = engine
        self.confirmations = confirmations
        self.range_blocks = range_blocks
        self._clock = clock
        self._decoder = EventDecoder(registry.contract)
        create_schema(engine)
        self.regions = index_scope(engine, regions)
        self._prefixes = region_prefixes(self.regions)
        self._state = self._load_state(start_block)

    # ─── public ──────────────────────────────────────────────────────────────────────────

    @property
    def indexed_block(self) -> int:
        return self._state.block_number

    def sync(self, max_blocks: int | None = None) -> SyncReport:
        """Undo a reorg if there was one, then index up to `head - confirmations` (at most `max_blocks`)."""
        head = self.client.block_number()
        rolled_back_to = self._undo_reorg()
        first = self._state.block_number + 1
        target = head - self.confirmations
        if max_blocks is not None:
            target = min(target, self._state.block_number + max_blocks)
        events = ranges = 0
        while self._state.block_number < target:
            start = self._state.block_number + 1
            events += self._index_range(start, min(target, start + self.range_blocks - 1))
            ranges += 1
        report = SyncReport(first, self._state.block_number, head, events, ranges, rolled_back_to)
        if ranges or rolled_back_to is not None:
            log.info("indexed blocks %d..%d (%d events, head %d)", first, report.to_block, events, head)
        return report

    def freshness(self) -> Freshness:
        """Indexed block (as stored, so any process can ask) against the chain's head."""
        return freshness(self.engine, self.client)

    def try_sync(self) -> bool:
        """One `sync`; node and database failures are logged (the caller retries): did it work?"""
        try:
            self.sync()
            return True
        except (ChainError, IndexInconsistent) as exc:
            log.warning("index sync failed, retrying: %s [%s]", exc, exc.code)
        except OperationalError as exc:  # the database is down or locked: same as the node
            log.warning("index database unavailable, retrying: %s", exc.__class__.__name__)
        return False

    def run_forever(
        self,
        poll_s: float = 2.0,
        stop: threading.Event | None = None,
        *,
        while_: Callable[[], bool] = lambda: True,
    ) -> None:
        """Sync every `poll_s` until `stop` is set or `while_()` is false (the lease was lost)."""
        stop = stop or threading.Event()
        while not stop.is_set() and while_():
            self.try_sync()
            stop.wait(poll_s)

    # ─── state ───────────────────────────────────────────────────────────────────────────

    def _load_state(self, start_block: int) -> IndexerState:
        chain_id, registry = self.client.chain_id, self.registry.address
        with self.engine.begin() as conn:
            row = conn.execute(
                select(table(IndexerState)).where(table(IndexerState).c.id == STATE_ID)
            ).first()
            if row is None:
                values = {"id": STATE_ID, "chain_id": chain_id, "registry_address": registry, "start_block": start_block,
                          "block_number": start_block - 1, "block_hash": None, "indexed_at": None}  # fmt: skip
                conn.execute(insert(table(IndexerState)), values)
                return IndexerState(**values)
        state = IndexerState(**row._mapping)
        if state.chain_id != chain_id or state.registry_address.lower() != registry.lower():
            raise IndexMismatch(
                f"This index follows registry {state.registry_address} on chain {state.chain_id}, not {registry} on chain "
                f"{chain_id}: use another database", indexed_chain_id=state.chain_id, indexed_registry=state.registry_address,
            )  # fmt: skip
        log.info("index resumes after block %d", state.block_number)
        return state

    def _save_state(self, conn: Connection, number: int, block_hash: bytes | None) -> IndexerState:
        """Move the stored state (the caller adopts it once committed); the `WHERE` on the old
        block makes a second writer fail loudly."""
        old = self._state
        now = self._clock()
        t = table(IndexerState)
        moved = conn.execute(
            update(t).where(t.c.id == STATE_ID, t.c.block_number == old.block_number)
            .values(block_number=number, block_hash=block_hash, indexed_at=now)
        ).rowcount  # fmt: skip
        if moved != 1:
            raise IndexInconsistent(
                "The index state moved under this indexer: is a second indexer writing the same database?"
            )
        return IndexerState(
            id=STATE_ID, chain_id=old.chain_id, registry_address=old.registry_address, start_block=old.start_block,
            block_number=number, block_hash=block_hash, indexed_at=now,
        )  # fmt: skip

    # ─── reorgs ──────────────────────────────────────────────────────────────────────────

    def _undo_reorg(self) -> int | None:
        """None if the last processed block is still on the chain, else roll back to the common ancestor."""
        state = self._state
        if state.block_hash is None or self._chain_hash(state.block_number) == state.block_hash:
            return None
        ancestor, ancestor_hash = state.start_block - 1, None
        blocks = table(Block)
        with self.engine.connect() as conn:
            recorded = conn.execute(
                select(blocks.c.number, blocks.c.hash).where(blocks.c.number < state.block_number).order_by(blocks.c.number.desc())
            )  # fmt: skip
            for number, block_hash in recorded:
                if self._chain_hash(number) == block_hash:
                    ancestor, ancestor_hash = number, block_hash
                    break
        with self.engine.begin() as conn:
            for model in EVENT_MODELS:
                conn.execute(delete(table(model)).where(table(model).c.block_number > ancestor))
            conn.execute(delete(blocks).where(blocks.c.number > ancestor))
            moved = self._save_state(conn, ancestor, ancestor_hash)
        self._state = moved
        log.warning(
            "reorg: block %d left the chain; index rolled back to block %d", state.block_number, ancestor
        )
        return ancestor

    def _chain_hash(self, number: int) -> bytes | None:
        try:
            return bytes(self.client.guard(lambda: self.client.w3.eth.get_block(number))["hash"])
        except BlockNotFound:
            return None

    # ─── ranges ──────────────────────────────────────────────────────────────────────────

    def _index_range(self, start: int, end: int) -> int:
        """Index blocks `start..end` (fewer if the node refuses the range) in one transaction."""
        raw_logs, end = self._logs(start, end)
        events = [event for event in map(self._decoder.decode, raw_logs) if event is not None]
        headers = self._headers(sorted({start, end} | {e.block_number for e in events}))
        for event in events:
            if headers[event.block_number].hash != event.block_hash:
                raise IndexInconsistent(f"Block {event.block_number} changed while indexing: retry the sync")
        if self._state.block_hash is not None and headers[start].parent_hash != self._state.block_hash:
            raise IndexInconsistent(f"Block {start} does not descend from the indexed block: retry the sync")
        with self.engine.begin() as conn:
            codes = self._agency_codes(conn)
            rows: list[Row] = []
            for event in events:
                made = rows_for(
                    event,
                    headers[event.block_number].timestamp,
                    lambda index, key: self._code_of(codes, index, key),
                )
                for model, values in made:
                    if model is Agency:
                        codes[values["agency_index"]] = values["code"]
                rows += made
            if self._prefixes:
                rows = self._in_scope(conn, rows)
            conn.execute(insert(table(Block)), [vars(header) for header in headers.values()])
            for model, grouped in group_rows(rows).items():
                conn.execute(insert(table(model)), grouped)
            moved = self._save_state(conn, end, headers[end].hash)
        self._state = moved
        return len(events)

    def _logs(self, start: int, end: int) -> tuple[list[Any], int]:
        """The contract's logs of `start..end`, halving the range while the node refuses it."""
        while True:
            query: FilterParams = {"address": self.registry.address, "fromBlock": start, "toBlock": end}
            try:
                return list(self.client.guard(partial(self.client.w3.eth.get_logs, query))), end
            except ChainUnavailable:
                raise
            except ChainError:
                if end == start:
                    raise
                end = start + (end - start) // 2
                log.info("node refused the log range; retrying with blocks %d..%d", start, end)

    def _headers(self, numbers: list[int]) -> dict[int, _Header]:
        """Block headers in batched JSON-RPC requests (one round trip per `HEADER_BATCH`)."""
        w3 = self.client.w3
        headers: dict[int, _Header] = {}
        for i in range(0, len(numbers), HEADER_BATCH):

            def fetch(chunk: list[int] = numbers[i : i + HEADER_BATCH]) -> list[Any]:
                with w3.batch_requests() as batch:
                    for number in chunk:
                        batch.add(w3.eth.get_block(number))
                    return list(batch.execute())

            try:
                blocks = self.client.guard(fetch)
            except BlockNotFound as exc:
                raise IndexInconsistent("A block vanished while indexing (reorg?): retry the sync") from exc
            for block in blocks:
                headers[block["number"]] = _Header(
                    block["number"], bytes(block["hash"]), bytes(block["parentHash"]), block["timestamp"]
                )
        return headers

    def _in_scope(self, conn: Connection, rows: list[Row]) -> list[Row]:
        """The rows a regional index keeps: every trust row; batches of agencies in its regions,
        and the status rows of the batches it keeps."""
        agencies = table(Agency)
        region_of = dict(conn.execute(select(agencies.c.code, agencies.c.region)).all())
        region_of |= {values["code"]: values["region"] for model, values in rows if model is Agency}
        kept = {
            values["root"] for model, values in rows
            if model is Batch and in_regions(region_of.get(values["agency_code"], 0), self._prefixes)
        }  # fmt: skip
        asked = {values["root"] for model, values in rows if model in BATCH_EVENTS} - kept
        if asked:
            batches = table(Batch)
            kept |= {
                bytes(r)
                for r in conn.execute(select(batches.c.root).where(batches.c.root.in_(asked))).scalars()
            }
        return [
            (model, values) for model, values in rows
            if not (model is Batch or model in BATCH_EVENTS) or values["root"] in kept
        ]  # fmt: skip

    def _agency_codes(self, conn: Connection) -> dict[int, str]:
        agencies = table(Agency)
        # `.all()`: a Result has `keys()`, so `dict(result)` would take it for a mapping and fail
        return dict(conn.execute(select(agencies.c.agency_index, agencies.c.code)).all())

    def _code_of(self, codes: dict[int, str], agency_index: int, key: str) -> str:
        """An agency's code by its index; asks the chain only if the index began after its registration."""
        if agency_index not in codes:
            log.warning(
                "agency #%d registered before start_block: asking the chain for its code", agency_index
            )
            try:
                codes[agency_index] = self.registry.key_info(key).agency_code
            except EcertError:
                codes[agency_index] = ""
        return codes[agency_index]


def index_scope(engine: Engine, wanted: Sequence[str] | None = None) -> tuple[str, ...]:
    """The regions the index in `engine` holds batches of (() = every region), recorded on first
    use; `IndexMismatch` if `wanted` is another scope."""
    scope = table(IndexScope)
    wanted_text = None if wanted is None else ",".join(sorted(set(wanted)))
    if wanted_text is not None:
        region_prefixes(wanted_text.split(",") if wanted_text else ())  # a bad pattern is refused first
    with engine.begin() as conn:
        stored = conn.execute(select(scope.c.regions).where(scope.c.id == STATE_ID)).scalar()
        if stored is None:
            stored = wanted_text or ""
            conn.execute(insert(scope), {"id": STATE_ID, "regions": stored})
    if wanted_text is not None and wanted_text != stored:
        raise IndexMismatch(
            f"This index holds the batches of {stored or 'every region'}, not of {wanted_text or 'every region'}: "
            "use another database for another scope (an index can always be rebuilt from the chain)"
        )
    return tuple(stored.split(",")) if stored else ()


def freshness(engine: Engine, client: ChainClient) -> Freshness:
    """The stored index position against the chain's head (works from any process)."""
    t = table(IndexerState)
    with engine.connect() as conn:
        row = conn.execute(select(t.c.block_number, t.c.indexed_at).where(t.c.id == STATE_ID)).first()
    indexed, at = (row[0], row[1]) if row is not None else (-1, None)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; we only ever store UTC
    head = client.block_number()
    return Freshness(indexed, head, max(0, head - indexed), at)
