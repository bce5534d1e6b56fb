"""The access log keeps what it could not write: a failed flush loses no entry; a worker's entries
reach the node process's writer over its socket."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import sys
import threading
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from verifier.access_log import (
    BACKGROUND_NICE,
    Access,
    AccessLog,
    AccessLogServer,
    ForwardedAccessLog,
    lower_thread_priority,
)
from verifier.db import make_engine, migrate, sessions


def access(n: int) -> Access:
    return Access(
        at=dt.datetime(2026, 11, 24, 9, n, tzinfo=dt.UTC), organisation="某银行", organisation_region="330100", purpose="贷款审批",
        digest=f"0x{n:064x}", identifier=None, share_id=None, fields=["holder.name"], verdict="VALID", reason=None, channel="api",
    )  # fmt: skip


def test_an_entry_the_database_refuses_is_set_aside_and_holds_back_no_other(tmp_path: Path) -> None:
    """PostgreSQL refuses a value no column holds (an int4 past 2**31): the batch is written
    entry by entry and that one set aside, never retried forever in front of the rest."""
    admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("set ECERT_TEST_POSTGRES_URL to run on PostgreSQL")
    from databases import postgres_database

    with postgres_database(admin) as url:
        engine = make_engine(url)
        migrate(engine)
        log = AccessLog(sessions(engine), flush_s=3600)  # flushed by hand here
        try:
            poisoned = dataclasses.replace(access(1), batch_root="0x" + "11" * 32, batch_index=2**40)
            for entry in (access(0), poisoned, access(2)):
                log.record(entry)
            log.flush()  # no exception: the refused entry is set aside
            log.record(access(3))
            entries = log.entries(digests=[f"0x{n:064x}" for n in range(4)])
            assert sorted(e["digest"] for e in entries) == [f"0x{n:064x}" for n in (0, 2, 3)]
        finally:
            log.close()
            engine.dispose()


def test_entries_survive_a_failed_write_and_land_with_the_next_flush(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
    migrate(engine)
    log = AccessLog(sessions(engine), flush_s=3600)  # flushed by hand here
    try:
        with engine.begin() as connection:
            connection.execute(
                text("ALTER TABLE access_log RENAME TO access_log_away")
            )  # the database refuses writes
        for n in range(3):
            log.record(access(n))
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
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


@pytest.fixture
def node_log(tmp_path: Path):
    """The node process's writer and its socket server, on a fresh database."""
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
    migrate(engine)
    writer = AccessLog(sessions(engine), flush_s=3600)
    server = AccessLogServer(writer)
    yield engine, writer, server
    server.close()
    writer.close()
    engine.dispose()


def test_a_worker_s_entries_are_written_by_the_node_process_and_read_back_at_once(node_log) -> None:
    engine, _writer, server = node_log
    worker = ForwardedAccessLog(server.path, sessions(engine), flush_s=3600)
    try:
        for n in range(3):
            worker.record(access(n))
        entries = worker.entries(
            digests=[f"0x{n:064x}" for n in range(3)]
        )  # sent, written by the server, read
        assert [e["digest"] for e in entries] == [f"0x{n:064x}" for n in (2, 1, 0)]  # newest first
        assert entries[0]["at"] == "2026-11-24T09:02:00+00:00" and entries[0]["purpose"] == "贷款审批"
        assert entries[0]["fields"] == ["holder.name"]
    finally:
        worker.close()
    assert server.path.parent.stat().st_mode & 0o077 == 0  # a private folder: only this user connects


def test_a_worker_keeps_its_entries_while_the_node_process_is_not_listening(tmp_path: Path, node_log) -> None:
    engine, _writer, server = node_log
    worker = ForwardedAccessLog(tmp_path / "nobody-listens", sessions(engine), flush_s=3600)
    try:
        worker.record(access(7))
        with pytest.raises(OSError):
            worker.flush()
        worker._path = str(server.path)  # the node process is up now
        assert [e["digest"] for e in worker.entries(digests=[f"0x{7:064x}"])] == [f"0x{7:064x}"]
    finally:
        worker.close()


def test_the_server_skips_a_malformed_line_and_keeps_reading(node_log) -> None:
    _engine, writer, server = node_log
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(server.path))
        good = orjson.dumps(access(9)) + b"\n"
        wrong_type = (
            orjson.dumps({**orjson.loads(good), "digest": "0x" + "ee" * 32, "organisation": {"not": "text"}})
            + b"\n"
        )
        raw.sendall(b"not json\n" + b'{"at": "yesterday"}\n' + wrong_type + good + b'{"sync":true}\n')
        assert raw.recv(16) == b"ok\n"
    assert [e["digest"] for e in writer.entries(digests=[f"0x{9:064x}", "0x" + "ee" * 32])] == [f"0x{9:064x}"]


def _nice_of(thread: threading.Thread | None = None) -> int:
    tid = threading.get_native_id() if thread is None else thread.native_id
    assert tid is not None
    return os.getpriority(os.PRIO_PROCESS, tid)


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_the_node_process_s_log_threads_yield_the_cpu_and_a_worker_s_do_not(node_log) -> None:
    """The node process serves no request: its log threads wait for the cores. A worker's
    forwarder keeps its priority (preempted while holding the GIL it would stall the event loop)."""
    engine, writer, server = node_log
    ours = _nice_of()
    worker = ForwardedAccessLog(server.path, sessions(engine), flush_s=3600)
    try:
        worker.record(access(0))
        worker.entries(digests=[f"0x{0:064x}"])  # a connection: its thread is started by the server's
        handlers = [
            t for t in threading.enumerate() if "process_request_thread" in t.name
        ]  # socketserver's, one a connection
        assert handlers, "the server's connection thread was not found"
        for thread in (writer._thread, server._thread, *handlers):
            assert _nice_of(thread) >= max(BACKGROUND_NICE, ours), thread.name
        assert _nice_of(worker._thread) == ours
        assert _nice_of() == ours  # the caller's is untouched
    finally:
        worker.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_lowering_a_thread_s_priority_never_raises_it() -> None:
    higher = min(19, max(_nice_of(), BACKGROUND_NICE) + 1)
    seen: list[int] = []

    def run() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), higher)
        lower_thread_priority()
        seen.append(_nice_of())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [higher]
