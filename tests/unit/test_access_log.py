"""The access log keeps what it could not write: a failed flush loses no entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from verifier.access_log import Access, AccessLog
from verifier.db import make_engine, migrate, sessions


def access(n: int) -> Access:
    return Access(
        at=dt.datetime(2026, 11, 24, 9, n, tzinfo=dt.UTC), organisation="某银行", organisation_region="330100", purpose="贷款审批",
        digest=f"0x{n:064x}", identifier=None, share_id=None, fields=["holder.name"], verdict="VALID", reason=None, channel="api",
    )  # fmt: skip


def test_entries_survive_a_failed_write_and_land_with_the_next_flush(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
    migrate(engine)
    log = AccessLog(sessions(engine), flush_s=3600)  # flushed by hand here
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE access_log RENAME TO access_log_away"))  # the database refuses writes
        for n in range(3):
            log.record(access(n))
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
            log.flush()
        log.record(access(3))
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE access_log_away RENAME TO access_log"))
        entries = log.entries(digests=[f"0x{n:064x}" for n in range(4)])
        assert sorted(e["digest"] for e in entries) == [f"0x{n:064x}" for n in range(4)]
        assert entries[0]["organisation"] == "某银行" and entries[0]["fields"] == ["holder.name"]
    finally:
        log.close()
        engine.dispose()
