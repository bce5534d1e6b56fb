"""Who writes an index: one process per database at a time. Several verifier node processes may
share one database (on one host or several); each asks for the lease, one indexes, the others
serve and stand by, and take over as soon as the indexer's process dies.

- PostgreSQL: a session advisory lock held on a connection of its own. The server releases it
  when that connection ends, so a killed process or a cut network frees it.
- SQLite (one host): an exclusive `flock` on a file beside the database, released by the kernel
  when the process dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

LOCK_KEY = 0x65636572_74696478  # "ecertidx": the advisory lock's 64-bit key


class IndexerLease:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def acquire(self) -> bool:
        """Take the lease if it is free (never waits); True while this process holds it."""
        if self.held:
            return self.check()
        if self._engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        return self._acquire_flock()

    def check(self) -> bool:
        """Whether the lease is still ours: a lost PostgreSQL connection has lost its lock."""
        if self._connection is None:
            return self._file is not None
        try:
            self._connection.execute(text("SELECT 1"))
            return True
        except DBAPIError:
            log.warning("the indexer's lock connection was lost: the lease is released")
            self.release()
            return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            except DBAPIError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _acquire_advisory(self) -> bool:
        connection = self._engine.connect()
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
            connection.commit()  # end the transaction: the session lock stays, the connection is idle
        except DBAPIError:
            connection.close()
            raise
        if taken:
            self._connection = connection
            return True
        connection.close()
        return False

    def _acquire_flock(self) -> bool:
        database = self._engine.url.database
        path = Path(f"{database}.indexer.lock") if database and database != ":memory:" else None
        if path is None:
            return True  # an in-memory database belongs to this process alone
        handle = open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "rb+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True
