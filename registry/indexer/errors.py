"""The indexer's errors, leaves of the one `EcertError` tree (to be drawn into `registry/errors.py`).

EcertError
├── IndexerError                INDEX_ERROR              the index cannot answer
│   ├── IndexStale              INDEX_STALE              too far behind the chain to be trusted
│   ├── IndexMismatch           INDEX_MISMATCH           the database indexes another chain or registry
│   └── IndexInconsistent       INDEX_INCONSISTENT       the chain moved during a sync (retried next time)
└── CertificateIndexOutOfRange  CERT_INDEX_OUT_OF_RANGE  no certificate at that index of the batch
"""

from __future__ import annotations

from registry.error_codes import ErrorCode
from registry.errors import EcertError


class IndexerError(EcertError):
    """The index cannot answer; a verifier treats this as ERROR, never INVALID."""

    code = ErrorCode.INDEX_ERROR


class IndexStale(IndexerError):
    code = ErrorCode.INDEX_STALE


class IndexMismatch(IndexerError):
    code = ErrorCode.INDEX_MISMATCH


class IndexInconsistent(IndexerError):
    code = ErrorCode.INDEX_INCONSISTENT


class CertificateIndexOutOfRange(EcertError):
    code = ErrorCode.CERT_INDEX_OUT_OF_RANGE
