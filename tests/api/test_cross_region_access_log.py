"""Cross-region looks reach the holder (issue 10, point 2), over real HTTP between two
`ecert serve verifier` processes: a 广东 (440000) bank verifies a share kept by 浙江 (330000); the
verification is in the holder's log at 浙江, with the bank and its region and the node that
reports it, sent by 广东's access outbox — also when 浙江 goes down between the fetch and the
delivery — and stored once however often it arrives.

浙江 is reached (by 广东, and in its share links) through a gateway: a plain HTTP forwarder on its
own port, as a load balancer in front of a node, that can cut the way to 浙江 the moment it has
served a share's disclosure. From then on it answers 502, as a balancer with no node behind it
does; the test stops 浙江 itself meanwhile and starts it again later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from service_process import wait_for
from sqlalchemy import Engine, func, insert, select
from verifier_stack import (
    AGENCY_ZJ,
    AUTHORITIES,
    BUSINESS_LICENCE,
    Issued,
    StackHome,
    VerifierNode,
    assert_problem,
    records,
    start_all,
)

from registry.certificate.presentation import Presentation
from registry.chain.runner import free_port
from verifier.db import make_engine
from verifier.models import AccessEntry, AccessOutbox


def looked_at() -> dt.datetime:
    """A look now: a report is dated within the share's life (`verifier.remote_log`)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


pytestmark = pytest.mark.chain

SHARED_FIELDS = ["holder.name", "identifier", "issuer.code", "typeCode", "validFrom", "validUntil"]
HOLDER = "holder-1"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class Gateway:
    """Forwards every request to `target`; `cut_after_next_fetch()`: the next share fetch is
    answered, and from then on nothing passes (502) until `restore()`."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.target = ""
        self._cut_after_fetch = threading.Event()
        self._cut = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway._forward(self)

            do_POST = do_DELETE = do_GET

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", int(self.url.rsplit(":", 1)[1])), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def cut_after_next_fetch(self) -> None:
        self._cut_after_fetch.set()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        answer = None
        if not self._cut.is_set():
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                answer = httpx.request(request.command, self.target + request.path, headers=headers,
                                       content=body, timeout=30)  # fmt: skip
            except httpx.TransportError:
                answer = None
        fetch = answer is not None and request.path.split("?")[0].endswith("/presentation")
        if fetch and self._cut_after_fetch.is_set():
            self._cut_after_fetch.clear()
            self._cut.set()  # the disclosure goes out; nothing after it reaches 浙江
        if answer is None:
            request.send_response(502)
            request.send_header("Content-Type", "text/plain")
            request.end_headers()
            request.wfile.write(b"bad gateway: no node behind it")
            return
        request.send_response(answer.status_code)
        for name, value in answer.headers.multi_items():
            if name.lower() not in HOP_BY_HOP:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer.content)))
        request.end_headers()
        request.wfile.write(answer.content)


@dataclass
class Pair:
    home: StackHome
    gateway: Gateway
    origin: VerifierNode  # 浙江 330000: keeps the holder's shares and log
    verifying: VerifierNode  # 广东 440000: its bank verifies them
    wallet: str  # a wallet's key at 浙江
    origin_bank: str  # a bank's key at 浙江
    node_key: str  # 广东's key at 浙江 (kind node)
    bank: str  # a bank's key at 广东
    stranger: str  # a node key 浙江 never gave (issued at 广东)
    issued: Issued
    origin_db: Engine
    verifying_db: Engine

    def share(self, i: int = 0) -> dict[str, Any]:
        disclosure = Presentation.from_json(self.issued.package(i)).disclose(SHARED_FIELDS)
        with self.origin.client(self.wallet) as wallet:
            response = wallet.post("/v1/shares", json={
                "holderRef": HOLDER, "presentation": disclosure.to_json(), "purpose": "跨省开户", "expiresInMinutes": 60,
            })  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()

    def verify(self, share: dict[str, Any]) -> dict[str, Any]:
        with self.verifying.client(self.bank) as bank:
            response = bank.post("/v1/verifications", json={"purpose": "跨省开户", "shareUrl": share["url"]})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["verdict"] == "VALID", report
        return report

    def holder_log(self, share: dict[str, Any]) -> list[dict[str, Any]]:
        """The holder's log of the share at 浙江, as their wallet reads it."""
        with self.origin.client(self.wallet) as wallet:
            response = wallet.get("/v1/access-log", params={"holderRef": HOLDER, "shareId": share["id"]})
        assert response.status_code == 200, response.text
        return response.json()

    def owed(self, share: dict[str, Any]) -> Any:
        """广东's outbox row for the share (found by its token's SHA-256, all the payload names)."""
        with self.verifying_db.connect() as connection:
            rows = connection.execute(select(AccessOutbox)).all()
        mine = [r for r in rows if json.loads(r.payload)["shareTokenHash"] == token_hash(share)]
        assert len(mine) <= 1
        return mine[0] if mine else None

    def stored(self, event_id: str) -> int:
        """How many rows of 浙江's access log carry this event id."""
        with self.origin_db.connect() as connection:
            return connection.scalar(select(func.count()).where(AccessEntry.event_id == event_id))

    def report(self, payload: dict[str, Any], key: str | None) -> httpx.Response:
        with self.origin.client(key) as client:
            return client.post("/v1/access-log/remote", json=payload)


