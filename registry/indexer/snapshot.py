"""An in-memory view of the index, so that a verification costs dictionary lookups, not queries.

The trust data (agencies, keys, suspensions, grants: thousands of rows) is held whole and
reloaded when the index moves. Batches (millions) are loaded on first use by root (two indexed
queries) or in bulk by `warm` (the most recent ones), and kept in a bounded cache; unknown roots
are cached too, so a flood of forged roots cannot reach the database. When the index moves, only
roots touched by the new blocks are evicted; after a reorg (the block last seen is no longer
recorded with the same hash) all are. Everything is read as of the state's block, so trust data
and batches always agree.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    LargeBinary,
    Select,
    SmallInteger,
    bindparam,
    literal,
    null,
    select,
    type_coerce,
    union,
    union_all,
)

from registry.contracts.certificate_registry import Status
from registry.indexer.records import (
    AgencyHistory,
    BatchRecord,
    KeyHistory,
    NationalKeyHistory,
    StatusEvent,
    TrustView,
    batch_record,
)
from registry.indexer.store import (
    Agency,
    AgencySuspension,
    AuthorityChange,
    Batch,
    BatchRevocation,
    Block,
    EventRow,
    IndexerState,
    Key,
    KeyChange,
    NationalKey,
    NationalKeyChange,
    StatusChange,
    TypeGrant,
    create_schema,
    table,
)

log = logging.getLogger(__name__)

BATCH_FIELDS = (
    "root",
    "agency_code",
    "agency_index",
    "key",
    "type_code",
    "count",
    "anchored_at",
    "block_number",
    "log_index",
    "tx_hash",
)


def load_trust(conn: Connection, upto_block: int) -> TrustView:
    """All trust rows up to `upto_block`, folded into histories (a few thousand rows: one pass each)."""
    order = ("block_number", "log_index")

    def rows(model: type[EventRow]) -> Select[Any]:
        t = table(model)
        return select(t).where(t.c.block_number <= upto_block).order_by(*order)

    suspensions: dict[str, list[tuple[int, bool, str]]] = {}
    for row in conn.execute(rows(AgencySuspension)):
        suspensions.setdefault(row.code, []).append((row.block_time, row.suspended, row.by))
    grants: dict[str, list[tuple[int, str, bool]]] = {}
    for row in conn.execute(rows(TypeGrant).order_by("position")):
        grants.setdefault(row.code, []).append((row.block_time, row.type_code, row.granted))
    changes: dict[str, list[tuple[int, str, int]]] = {}
    for row in conn.execute(rows(KeyChange)):
        changes.setdefault(row.address.lower(), []).append((row.block_time, row.kind, row.value))
    agency_rows = conn.execute(rows(Agency)).all()
    index_of = {row.code: row.agency_index for row in agency_rows}
    keys: dict[str, KeyHistory] = {}
    keys_of: dict[str, list[str]] = {}
    for row in conn.execute(rows(Key)):
        lower = row.address.lower()
        keys[lower] = KeyHistory(
            row.address,
            row.agency_code,
            index_of.get(row.agency_code, 0),
            row.valid_from,
            row.block_time,
            tuple(changes.get(lower, ())),
        )
        keys_of.setdefault(row.agency_code, []).append(row.address)
    national_changes: dict[bytes, list[tuple[int, str, int]]] = {}
    for row in conn.execute(rows(NationalKeyChange)):
        national_changes.setdefault(bytes(row.key_id), []).append((row.block_time, row.kind, row.value))
    national_keys: dict[bytes, NationalKeyHistory] = {}
    national_of: dict[str, list[bytes]] = {}
    for row in conn.execute(rows(NationalKey)):
        key_id = bytes(row.key_id)
        national_keys[key_id] = NationalKeyHistory(
            key_id, bytes(row.public_key), row.agency_code, row.valid_from, row.block_time,
            tuple(national_changes.get(key_id, ())),
        )  # fmt: skip
        national_of.setdefault(row.agency_code, []).append(key_id)
    agencies = {
        row.code: AgencyHistory(
            row.code,
            row.agency_index,
            row.region,
            row.name,
            row.block_time,
            tuple(suspensions.get(row.code, ())),
            tuple(grants.get(row.code, ())),
            tuple(keys_of.get(row.code, ())),
            tuple(national_of.get(row.code, ())),
        )
        for row in agency_rows
    }
    authorities: dict[str, tuple[int, str]] = {}
    for row in conn.execute(rows(AuthorityChange)):
        if row.added:
            authorities[row.account] = (row.region, row.name)
        else:
            authorities.pop(row.account, None)
    return TrustView(
        agencies, {a.agency_index: a for a in agencies.values()}, keys, authorities, national_keys
    )


def _queries() -> tuple[Select[Any], Select[Any], Any, Any]:
    """Built once with bind parameters: building statements costs more than running them on SQLite.

    Returns (one batch, recent batches, events of one root, events of a block range); the events
    queries return status changes and batch revocations (word -1) together.
    """
    b, s, r = table(Batch), table(StatusChange), table(BatchRevocation)
    batches = select(*(b.c[name] for name in BATCH_FIELDS)).where(b.c.block_number <= bindparam("upto"))
    one = batches.where(b.c.root == bindparam("root"))
    recent = batches.order_by(b.c.block_number.desc(), b.c.log_index.desc()).limit(bindparam("limit"))
    changes = select(
        s.c.root, s.c.block_number, s.c.log_index, s.c.block_time, s.c.word, s.c.mask, s.c.status, s.c.reason
    )
    revocations = select(
        r.c.root,
        r.c.block_number,
        r.c.log_index,
        r.c.block_time,
        literal(-1, BigInteger),
        type_coerce(null(), LargeBinary),
        literal(int(Status.REVOKED), SmallInteger),
        r.c.reason,
    )
    by_root = [
        q.where(t.c.root == bindparam("root"), t.c.block_number <= bindparam("upto"))
        for q, t in ((changes, s), (revocations, r))
    ]
    by_range = [
        q.where(t.c.block_number >= bindparam("since"), t.c.block_number <= bindparam("upto"))
        for q, t in ((changes, s), (revocations, r))
    ]
    return one, recent, union_all(*by_root), union_all(*by_range)


_ONE_BATCH, _RECENT_BATCHES, _EVENTS_OF_ROOT, _EVENTS_SINCE = _queries()


def load_batches(
    conn: Connection, upto_block: int, *, root: bytes | None = None, limit: int = 1
) -> dict[bytes, BatchRecord]:
    """The batch `root`, or else the `limit` most recent, as of `upto_block`: two queries whatever the number."""
    if root is not None:
        found = conn.execute(_ONE_BATCH, {"root": root, "upto": upto_block})
    else:
        found = conn.execute(_RECENT_BATCHES, {"upto": upto_block, "limit": limit})
    rows = {bytes(row.root): dict(row._mapping) for row in found}
    if not rows:
        return {}
    events: dict[bytes, list[tuple[int, int, StatusEvent]]] = {key: [] for key in rows}
    if root is not None:
        found = conn.execute(_EVENTS_OF_ROOT, {"root": root, "upto": upto_block})
    else:  # a batch's events follow its anchoring
        found = conn.execute(
            _EVENTS_SINCE, {"since": min(row["block_number"] for row in rows.values()), "upto": upto_block}
        )
    for e in found:
        if (mine := events.get(bytes(e.root))) is not None:
            mask = int.from_bytes(e.mask, "big") if e.mask is not None else 0
            mine.append(
                (e.block_number, e.log_index, (e.block_time, e.word, mask, Status(e.status), e.reason))
            )
    return {
        key: batch_record(row | {"root": key, "tx_hash": bytes(row["tx_hash"])}, events[key])
        for key, row in rows.items()
    }


class Snapshot:
    """The in-memory view one verifier process answers from; `refresh` follows the indexer."""

    def __init__(self, engine: Engine, *, max_batches: int = 200_000) -> None:
        create_schema(engine)  # a verifier may start before its indexer: it then answers from an empty index
        self.engine = engine
        self.max_batches = max_batches
        self.block_number = -1
        self.block_hash: bytes | None = None
        self.indexed_at: dt.datetime | None = None
        self.trust = TrustView({}, {}, {}, {})
        self._batches: dict[bytes, BatchRecord | None] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self.refresh()

    def batch(self, root: bytes) -> BatchRecord | None:
        """The batch as of this view's block (rows indexed since are ignored until `refresh`)."""
        try:
            return self._batches[root]
        except KeyError:
            pass
        generation, upto = self._generation, self.block_number
        with self.engine.connect() as conn:
            record = load_batches(conn, upto, root=root).get(root)
        self._store(generation, {root: record})
        return record

    def warm(self, count: int | None = None) -> int:
        """Load the `count` (default: as many as the cache holds) most recent batches in bulk."""
        generation, upto = self._generation, self.block_number
        with self.engine.connect() as conn:
            records = load_batches(conn, upto, limit=min(count or self.max_batches, self.max_batches))
        self._store(generation, records)
        return len(records)

    def _store(self, generation: int, records: Mapping[bytes, BatchRecord | None]) -> None:
        with self._lock:
            if generation != self._generation:  # a refresh ran meanwhile: do not cache an older view
                return
            for root, record in records.items():
                if len(self._batches) >= self.max_batches:
                    self._batches.pop(next(iter(self._batches)), None)  # oldest first: no bookkeeping per hit
                self._batches[root] = record

    def refresh(self) -> bool:
        """Catch up with the stored index; True if it had moved."""
        st, blocks = table(IndexerState), table(Block)
        with self.engine.connect() as conn:
            state = conn.execute(select(st.c.block_number, st.c.block_hash, st.c.indexed_at)).first()
            number, block_hash, indexed_at = tuple(state) if state is not None else (-1, None, None)
            if number == self.block_number and block_hash == self.block_hash:
                return False
            seen = conn.execute(select(blocks.c.hash).where(blocks.c.number == self.block_number)).scalar()
            extended = self.block_hash is not None and seen == self.block_hash and number >= self.block_number
            touched = _touched_roots(conn, self.block_number) if extended else None
            trust = load_trust(conn, number)
        with self._lock:
            if touched is None:
                self._batches.clear()
            else:
                for root in touched:
                    self._batches.pop(root, None)
            self.trust, self.block_number, self.block_hash = trust, number, block_hash
            self.indexed_at = (
                indexed_at.replace(tzinfo=dt.UTC) if indexed_at and indexed_at.tzinfo is None else indexed_at
            )
            self._generation += 1
        log.debug("index view at block %d (%s)", number, "extended" if extended else "reloaded")
        return True


def _touched_roots(conn: Connection, after_block: int) -> set[bytes]:
    parts = [
        select(table(m).c.root).where(table(m).c.block_number > after_block)
        for m in (Batch, StatusChange, BatchRevocation)
    ]
    return {bytes(root) for root in conn.execute(union(*parts)).scalars()}
