"""One slow or hanging origin delays no report owed to another (review, point 3). The down
origin (nothing listening: refused at once) was covered (`test_attack_issue10`); an origin that
answers, but slowly, or takes the connection and never answers, was not: the sender posted one
entry at a time, so every other origin's entries waited behind each slow answer (a backlog of
100 at 1.5 s each held them 150 s), or behind a hanging one's timeout every pass. Now each
origin has its own lane: the sender, as the node runs it, sends to the others meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from test_attack_issue10 import _owe

from verifier.db import make_engine, sessions
from verifier.models import AccessOutbox
from verifier.outbox import OutboxSender


class Origin:
    """An origin's `/v1/access-log/remote` on a real port: answers 201 after `delay_s`, or never
    (`hang`: the connection taken, no answer until the sender gives up); notes when each event came."""

    def __init__(self, *, delay_s: float = 0.0, hang: bool = False) -> None:
        self.arrived: list[tuple[str, float]] = []
        self.release = threading.Event()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hang:
                    origin.release.wait(30)
                    return
                time.sleep(delay_s)
                origin.arrived.append((orjson.loads(body)["eventId"], time.monotonic()))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'node.sqlite'}"


def running(url: str, **kw: Any) -> tuple[OutboxSender, threading.Event, threading.Thread, Any]:
    """The sender as the node runs it (`VerifierRuntime.start_outbox`): a thread until `stop`."""
    engine = make_engine(url)
    sender = OutboxSender(
        sessions(engine), "vk_node", retry_base_s=60, retry_max_s=600, give_up_s=86_400, **kw
    )
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop, wake, 0.05), daemon=True)
    return sender, stop, thread, engine


@pytest.mark.parametrize("slowness", ["slow", "hanging"])
def test_a_slow_or_hanging_origin_delays_no_other_origin_s_reports(database_url: str, slowness: str) -> None:
    slow = Origin(delay_s=1.0) if slowness == "slow" else Origin(hang=True)
    live = Origin()
    _owe(database_url, [(slow.url, 6), (live.url, 3)])  # the slow origin's backlog is due first
    _, stop, thread, engine = running(database_url, timeout_s=4, batch_size=100)
    started = time.monotonic()
    thread.start()
    try:
        deadline = started + 10
        while len(live.arrived) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(live.arrived) == 3, "the live origin's entries never arrived"
        waited = max(at for _, at in live.arrived) - started
        assert waited < 0.9, f"the live origin's entries waited {waited:.1f}s behind the {slowness} origin"
        if slowness == "slow":  # and the slow origin gets its entries too, one after another
            deadline = time.monotonic() + 15
            while len(slow.arrived) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(slow.arrived) == 6
    finally:
        stop.set()
        slow.close()
        thread.join(10)
        live.close()
    assert not thread.is_alive()
    with engine.connect() as connection:
        states = dict(connection.execute(select(AccessOutbox.origin, AccessOutbox.state)
                                         .where(AccessOutbox.origin == live.url)).all())  # fmt: skip
    assert states == {live.url: "delivered"}
    engine.dispose()


def test_entries_owed_later_to_another_origin_go_while_a_slow_origin_is_still_being_sent(
    database_url: str,
) -> None:
    slow, live = Origin(delay_s=0.5), Origin()
    _owe(database_url, [(slow.url, 8)])  # 4 s of slow answers
    _, stop, thread, engine = running(database_url, timeout_s=4, batch_size=100)
    thread.start()
    try:
        while not slow.arrived:
            time.sleep(0.02)
        written = time.monotonic()
        _owe(database_url, [(live.url, 1)])  # a verification now, owed elsewhere
        while not live.arrived and time.monotonic() < written + 10:
            time.sleep(0.02)
        assert live.arrived, "the entry owed to the live origin never arrived"
        # the property, not a time (a loaded machine stretches both): when the live origin got its
        # entry, the slow origin was still being sent its backlog
        before_live = [at for _, at in slow.arrived if at <= live.arrived[0][1]]
        assert len(before_live) < 8, "waited for the slow origin's backlog"
    finally:
        stop.set()
        thread.join(10)
        slow.close()
        live.close()
        engine.dispose()


def test_an_origin_that_is_down_is_tried_once_a_poll_not_hammered(database_url: str) -> None:
    """A lane's end wakes the sender for what is due after it, but not after "no answer": the
    down origin's next entry waits for the next poll, as before the lanes."""
    down = Origin(hang=True)
    down.close()  # nothing listens any more: refused at once
    _owe(database_url, [(down.url, 50)])
    _, stop, thread, engine = running(database_url, timeout_s=2, batch_size=100)
    thread.start()
    time.sleep(0.5)  # 10 polls of 0.05 s
    stop.set()
    thread.join(10)
    with engine.connect() as connection:
        attempts = sum(connection.scalars(select(AccessOutbox.attempts)).all())
    engine.dispose()
    assert 1 <= attempts <= 15, attempts