def token_hash(share: dict[str, Any]) -> str:
    return hashlib.sha256(share["token"].encode()).hexdigest()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    home = StackHome(tmp_path_factory.mktemp("cross-region-log"))
    gateway = Gateway()
    origin = VerifierNode(home, "330000", public_url=gateway.url)  # its links go through the gateway
    verifying = VerifierNode(  # with workers, whose entries its node process writes and sends
        home, "440000", workers=2, trusted_nodes=json.dumps([gateway.url]), outbox_retry_base_s="0.2",
        outbox_retry_max_s="1",
    )  # fmt: skip
    gateway.target = origin.url
    wallet, origin_bank, node_key = origin.register(
        ("浙里办", "330000", "wallet"), ("杭州银行", "330100", "bank"), ("广东省验证节点", "440000", "node")
    )
    bank, stranger = verifying.register(("广州银行", "440100", "bank"), ("上海市验证节点", "310000", "node"))
    verifying.env["ECERT_VERIFIER_NODE_KEY"] = node_key
    engines = [make_engine(origin.database_url), make_engine(verifying.database_url)]
    try:
        with ThreadPoolExecutor(1) as pool:
            home.deploy()
            started = pool.submit(start_all, [origin, verifying])
            home.add_parties(authorities=[a for a in AUTHORITIES if a[0] != "310000"])
            issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(2), "zj")
            started.result()
        for node in (origin, verifying):
            node.wait_indexed()
        yield Pair(
            home, gateway, origin, verifying, wallet, origin_bank, node_key, bank, stranger, issued, *engines
        )
    finally:
        for node in (origin, verifying):
            node.stop()
        gateway.close()
        for engine in engines:
            engine.dispose()
        home.tear_down()


def test_a_verification_at_another_region_s_node_is_in_the_holder_s_log_at_the_origin(pair: Pair) -> None:
    share = pair.share()
    pair.verify(share)
    [entry] = wait_for(lambda: pair.holder_log(share), 30, what="for the entry at 浙江")
    assert (entry["organisation"], entry["region"], entry["reportedBy"]) == (
        "广州银行",
        "440100",
        "广东省验证节点",
    )
    assert (entry["shareId"], entry["digest"], entry["purpose"], entry["verdict"], entry["channel"]) == (
        share["id"],
        share["digest"],
        "跨省开户",
        "VALID",
        "api",
    )
    assert sorted(entry["fields"]) == sorted(SHARED_FIELDS) and entry["anonymous"] is False
    owed = wait_for(lambda: (row := pair.owed(share)) is not None and row.state == "delivered" and row, 10)
    assert owed.attempts == 1 and owed.origin == pair.gateway.url and pair.stored(owed.event_id) == 1
    assert share["token"] not in owed.payload  # the token stays at 广东: 浙江 knows its hash
    assert json.loads(owed.payload)["eventId"] == owed.event_id


def test_an_entry_owed_while_the_origin_is_down_arrives_once_when_it_is_back(pair: Pair) -> None:
    share = pair.share(1)
    pair.gateway.cut_after_next_fetch()
    pair.verify(share)  # the disclosure was fetched; then the way to 浙江 was cut
    pair.origin.stop()
    down = wait_for(lambda: (row := pair.owed(share)) is not None and row.attempts >= 3 and row, 30,
                    what="for 广东 to try 浙江 three times")  # fmt: skip
    assert down.state == "pending" and down.last_error.startswith("502") and down.delivered_at is None
    pair.origin.start()
    pair.gateway.restore()
    delivered = wait_for(lambda: (row := pair.owed(share)).state == "delivered" and row, 30,
                         what="for the entry to reach 浙江")  # fmt: skip
    assert delivered.attempts > down.attempts
    [entry] = pair.holder_log(share)
    assert (entry["organisation"], entry["region"], entry["reportedBy"]) == (
        "广州银行",
        "440100",
        "广东省验证节点",
    )
    assert pair.stored(delivered.event_id) == 1
    # sent again (an answer lost on the way), and eight times at once: still one row
    payload = json.loads(delivered.payload)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: pair.report(payload, pair.node_key), range(9)))
    assert {(a.status_code, a.json()["stored"]) for a in answers} == {(200, False)}
    assert pair.stored(delivered.event_id) == 1 and len(pair.holder_log(share)) == 1


