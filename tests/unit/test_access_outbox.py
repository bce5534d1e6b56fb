"""The access-log outbox on a real database (SQLite, and PostgreSQL when ECERT_TEST_POSTGRES_URL
is set): an entry owed to another region's node is written with the local entry or not at all,
once however often a worker sends its batch; the origin stores a reported entry once however
often, and however many at the same moment, it arrives; two senders on one database post
an entry once; retries back off, capped, with jitter."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from databases import postgres_database
from sqlalchemy import Engine, func, select, text

from verifier.access_log import Access, AccessLog
from verifier.db import make_engine, migrate, sessions
from verifier.models import AccessEntry, AccessOutbox, Share
from verifier.orgs import Organisations
from verifier.outbox import OutboxSender
from verifier.remote_log import RemoteAccess, record_fetch, store_remote_access


def looked_at() -> dt.datetime:
    """A look now: a report is dated within the share's life (`verifier.remote_log`)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
TOKEN = "a-share-token-the-holder-s-node-gave-out"
DIGEST = "0x" + "ab" * 32


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh node database, migrated: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    with postgres_database(POSTGRES_URL) as url:
        engine = make_engine(url)
        migrate(engine)
        yield engine
        engine.dispose()


def owed_access(**changes: Any) -> Access:
    """A 广东 bank's verification of a share fetched from 浙江: owed to 浙江's log."""
    access = Access(
        at=looked_at(), organisation="广州银行", organisation_region="440100",
        purpose="跨省开户", digest=DIGEST, identifier="330100-2030-0001", share_id=None, fields=["holder.name"],
        verdict="VALID", reason=None, channel="api", event_id=uuid.uuid4().hex, origin="http://zj.example",
        share_token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
    )  # fmt: skip
    return dataclasses.replace(access, **changes)


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model))


def test_an_owed_entry_is_written_with_the_local_entry_once_and_without_the_token(engine: Engine) -> None:
    woken = []
    log = AccessLog(sessions(engine), flush_s=3600, on_outbox=lambda: woken.append(1))
    try:
        owed, local = owed_access(), owed_access(event_id=None, origin=None, share_token_hash=None)
        for access in (owed, owed, local):  # the same entry twice: a worker's batch sent again
            log.record(access)
        log.flush()
    finally:
        log.close()
    assert count(engine, AccessEntry) == 3 and woken == [1]
    with engine.connect() as connection:
        [row] = connection.execute(select(AccessOutbox)).all()
    assert (row.event_id, row.origin, row.state, row.attempts) == (
        owed.event_id,
        "http://zj.example",
        "pending",
        0,
    )
    payload = orjson.loads(row.payload)
    assert TOKEN not in row.payload and payload["shareTokenHash"] == owed.share_token_hash
    assert RemoteAccess.model_validate(payload).organisationRegion == "440100"  # what the origin takes


def test_an_owed_entry_the_database_refuses_holds_back_its_local_entry_too(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")
    migrate(engine)
    log = AccessLog(sessions(engine), flush_s=3600)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE access_outbox RENAME TO access_outbox_away"))
        log.record(owed_access())
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
            log.flush()
        assert count(engine, AccessEntry) == 0  # one transaction: neither row
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE access_outbox_away RENAME TO access_outbox"))
        log.flush()
        assert (count(engine, AccessEntry), count(engine, AccessOutbox)) == (1, 1)
    finally:
        log.close()
        engine.dispose()


def test_a_reported_entry_is_stored_once_however_many_copies_arrive_at_once(engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    share_id = uuid.uuid4().hex
    with sessions(engine).begin() as session:
        session.add(Share(
            id=share_id, token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), holder_ref="holder-1",
            digest=DIGEST, presentation=b"", fields="[]", purpose="", created_at=now, expires_at=now + dt.timedelta(hours=1),
        ))  # fmt: skip
    node_id, _ = Organisations(sessions(engine), rate_per_min=60).add("广东省验证节点", "440000", "node")
    record_fetch(sessions(engine), share_id, node_id)  # the node that reports fetched the share
    access = owed_access()
    event = RemoteAccess.model_validate(orjson.loads(orjson.dumps({
        "eventId": access.event_id, "at": access.at, "organisation": access.organisation,
        "organisationRegion": access.organisation_region, "purpose": access.purpose, "fields": access.fields,
        "verdict": access.verdict, "reason": None, "channel": "api", "shareTokenHash": access.share_token_hash,
        "digest": DIGEST, "identifier": access.identifier,
    })))  # fmt: skip
    made = sessions(engine)
    with ThreadPoolExecutor(16) as pool:
        stored = list(
            pool.map(
                lambda _: store_remote_access(made, event, reported_by="广东省验证节点", reporter_id=node_id),
                range(32),
            )
        )
    assert stored.count(True) == 1 and count(engine, AccessEntry) == 1
    with engine.connect() as connection:
        row = connection.execute(select(AccessEntry)).one()
    assert (row.organisation, row.organisation_region, row.reported_by, row.event_id) == (
        "广州银行",
        "440100",
        "广东省验证节点",
        access.event_id,
    )


def test_retries_back_off_exponentially_capped_with_jitter(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'verifier.sqlite'}")

    def sender(draw: float) -> OutboxSender:
        return OutboxSender(
            sessions(engine), None, retry_base_s=1, retry_max_s=60, give_up_s=3600, rng=lambda: draw
        )

    low, high = sender(0.0), sender(0.999999)
    assert [low.delay_s(n) for n in (1, 2, 3, 4, 7, 8, 5000)] == [0.5, 1, 2, 4, 30, 30, 30]
    assert [round(high.delay_s(n), 3) for n in (1, 2, 7, 5000)] == [1, 2, 60, 60]
    engine.dispose()


class Origin:
    """A stand-in origin node's endpoint on a real HTTP port: answers 201 and counts the events."""

    def __init__(self) -> None:
        self.events: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                origin.events.append(orjson.loads(body)["eventId"])
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_two_senders_on_one_database_post_each_entry_once(engine: Engine) -> None:
    origin = Origin()
    log = AccessLog(sessions(engine), flush_s=3600)
    try:
        for _ in range(30):
            log.record(owed_access(origin=origin.url))
        log.flush()
        senders = [
            OutboxSender(sessions(engine), "vk_node", retry_base_s=1, retry_max_s=1, give_up_s=3600)
            for _ in range(2)
        ]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.send_due(), senders))
    finally:
        log.close()
        origin.close()
    with engine.connect() as connection:
        rows = connection.execute(
            select(AccessOutbox.event_id, AccessOutbox.state, AccessOutbox.attempts)
        ).all()
    assert sorted(origin.events) == sorted(r.event_id for r in rows) and len(rows) == 30
    assert {(r.state, r.attempts) for r in rows} == {("delivered", 1)}
