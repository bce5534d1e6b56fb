"""Where each issued certificate sits on chain: identifier → (batch root, index).

No personal data is kept here: only identifiers, digests and chain positions. (The issuer
service replaces this with its database; the CLI needs only this much to change a status.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from registry.errors import EcertError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    identifier TEXT PRIMARY KEY,
    agency TEXT NOT NULL,
    type_code TEXT NOT NULL,
    root TEXT NOT NULL,
    batch_index INTEGER NOT NULL,
    digest TEXT NOT NULL,
    anchor_tx TEXT
)
"""


@dataclass(frozen=True)
class LedgerEntry:
    identifier: str
    agency: str
    type_code: str
    root: bytes
    index: int
    digest: bytes


class Ledger:
    """A small SQLite file under the ecert home."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(_SCHEMA)

    def record(self, entries: Iterable[tuple[str, str, str, bytes, int, bytes, str | None]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((i, a, t, "0x" + r.hex(), n, "0x" + d.hex(), tx) for i, a, t, r, n, d, tx in entries),
            )

    def find(self, identifier: str) -> LedgerEntry:
        row = self._db.execute(
            "SELECT identifier, agency, type_code, root, batch_index, digest FROM certificates WHERE identifier = ?",
            (identifier,),
        ).fetchone()
        if row is None:
            raise EcertError(f"No certificate {identifier} was issued from this ecert home", code="CERT_NOT_FOUND")
        return LedgerEntry(row[0], row[1], row[2], bytes.fromhex(row[3][2:]), row[4], bytes.fromhex(row[5][2:]))

    def close(self) -> None:
        self._db.close()
