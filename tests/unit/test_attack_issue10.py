"""Attacks on what issue 10 built (the holder's access log through a wallet, holdings, shares
bound to their wallet, the cross-region outbox), each a hole that was open: on a node's app
in-process (no chain: none of these routes reads one) and its outbox sender, on SQLite and on
PostgreSQL (when ECERT_TEST_POSTGRES_URL is set).

- A NUL character in a holderRef, share id or purpose was a 500 on PostgreSQL, and, in a link
  visitor's typed purpose or a bank's, an access-log entry the database refused on every flush:
  the node's whole log held back behind it, from one anonymous request.
- A wallet key fetched any share's disclosure by its token (`/v1/shares/{token}/presentation`),
  unlogged, using up a single-use share: that route is for nodes, which log and report.
- The outbox sender: an origin that is down, with a backlog, held every other origin's entries
  back for as many passes as it had entries; and an origin answering 429 or 5xx was sent every
  one of its due entries in the same pass.
- A reported event id sent again with other content, or by another node, was answered 200
  "stored before": the mismatch is now a 409 `ACCESS_EVENT_MISMATCH`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from databases import postgres_database
from sqlalchemy import select
from test_access_outbox import owed_access
from test_wallet_app import ALICE, packages

from registry.certificate.presentation import Presentation
from registry.chain.runner import free_port
from registry.workspace import Workspace
from verifier.access_log import AccessLog
from verifier.api.app import create_app
from verifier.db import make_engine, migrate, sessions
from verifier.models import AccessOutbox
from verifier.outbox import OutboxSender
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings


def looked_at() -> dt.datetime:
    """A look now: a report is dated within the share's life (`verifier.remote_log`)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
PROBLEM = "application/problem+json"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.sqlite'}"
        return
    with postgres_database(POSTGRES_URL) as url:
        yield url


