"""Follow the registry's events into a database and answer "was it valid at time T?" from it.

indexer = Indexer(client, registry, engine, confirmations=2)   # the one writer
indexer.sync()                                                  # or run_forever(poll_s, stop)
history = History(engine)                                       # any number of readers
history.facts(root, index, digest, proof, signer)               # == registry.inspect(...), no RPC
"""

from registry.database import make_engine
from registry.indexer.errors import (
    CertificateIndexOutOfRange,
    IndexerError,
    IndexInconsistent,
    IndexMismatch,
    IndexStale,
)
from registry.indexer.history import NOT_ANCHORED, History, KeyStandingAt
from registry.indexer.indexer import Freshness, Indexer, SyncReport, freshness
from registry.indexer.records import (
    AgencyHistory,
    BatchRecord,
    KeyHistory,
    KeyStanding,
    NationalKeyHistory,
    StatusAt,
    status_at,
)
from registry.indexer.snapshot import Snapshot
from registry.indexer.store import create_schema

__all__ = [
    "NOT_ANCHORED",
    "AgencyHistory",
    "BatchRecord",
    "CertificateIndexOutOfRange",
    "Freshness",
    "History",
    "IndexInconsistent",
    "IndexMismatch",
    "IndexStale",
    "Indexer",
    "IndexerError",
    "KeyHistory",
    "KeyStanding",
    "KeyStandingAt",
    "NationalKeyHistory",
    "Snapshot",
    "StatusAt",
    "SyncReport",
    "create_schema",
    "freshness",
    "make_engine",
    "status_at",
]