def test_an_entry_for_a_share_the_origin_does_not_keep_fails_once_and_is_not_sent_again(pair: Pair) -> None:
    event_id = uuid.uuid4().hex
    payload = {
        "eventId": event_id, "at": looked_at().isoformat(), "organisation": "广州银行", "organisationRegion": "440100",
        "purpose": "跨省开户", "fields": SHARED_FIELDS, "verdict": "VALID", "reason": None, "channel": "api",
        "shareTokenHash": hashlib.sha256(b"a token no share of this node has").hexdigest(),
        "digest": pair.issued.package(0)["digest"], "identifier": pair.issued.identifier(0),
    }  # fmt: skip
    with pair.verifying_db.begin() as connection:  # as an entry written before 浙江 lost the share would be
        now = dt.datetime.now(dt.UTC)
        connection.execute(insert(AccessOutbox), {
            "event_id": event_id, "origin": pair.gateway.url, "payload": json.dumps(payload), "state": "pending",
            "attempts": 0, "next_attempt_at": now, "created_at": now,
        })  # fmt: skip

    def row() -> Any:
        with pair.verifying_db.connect() as connection:
            return connection.execute(select(AccessOutbox).where(AccessOutbox.event_id == event_id)).one()

    failed = wait_for(lambda: (r := row()).state != "pending" and r, 30, what="for the outbox to try it")
    assert (failed.state, failed.attempts, failed.last_error) == ("failed", 1, "404 SHARE_NOT_FOUND")
    assert pair.stored(event_id) == 0


def test_only_nodes_the_origin_trusts_may_report_and_only_of_its_shares(pair: Pair) -> None:
    share = pair.share()
    payload = {
        "eventId": uuid.uuid4().hex, "at": looked_at().isoformat(), "organisation": "广州银行",
        "organisationRegion": "440100", "purpose": "跨省开户", "fields": SHARED_FIELDS, "verdict": "VALID",
        "reason": None, "channel": "api", "shareTokenHash": token_hash(share), "digest": share["digest"],
        "identifier": None,
    }  # fmt: skip
    assert_problem(pair.report(payload, None), 401, "AUTH_REQUIRED")
    assert_problem(pair.report(payload, pair.wallet), 403, "SCOPE_MISSING")
    assert_problem(pair.report(payload, pair.origin_bank), 403, "SCOPE_MISSING")
    assert_problem(pair.report(payload, pair.stranger), 401, "AUTH_INVALID")  # a node 浙江 gave no key
    assert pair.stored(payload["eventId"]) == 0 and pair.holder_log(share) == []
    other = pair.issued.package(1)["digest"]
    unknown = {**payload, "shareTokenHash": "0" * 64}
    assert_problem(pair.report(unknown, pair.node_key), 404, "SHARE_NOT_FOUND")
    assert_problem(pair.report(payload, pair.node_key), 404, "SHARE_NOT_FOUND")  # 广东 never fetched it
    assert pair.stored(payload["eventId"]) == 0
    with pair.origin.client(pair.node_key) as node:  # as 广东 does, verifying the share
        assert node.get(f"/v1/shares/{share['token']}/presentation").status_code == 200
    assert_problem(pair.report({**payload, "digest": other}, pair.node_key), 409, "ACCESS_EVENT_MISMATCH")
    first = pair.report(payload, pair.node_key)
    assert (first.status_code, first.json()) == (201, {"eventId": payload["eventId"], "stored": True})
    assert [e["reportedBy"] for e in pair.holder_log(share)] == ["广东省验证节点"]


def test_a_trusted_node_cannot_write_looks_it_never_made_into_a_holder_s_log(pair: Pair) -> None:
    """Review: 浙江 took a report of a look at any of its shares from any node it trusts. Now only
    from the node that fetched the share: 广东 verified it (its fetch binds it); 上海, trusted by
    浙江 too, forges a look by a bank of its own at that share and is refused, told only what it
    would be told of a share 浙江 does not keep."""
    [shanghai] = pair.origin.register(("上海市验证节点", "310000", "node"))
    share = pair.share()
    pair.verify(share)  # 广东's bank: 广东 fetched the disclosure with its key
    [honest] = wait_for(lambda: pair.holder_log(share), 30, what="for 广东's report at 浙江")
    forged = {
        "eventId": uuid.uuid4().hex, "at": dt.datetime.now(dt.UTC).isoformat(), "organisation": "上海某银行",
        "organisationRegion": "310100", "purpose": "贷款审查", "fields": SHARED_FIELDS, "verdict": "VALID",
        "reason": None, "channel": "api", "shareTokenHash": token_hash(share), "digest": share["digest"],
        "identifier": None,
    }  # fmt: skip
    refused = pair.report(forged, shanghai)
    assert_problem(refused, 404, "SHARE_NOT_FOUND")
    unknown = pair.report({**forged, "shareTokenHash": "0" * 64}, shanghai)
    assert refused.json() == unknown.json()  # the same answer: nothing says the share exists
    assert pair.stored(forged["eventId"]) == 0
    assert [e["reportedBy"] for e in pair.holder_log(share)] == [honest["reportedBy"]] == ["广东省验证节点"]
