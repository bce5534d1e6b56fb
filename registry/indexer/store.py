"""The index's tables: append-only rows, one per event, each keyed by `(block_number, log_index)`.

Nothing is ever updated in place (a suspension is a row, a reinstatement another): undoing a
reorg is then one `DELETE … WHERE block_number > ancestor` per table, and history ("as of T")
is a filter on `block_time`. Current state is derived when read (see `snapshot.py`).

Portable types only, so the same models run on SQLite and PostgreSQL: hashes and roots as
`LargeBinary` (BLOB / BYTEA), uint256 masks as 32 big-endian bytes, unix times as `BigInteger`,
addresses as checksummed strings, codes (统一社会信用代码, type codes) as their ASCII text.
Tables are prefixed `idx_` so the index can share a database with the issuer.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ADDRESS = String(42)
CODE = String(32)


class IndexBase(DeclarativeBase):
    """The index's own metadata: `create_schema` never touches another package's tables."""


class IndexerState(IndexBase):
    """Where the indexer stopped: the last processed block and its hash (one row)."""

    __tablename__ = "idx_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    registry_address: Mapped[str] = mapped_column(ADDRESS)
    start_block: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)  # start_block - 1 before the first range
    block_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    indexed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class IndexScope(IndexBase):
    """The regions whose batches (and their statuses) this index holds; '' = every region. Trust
    data (authorities, agencies, keys) is always whole. Fixed when the index is made."""

    __tablename__ = "idx_scope"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    regions: Mapped[str] = mapped_column(String(400))  # comma-separated GB/T 2260 patterns


class Block(IndexBase):
    """A block the index relies on (it holds events, or ends a range): what reorgs are checked against."""

    __tablename__ = "idx_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    parent_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class EventRow(IndexBase):
    """Columns every event row has: where it was logged and the block's time."""

    __abstract__ = True

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_time: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthorityChange(EventRow):
    """`AuthorityAdded` (added) or `AuthorityRemoved`."""

    __tablename__ = "idx_authority_changes"

    account: Mapped[str] = mapped_column(ADDRESS, index=True)
    region: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    added: Mapped[bool] = mapped_column(Boolean)


class Agency(EventRow):
    """`AgencyRegistered`: an agency's code, on-chain index, region and name never change."""

    __tablename__ = "idx_agencies"

    code: Mapped[str] = mapped_column(CODE, unique=True)
    agency_index: Mapped[int] = mapped_column(Integer, unique=True)
    region: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))


class AgencySuspension(EventRow):
    """`AgencySuspended` (suspended) or `AgencyReinstated`, by an authority."""

    __tablename__ = "idx_agency_suspensions"

    code: Mapped[str] = mapped_column(CODE, index=True)
    suspended: Mapped[bool] = mapped_column(Boolean)
    by: Mapped[str] = mapped_column(ADDRESS)


class TypeGrant(EventRow):
    """One type of a `TypesGranted` (granted) or `TypesRevoked` event."""

    __tablename__ = "idx_type_grants"

    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(CODE, index=True)
    type_code: Mapped[str] = mapped_column(CODE)
    granted: Mapped[bool] = mapped_column(Boolean)


class Key(EventRow):
    """`KeyAdded`: a key belongs to one agency for ever."""

    __tablename__ = "idx_keys"

    address: Mapped[str] = mapped_column(ADDRESS, unique=True)
    agency_code: Mapped[str] = mapped_column(CODE, index=True)
    valid_from: Mapped[int] = mapped_column(BigInteger)


class KeyChange(EventRow):
    """`KeyRetired` (kind "retired", value retiredAt) or `KeyCompromised` ("compromised", since)."""

    __tablename__ = "idx_key_changes"

    address: Mapped[str] = mapped_column(ADDRESS, index=True)
    agency_code: Mapped[str] = mapped_column(CODE)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(BigInteger)


class NationalKey(EventRow):
    """`NationalKeyAdded`: an SM2 key (national co-seal) belongs to one agency for ever."""

    __tablename__ = "idx_national_keys"

    key_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(64))
    agency_code: Mapped[str] = mapped_column(CODE, index=True)
    valid_from: Mapped[int] = mapped_column(BigInteger)


class NationalKeyChange(EventRow):
    """`NationalKeyRetired` ("retired", retiredAt) or `NationalKeyCompromised` ("compromised", since)."""

    __tablename__ = "idx_national_key_changes"

    key_id: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    agency_code: Mapped[str] = mapped_column(CODE)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(BigInteger)


class Batch(EventRow):
    """`BatchAnchored`: one root of `count` certificates of one type, by one key of one agency."""

    __tablename__ = "idx_batches"

    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    agency_code: Mapped[str] = mapped_column(CODE, index=True)
    agency_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(ADDRESS)
    type_code: Mapped[str] = mapped_column(CODE)
    count: Mapped[int] = mapped_column(BigInteger)
    anchored_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class StatusChange(EventRow):
    """`StatusChanged`: bit `i` of `mask` stands for the certificate at `word * 256 + i`."""

    __tablename__ = "idx_status_changes"

    root: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    word: Mapped[int] = mapped_column(BigInteger)
    mask: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[int] = mapped_column(SmallInteger)
    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class BatchRevocation(EventRow):
    """`BatchRevoked`: every certificate of the batch, in one write."""

    __tablename__ = "idx_batch_revocations"

    root: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    reason: Mapped[int] = mapped_column(SmallInteger)
    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


EVENT_MODELS: tuple[type[EventRow], ...] = (
    AuthorityChange, Agency, AgencySuspension, TypeGrant, Key, KeyChange, NationalKey, NationalKeyChange,
    Batch, StatusChange, BatchRevocation,
)  # fmt: skip


def table(model: type[IndexBase]) -> Table:
    """The Core table of a model (queries on the hot path use Core, not the ORM)."""
    return model.__table__  # type: ignore[return-value]


def create_schema(engine: Engine) -> None:
    """Create the index's tables if missing (idempotent; the index can always be rebuilt from the chain)."""
    IndexBase.metadata.create_all(engine)
