"""Re-check subscriptions (issue 11, point 12), over real HTTP: a bank verifies a certificate at an
`ecert serve verifier` process, subscribes to it, and the agency changes its status on the anvil
chain (`ecert status set`); a webhook receiver in this test (a real HTTP server, which
deduplicates nothing) gets the node's signed notifications — once per change, in order, after
its own downtime, and after the node was killed in the middle of a post.

The node promises at-least-once delivery with a stable event id (`verifier.webhooks`): every
test but the kill sees exactly one post per change; the kill test sees the post the node could
not know was taken sent again, with the same event id and body, and exactly one event id.
Runs on SQLite and, with ECERT_TEST_POSTGRES_URL, on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from databases import postgres_database
from service_process import wait_for
from verifier_stack import (
    AGENCY_ZJ,
    BUSINESS_LICENCE,
    Issued,
    StackHome,
    VerifierNode,
    assert_problem,
    records,
)

from registry.chain.runner import free_port

pytestmark = pytest.mark.chain

MAX_ATTEMPTS = 4
TIMEOUT_S = 3  # the node holds a post it died in for 2 * 3 + 5 s, then sends it again


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers["x-ecert-event-id"]

    def json(self) -> dict[str, Any]:
        notification: dict[str, Any] = orjson.loads(self.body)
        return notification


@dataclass
class Receiver:
    """A bank's webhook endpoint. By path: `/ok/…` answers 200; `/flaky/…` 503 to its first two
    posts; `/down/…` 503 until `up(path)`; `/stall/…` holds its first post until `release`."""

    url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    posts: list[Post] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _up: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.posts.append(
                        Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    seen = sum(p.path == self.path for p in receiver.posts)
                status = 200
                if self.path.startswith("/flaky/") and seen <= 2:
                    status = 503
                if self.path.startswith("/down/") and self.path not in receiver._up:
                    status = 503
                if self.path.startswith("/stall/") and seen == 1:
                    receiver.stalled.set()
                    receiver.release.wait(60)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", int(self.url.rsplit(":", 1)[1])), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()
        return server

    def up(self, path: str) -> None:
        self._up.add(path)

    def at(self, path: str) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.path == path]


@dataclass
class Stack:
    home: StackHome
    node: VerifierNode
    receiver: Receiver
    issued: Issued
    bank: str
    other_bank: str
    wallet: str
    used: int = 0

    def certificate(self) -> int:
        """A certificate no test used yet, verified by the bank: its number in `issued`."""
        i, self.used = self.used, self.used + 1
        with self.node.client(self.bank) as bank:
            answer = bank.post(
                "/v1/verifications", json={"package": self.issued.package(i), "purpose": "贷后复查"}
            )
        assert answer.status_code == 200 and answer.json()["verdict"] == "VALID", answer.text
        return i

    def digest(self, i: int) -> str:
        digest: str = self.issued.package(i)["digest"]
        return digest

    def subscribe(self, i: int, path: str | None, key: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"digest": self.digest(i), **({"url": self.receiver.url + path} if path else {}), **extra}
        with self.node.client(key or self.bank) as bank:
            answer = bank.post("/v1/subscriptions", json=body)
        assert answer.status_code == 201, answer.text
        subscription: dict[str, Any] = answer.json()
        return subscription

    def notifications(self, key: str | None = None, after: str = "0", limit: int = 500) -> dict[str, Any]:
        with self.node.client(key or self.bank) as bank:
            answer = bank.get("/v1/notifications", params={"after": after, "limit": limit})
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page

    def of(self, subscription: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
        return [n for n in self.notifications(key)["items"] if n["subscriptionId"] == subscription["id"]]

    def settled(self, subscription: dict[str, Any], count: int) -> list[dict[str, Any]]:
        """Once the node has made `count` notifications of the subscription and none is pending."""
        return wait_for(
            lambda: len(n := self.of(subscription)) == count
            and all(x["delivery"]["state"] != "pending" for x in n) and n,
            timeout_s=60, what=f"{count} settled notification(s)",
        )  # fmt: skip


def signed(post: Post, secret: str) -> bool:
    """The receiver's check of `X-Ecert-Signature: t=…,v1=…` (HMAC-SHA256 of "t.body")."""
    parts = dict(item.split("=", 1) for item in post.headers["x-ecert-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as exits:
        settings = {
            "webhook_allow_http": "true", "webhook_retry_base_s": "0.2", "webhook_retry_max_s": "0.5",
            "webhook_max_attempts": str(MAX_ATTEMPTS), "webhook_timeout_s": str(TIMEOUT_S),
        }  # fmt: skip
        if request.param == "postgresql":
            admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
            if not admin:
                pytest.skip("ECERT_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
            settings["database_url"] = exits.enter_context(postgres_database(admin))
        home = StackHome(tmp_path_factory.mktemp(f"subscriptions-{request.param}"))
        exits.callback(home.tear_down)
        home.set_up(authorities=[("330000", "浙江省数据局")])
        issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(8), "licences")
        receiver = Receiver()
        server = receiver.start()
        exits.callback(server.server_close)
        exits.callback(server.shutdown)
        exits.callback(receiver.release.set)
        node = VerifierNode(home, "330000", **settings)
        bank, other_bank, wallet = node.register(
            ("杭州银行", "330100", "bank"), ("宁波银行", "330200", "bank"), ("浙里办", "330000", "wallet")
        )
        exits.callback(node.stop)
        node.start()
        yield Stack(home, node, receiver, issued, bank, other_bank, wallet)


def test_only_a_bank_or_agency_that_verified_the_certificate_subscribes(stack: Stack) -> None:
    i = stack.certificate()
    body = {"digest": stack.digest(i)}
    with stack.node.client() as anonymous:
        assert_problem(anonymous.post("/v1/subscriptions", json=body), 401, "AUTH_REQUIRED")
        assert_problem(anonymous.get("/v1/notifications"), 401, "AUTH_REQUIRED")
    with stack.node.client(stack.wallet) as wallet:
        assert_problem(wallet.post("/v1/subscriptions", json=body), 403, "SCOPE_MISSING")
        assert_problem(wallet.get("/v1/subscriptions"), 403, "SCOPE_MISSING")
    with stack.node.client(stack.other_bank) as other:  # it never verified this certificate here
        assert_problem(other.post("/v1/subscriptions", json=body), 403, "SUBSCRIPTION_UNVERIFIED")
    with stack.node.client(stack.bank) as bank:
        assert_problem(bank.post("/v1/subscriptions", json={**body, "url": "ftp://bank.example/hook"}), 422,
                       "WEBHOOK_URL_INVALID")  # fmt: skip
        assert_problem(bank.get("/v1/notifications", params={"after": "x"}), 422, "CURSOR_INVALID")

    mine = stack.subscribe(i, "/ok/authorisation")
    assert mine["secret"].startswith("whsec_") and mine["certificate"]["digest"] == stack.digest(i)
    assert mine["certificate"]["root"] == stack.issued.package(i)["batch"]["root"]
    with stack.node.client(stack.bank) as bank:
        listed = bank.get("/v1/subscriptions").json()
        assert mine["id"] in [s["id"] for s in listed] and all("secret" not in s for s in listed)
    with stack.node.client(stack.other_bank) as other:
        assert mine["id"] not in [s["id"] for s in other.get("/v1/subscriptions").json()]
        for answer in (
            other.get(f"/v1/subscriptions/{mine['id']}"),
            other.delete(f"/v1/subscriptions/{mine['id']}"),
            other.get(f"/v1/subscriptions/{mine['id']}/dead-letters"),
        ):
            assert_problem(answer, 404, "SUBSCRIPTION_NOT_FOUND")
    with stack.node.client(stack.bank) as bank:
        ended = bank.delete(f"/v1/subscriptions/{mine['id']}")
        assert ended.status_code == 200 and ended.json()["id"] == mine["id"]
        assert_problem(bank.get(f"/v1/subscriptions/{mine['id']}"), 404, "SUBSCRIPTION_NOT_FOUND")


def test_a_revocation_is_one_signed_webhook(stack: Stack) -> None:
    i = stack.certificate()
    subscription = stack.subscribe(i, "/ok/revoke")
    block = stack.home.set_status(stack.issued.identifier(i), "revoked", 7)
    wait_for(lambda: stack.receiver.at("/ok/revoke"), timeout_s=30, what="the webhook")
    stack.settled(subscription, 1)
    [post] = stack.receiver.at("/ok/revoke")
    assert signed(post, subscription["secret"]) and not signed(post, "whsec_another")
    notification = post.json()
    assert (
        post.event_id == notification["eventId"]
        and post.headers["x-ecert-subscription"] == subscription["id"]
    )
    assert notification["event"] == "revoked" and notification["status"] == "revoked"
    assert notification["reason"] == "07" and notification["block"] == block
    assert notification["certificate"] == subscription["certificate"]


def test_a_suspension_then_a_reinstatement_are_two_notifications_in_order(stack: Stack) -> None:
    i = stack.certificate()
    subscription = stack.subscribe(i, "/ok/suspend")
    stack.home.set_status(stack.issued.identifier(i), "suspended", 2)
    stack.home.set_status(stack.issued.identifier(i), "active", 1)
    stack.settled(subscription, 2)
    posts = stack.receiver.at("/ok/suspend")
    assert [p.json()["event"] for p in posts] == ["suspended", "reinstated"]
    assert [p.json()["status"] for p in posts] == ["suspended", "active"]
    assert all(signed(p, subscription["secret"]) for p in posts) and len({p.event_id for p in posts}) == 2


def test_a_receiver_down_for_a_while_gets_the_notification_once_it_is_back(stack: Stack) -> None:
    i = stack.certificate()
    subscription = stack.subscribe(i, "/flaky/revoke")
    stack.home.set_status(stack.issued.identifier(i), "revoked", 3)
    [made] = stack.settled(subscription, 1)
    assert made["delivery"] == {"state": "delivered", "attempts": 3}
    posts = stack.receiver.at("/flaky/revoke")
    assert len(posts) == 3 and len({p.event_id for p in posts}) == 1  # two 503s, then taken once


def test_a_notification_the_receiver_never_takes_is_a_dead_letter_and_can_be_redelivered(
    stack: Stack,
) -> None:
    i = stack.certificate()
    subscription = stack.subscribe(i, "/down/revoke")
    stack.home.set_status(stack.issued.identifier(i), "revoked", 7)
    [made] = stack.settled(subscription, 1)
    assert made["delivery"] == {"state": "failed", "attempts": MAX_ATTEMPTS}
    assert len(stack.receiver.at("/down/revoke")) == MAX_ATTEMPTS
    with stack.node.client(stack.bank) as bank:
        [dead] = bank.get(f"/v1/subscriptions/{subscription['id']}/dead-letters").json()
        assert dead["eventId"] == made["eventId"] and dead["attempts"] == MAX_ATTEMPTS
        assert dead["lastError"].startswith("GAVE_UP") and dead["notification"]["event"] == "revoked"
        stack.receiver.up("/down/revoke")
        again = bank.post(f"/v1/subscriptions/{subscription['id']}/dead-letters/{made['eventId']}/redeliver")
        assert again.status_code == 200, again.text
        assert_problem(
            bank.post(f"/v1/subscriptions/{subscription['id']}/dead-letters/{made['eventId']}/redeliver"), 404,
            "NOTIFICATION_NOT_FOUND",
        )  # fmt: skip
    [made] = stack.settled(subscription, 1)
    assert made["delivery"]["state"] == "delivered"
    posts = stack.receiver.at("/down/revoke")
    assert len(posts) == MAX_ATTEMPTS + 1 and {p.event_id for p in posts} == {made["eventId"]}
    with stack.node.client(stack.bank) as bank:
        assert bank.get(f"/v1/subscriptions/{subscription['id']}/dead-letters").json() == []


def test_the_pull_endpoint_pages_the_same_notifications_with_a_cursor(stack: Stack) -> None:
    puller = stack.node.register(("温州银行", "330300", "bank"))[0]
    i = stack.certificate()
    with stack.node.client(puller) as bank:  # the puller verifies it too
        assert (
            bank.post(
                "/v1/verifications", json={"package": stack.issued.package(i), "purpose": "复查"}
            ).status_code
            == 200
        )
    webhook = stack.subscribe(i, "/ok/pull")
    pulled = stack.subscribe(i, None, key=puller, events=["suspended", "reinstated"])
    assert "secret" not in pulled
    stack.home.set_status(stack.issued.identifier(i), "suspended", 2)
    stack.home.set_status(stack.issued.identifier(i), "active", 1)
    stack.home.set_status(stack.issued.identifier(i), "revoked", 7)  # not among the puller's events
    stack.settled(webhook, 3)
    wait_for(
        lambda: len(stack.notifications(puller)["items"]) == 2, timeout_s=30, what="two pulled notifications"
    )
    first = stack.notifications(puller, limit=1)
    second = stack.notifications(puller, after=first["next"], limit=1)
    rest = stack.notifications(puller, after=second["next"])
    assert rest == {"items": [], "next": second["next"]}
    events = [first["items"][0], second["items"][0]]
    assert [n["event"] for n in events] == ["suspended", "reinstated"]
    assert all(n["delivery"]["state"] == "pull" for n in events)
    webhook_posts = [p.json() for p in stack.receiver.at("/ok/pull")]
    assert [n["event"] for n in webhook_posts] == ["suspended", "reinstated", "revoked"]
    for pulled_one, posted in zip(events, webhook_posts, strict=False):
        assert {k: pulled_one[k] for k in ("event", "block", "txHash", "status", "certificate")} == {
            k: posted[k] for k in ("event", "block", "txHash", "status", "certificate")
        }
    assert stack.notifications(stack.other_bank)["items"] == []  # org-scoped


def test_a_node_killed_mid_delivery_sends_the_same_event_again_after_its_restart(stack: Stack) -> None:
    i = stack.certificate()
    subscription = stack.subscribe(i, "/stall/revoke")
    stack.home.set_status(stack.issued.identifier(i), "revoked", 7)
    assert stack.receiver.stalled.wait(30), "the node never posted"
    process = stack.node.process
    assert process is not None
    process.kill()  # SIGKILL while the receiver holds the post: the node never learns it was taken
    process.wait(10)
    stack.receiver.release.set()
    stack.node.start()
    [made] = stack.settled(subscription, 1)
    assert made["delivery"] == {"state": "delivered", "attempts": 2}
    posts = stack.receiver.at("/stall/revoke")
    assert len(posts) == 2 and posts[0].body == posts[1].body  # sent again, byte for byte
    assert {p.event_id for p in posts} == {made["eventId"]}  # one event: a receiver dedups by its id
    assert all(signed(p, subscription["secret"]) for p in posts)