class Http:
    """The app in-process, synchronously (an ASGI transport; its errors answered, not raised)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport, base_url="http://node.test") as client:
                return await client.request(method, path, **kw)

        return asyncio.run(send())

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)


@dataclass
class Node:
    http: Http
    wallet: str
    other_wallet: str
    bank: str
    node: str  # a trusted node of another region
    other_node: str
    package: Presentation

    def as_(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def share(self, **terms: Any) -> dict[str, Any]:
        made = self.http.post("/v1/shares", headers=self.as_(self.wallet), json={
            "holderRef": "h-1", "presentation": self.package.disclose(["holder.name"]).to_json(),
            "purpose": "租房", "expiresInMinutes": 60, **terms})  # fmt: skip
        assert made.status_code == 201, made.text
        return made.json()


@pytest.fixture
def node(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / "home"))
    settings = VerifierSettings(region="330000", database_url=database_url, public_url="http://node.test")
    rt = VerifierRuntime.open(Workspace(), settings)
    add = rt.organisations.add
    keys = [add(name, region, kind)[1] for name, region, kind in (
        ("浙里办", "330000", "wallet"), ("粤省事", "440000", "wallet"), ("杭州银行", "330100", "bank"),
        ("广东省验证节点", "440000", "node"), ("上海市验证节点", "310000", "node"))]  # fmt: skip
    [package] = packages(("王小丽", ALICE))
    try:
        yield Node(Http(create_app(rt)), *keys, package)
    finally:
        rt.close()


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code, response.text[:300]


# ─── NUL characters: a 500 on PostgreSQL, and an anonymous way to stop the access log ─────


def test_a_nul_anywhere_a_text_is_looked_up_is_a_400_not_a_500(node: Node) -> None:
    w = node.as_(node.wallet)
    held = {"holderRef": "h\x00", "presentation": node.package.to_json()}
    for method, path, kw in (
        ("GET", "/v1/holdings", {"params": {"holderRef": "\x00"}}),
        ("GET", "/v1/access-log", {"params": {"holderRef": "h\x00"}}),
        ("GET", "/v1/shares", {"params": {"holderRef": "\x00"}}),
        ("DELETE", "/v1/shares/%00", {"params": {"holderRef": "h"}}),
        ("GET", "/v1/shares/a%00b/dynamic-code", {"params": {"holderRef": "h"}}),
        ("POST", "/v1/holdings", {"json": held}),
        ("POST", "/v1/shares", {"json": {**held, "presentation": node.package.disclose(["holder.name"]).to_json(),
                                         "expiresInMinutes": 10}}),
    ):  # fmt: skip
        assert_problem(node.http.request(method, path, headers=w, **kw), 400, "TEXT_INVALID")
    share = node.share()
    report = {
        "eventId": uuid.uuid4().hex, "at": looked_at().isoformat(), "organisation": "广州\x00银行",
        "organisationRegion": "440100", "purpose": "跨省开户", "fields": ["holder.name"], "verdict": "VALID",
        "channel": "api", "shareTokenHash": hashlib.sha256(share["token"].encode()).hexdigest(),
        "digest": share["digest"],
    }  # fmt: skip
    answer = node.http.post("/v1/access-log/remote", headers=node.as_(node.node), json=report)
    assert_problem(answer, 400, "TEXT_INVALID")


def test_a_nul_in_a_purpose_never_reaches_the_access_log(node: Node) -> None:
    """Anonymous (a link visitor's typed purpose) or a bank's: refused before any entry is made;
    on PostgreSQL such an entry held every later entry of the node's log back, for good."""
    share = node.share()
    visit = node.http.get(
        f"/s/{share['token']}", params={"purpose": "看\x00看"}, headers={"Accept": "application/json"}
    )
    assert_problem(visit, 400, "TEXT_INVALID")
    bank = node.as_(node.bank)
    answer = node.http.post(
        "/v1/verifications", headers=bank, json={"package": node.package.to_json(), "purpose": "开户\x00"}
    )
    assert_problem(answer, 422, "REQUEST_INVALID")
    image = node.http.post("/v1/verifications/image", headers=bank, data={"purpose": "开户\x00"},
                           files={"file": ("qr.png", b"\x89PNG not an image", "image/png")})  # fmt: skip
    assert_problem(image, 422, "REQUEST_INVALID")


# ─── the node-to-node fetch of a disclosure: nodes only ─────────────────────────────────────


def test_a_wallet_key_cannot_read_or_use_up_a_share_through_the_node_fetch(node: Node) -> None:
    share = node.share(singleUse=True)
    for key in (node.wallet, node.other_wallet):
        assert_problem(node.http.get(f"/v1/shares/{share['token']}/presentation", headers=node.as_(key)), 403,
                       "SCOPE_MISSING")  # fmt: skip
    [listed] = node.http.get("/v1/shares", params={"holderRef": "h-1"}, headers=node.as_(node.wallet)).json()
    assert listed["used"] is False  # still the holder's to give: the refused fetches used nothing
    fetched = node.http.get(f"/v1/shares/{share['token']}/presentation", headers=node.as_(node.node))
    assert fetched.status_code == 200 and Presentation.from_json(fetched.json()).is_partial


# ─── a reported event sent again: the same, or a mismatch ───────────────────────────────────


def test_an_event_id_reported_again_with_other_content_or_by_another_node_is_a_conflict(node: Node) -> None:
    share = node.share()
    at = looked_at()
    report = {
        "eventId": uuid.uuid4().hex, "at": at.isoformat(), "organisation": "广州银行",
        "organisationRegion": "440100", "purpose": "跨省开户", "fields": ["holder.name"], "verdict": "VALID",
        "reason": None, "channel": "api", "shareTokenHash": hashlib.sha256(share["token"].encode()).hexdigest(),
        "digest": share["digest"], "identifier": None,
    }  # fmt: skip
    by_node = node.as_(node.node)
    for key in (node.node, node.other_node):  # both fetched it: each may report looks at it
        fetched = node.http.get(f"/v1/shares/{share['token']}/presentation", headers=node.as_(key))
        assert fetched.status_code == 200, fetched.text
    assert node.http.post("/v1/access-log/remote", headers=by_node, json=report).status_code == 201
    again = node.http.post("/v1/access-log/remote", headers=by_node, json=report)
    assert (again.status_code, again.json()["stored"]) == (200, False)  # a resend: stored once
    same_moment = {
        **report,
        "at": at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(),
    }  # the same instant, written otherwise
    assert node.http.post("/v1/access-log/remote", headers=by_node, json=same_moment).status_code == 200
    for changed in ({"organisation": "公安局"}, {"purpose": "调查"}, {"fields": ["holder.name", "holder.code"]},
                    {"at": "2031-01-01T00:00:00+00:00"}, {"verdict": "INVALID"}):  # fmt: skip
        answer = node.http.post("/v1/access-log/remote", headers=by_node, json={**report, **changed})
        assert_problem(answer, 409, "ACCESS_EVENT_MISMATCH")
    answer = node.http.post("/v1/access-log/remote", headers=node.as_(node.other_node), json=report)
    assert_problem(answer, 409, "ACCESS_EVENT_MISMATCH")  # another node's event, as its own
    entries = node.http.get(
        "/v1/access-log", params={"holderRef": "h-1"}, headers=node.as_(node.wallet)
    ).json()
    remote = [e for e in entries if e.get("reportedBy")]
    assert [(e["organisation"], e["purpose"], e["reportedBy"]) for e in remote] == [
        ("广州银行", "跨省开户", "广东省验证节点")
    ]


def test_a_report_is_bounded_in_size_and_in_time(node: Node) -> None:
    """A trusted node's report: 1,000 paths of 100 kB were stored, a 100 MB entry in the holder's
    log; a moment UTC cannot hold (year 1 at +14:00) was a 500."""
    share = node.share()
    report = {
        "eventId": uuid.uuid4().hex, "at": looked_at().isoformat(), "organisation": "广州银行",
        "organisationRegion": "440100", "purpose": "跨省开户", "fields": ["holder.name"], "verdict": "VALID",
        "channel": "api", "shareTokenHash": hashlib.sha256(share["token"].encode()).hexdigest(),
        "digest": share["digest"],
    }  # fmt: skip
    by_node = node.as_(node.node)
    for hostile in ({"fields": ["x" * 100_000] * 20}, {"at": "0001-01-01T00:00:00+14:00"}):
        answer = node.http.post("/v1/access-log/remote", headers=by_node, json={**report, **hostile})
        assert_problem(answer, 422, "REQUEST_INVALID")
    assert (
        node.http.get("/v1/access-log", params={"holderRef": "h-1"}, headers=node.as_(node.wallet)).json()
        == []
    )


# ─── the outbox sender: one origin's trouble is not every origin's ─────────────────────────


class Origin:
    """An origin node's `/v1/access-log/remote` stand-in answering `status` to every post."""

    def __init__(self, status: int) -> None:
        self.events: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                origin.events.append(orjson.loads(body)["eventId"])
                answer = b'{"code":"SLOW_DOWN"}' if status >= 400 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _owe(url: str, origins: list[tuple[str, int]]) -> None:
    """Outbox entries, oldest first: `count` owed to each origin, in the order given."""
    engine = make_engine(url)
    migrate(engine)
    log = AccessLog(sessions(engine), flush_s=3600)
    try:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        n = 0
        for origin, count in origins:
            for _ in range(count):
                log.record(owed_access(origin=origin, at=start + dt.timedelta(seconds=n)))
                n += 1
            log.flush()  # one batch per origin: its entries are due before the next origin's
    finally:
        log.close()
        engine.dispose()


def test_an_origin_that_is_down_with_a_backlog_does_not_hold_back_the_others(database_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: no answer at all
    live = Origin(201)
    _owe(database_url, [(down, 12), (live.url, 1)])
    engine = make_engine(database_url)
    sender = OutboxSender(sessions(engine), "vk_node", retry_base_s=60, retry_max_s=600, give_up_s=86_400,
                          timeout_s=2, batch_size=5)  # fmt: skip
    try:
        sender.send_due()  # one pass: the down origin is tried once, then the others' entries go
        assert len(live.events) == 1
        with engine.connect() as connection:
            tried = connection.scalars(select(AccessOutbox.attempts).where(AccessOutbox.origin == down)).all()
        assert sorted(tried) == [0] * 11 + [1]
    finally:
        live.close()
        engine.dispose()


@pytest.mark.parametrize("status", [429, 503])
def test_an_origin_that_says_not_now_is_sent_one_entry_a_pass(database_url: str, status: int) -> None:
    busy, live = Origin(status), Origin(201)
    _owe(database_url, [(busy.url, 8), (live.url, 2)])
    engine = make_engine(database_url)
    sender = OutboxSender(sessions(engine), "vk_node", retry_base_s=60, retry_max_s=600, give_up_s=86_400,
                          timeout_s=2, batch_size=100)  # fmt: skip
    try:
        sender.send_due()
        assert len(busy.events) == 1 and len(live.events) == 2  # no flood of a busy origin
        with engine.connect() as connection:
            rows = connection.execute(select(AccessOutbox.state, AccessOutbox.last_error)
                                      .where(AccessOutbox.origin == busy.url)).all()  # fmt: skip
        assert {r.state for r in rows} == {"pending"}
        assert sorted(r.last_error or "" for r in rows)[-1] == f"{status} SLOW_DOWN"
    finally:
        busy.close()
        live.close()
        engine.dispose()
