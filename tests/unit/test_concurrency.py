"""Limits that must hold when requests arrive at once, on SQLite and on PostgreSQL (when
ECERT_TEST_POSTGRES_URL is set): a single-use share serves its fields once, and the wallet's
throttles count an attempt before the work they guard. Also what the node logs when someone opens
a share link with no API key, and that failed sign-ins lock out a pair, never the holder."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from databases import postgres_database
from fastapi import FastAPI
from test_wallet_app import ALICE, BOB, packages

from registry.chain.runner import free_port
from registry.crypto import DataCipher
from registry.database import make_engine, sessions
from registry.errors import EcertError
from registry.problems import RateLimited
from verifier.access_log import AccessLog
from verifier.api import pages
from verifier.db import migrate as migrate_verifier
from verifier.orgs import Organisations
from verifier.receipts import ReceiptSigner
from verifier.service import VerificationService
from verifier.shares import Shares
from wallet.db import migrate as migrate_wallet
from wallet.holders import Holders, HolderView
from wallet.services import IssuerClient
from wallet.settings import WalletSettings
from wallet.throttle import Throttle
from wallet.vault import Vault

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
WALLET = 1  # the id of the one organisation `node_shares` registers
PASSWORD = "correct horse 42"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
        return
    with postgres_database(POSTGRES_URL) as url:
        yield url


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` for i < count in `count` threads released together; each result or exception."""
    start = threading.Barrier(count)

    def one(i: int) -> Any:
        start.wait()
        try:
            return work(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


# ─── shares at the verifier node ─────────────────────────────────────────────────────────


def slow_clock() -> dt.datetime:
    """Now, a few milliseconds late: a read and the write that follows it drift apart, as they
    do on a busy node (a check-then-write race shows every time, not once in a while)."""
    time.sleep(0.005)
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def node_shares(database_url: str) -> Iterator[Shares]:
    engine = make_engine(database_url)
    migrate_verifier(engine)
    made, _ = Organisations(sessions(engine), rate_per_min=60).add("浙里办", "330000", "wallet")
    assert made == WALLET  # the wallet that makes the shares
    yield Shares(sessions(engine), secrets.token_bytes(32), secrets.token_bytes(32), clock=slow_clock)
    engine.dispose()


def test_50_parallel_opens_of_a_single_use_share_serve_its_fields_exactly_once(node_shares: Shares) -> None:
    [package] = packages(("王小丽", ALICE))
    share, token = node_shares.create(WALLET, "h-1", package.disclose(["holder.name"]), purpose="租房", lifetime=dt.timedelta(hours=1),
                                      single_use=True)  # fmt: skip
    opened = at_once(50, lambda _: node_shares.open(token))
    errors = [o for o in opened if isinstance(o, Exception)]
    assert not errors, errors[:3]  # every opening is answered: the fields, or "used"
    assert sum(o.presentation is not None for o in opened) == 1
    assert {o.problem for o in opened if o.presentation is None} == {"SHARE_USED"}
    assert node_shares.get(WALLET, "h-1", share.id).used and node_shares.open(token).presentation is None


def test_a_reusable_share_serves_every_parallel_open(node_shares: Shares) -> None:
    [package] = packages(("王小丽", ALICE))
    _, token = node_shares.create(
        WALLET, "h-1", package.disclose(["holder.name"]), purpose="", lifetime=dt.timedelta(hours=1)
    )
    assert all(o.presentation is not None for o in at_once(10, lambda _: node_shares.open(token)))


def test_an_anonymous_visitor_s_purpose_is_logged_as_their_claim_with_network_and_browser(
    tmp_path: Path,
) -> None:
    """Opened with no API key and `?purpose=…`: the entry keeps the holder's own purpose, and the
    visitor's words apart (claimedPurpose), with the visitor's /24 and User-Agent."""
    engine = make_engine(f"sqlite:///{tmp_path / 'node.sqlite'}")
    migrate_verifier(engine)
    made = sessions(engine)
    log = AccessLog(made, flush_s=3600)
    shares = Shares(made, secrets.token_bytes(32), secrets.token_bytes(32))
    wallet, _ = Organisations(made, rate_per_min=60).add("浙里办", "330000", "wallet")
    service = VerificationService(None, checks=(), receipts=ReceiptSigner(Ed25519PrivateKey.generate()), access_log=log,
                                  region="330000", chain_id=31337)  # fmt: skip
    app = FastAPI()
    app.include_router(pages.router)
    app.state.runtime = SimpleNamespace(shares=shares, service=service)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.01)
        [package] = packages(("王小丽", ALICE))
        share, token = shares.create(
            wallet, "h-1", package.disclose(["holder.name"]), purpose="租房", lifetime=dt.timedelta(hours=1)
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            client.get(
                f"/s/{token}",
                params={"purpose": "公安机关调查，请配合"},
                headers={"User-Agent": "Mallory/1.0"},
            )
        [entry] = log.entries(share_ids=[share.id])
    finally:
        server.should_exit = True
        thread.join(5)
        log.close()
        engine.dispose()
    assert entry["anonymous"] is True and entry["region"] == ""
    assert entry["purpose"] == "租房"  # the holder's own words, never the visitor's
    assert entry["claimedPurpose"] == "公安机关调查，请配合"
    assert (entry["ipPrefix"], entry["userAgent"]) == ("127.0.0.0/24", "Mallory/1.0")
    assert dt.datetime.fromisoformat(entry["at"]).tzinfo is not None


# ─── the wallet's throttles ──────────────────────────────────────────────────────────────


class Wallet:
    def __init__(
        self,
        database_url: str,
        issuer: Callable[[httpx.Request], httpx.Response] | None = None,
        **limits: int,
    ) -> None:
        self.engine = make_engine(database_url)
        migrate_wallet(self.engine)
        made = sessions(self.engine)
        self.settings = WalletSettings(password_scrypt_n=4096, **limits)
        self.throttle = Throttle(made, secrets.token_bytes(32))
        self.holders = Holders(
            made, DataCipher(secrets.token_bytes(32)), secrets.token_bytes(32), self.throttle, self.settings
        )
        self.issuer = IssuerClient(
            "http://issuer",
            timeout_s=10,
            transport=httpx.MockTransport(issuer or (lambda r: httpx.Response(500))),
        )
        self.vault = Vault(made, DataCipher(secrets.token_bytes(32)), self.issuer, None, self.throttle,  # type: ignore[arg-type]
                           claim_max_failures=self.settings.claim_max_failures, status_cache_s=0)  # fmt: skip

    def close(self) -> None:
        self.issuer.close()
        self.engine.dispose()


def test_40_parallel_wrong_passwords_against_one_account_check_at_most_the_limit(database_url: str) -> None:
    wallet = Wallet(database_url, login_max_failures=5)
    try:
        wallet.holders.register("王小丽", ALICE, PASSWORD, ip="198.51.100.1")
        answers = at_once(
            40, lambda i: wallet.holders.authenticate(ALICE, f"wrong password {i}", ip="203.0.113.9")
        )
        codes = [a.code if isinstance(a, EcertError) else repr(a) for a in answers]
        assert codes.count("LOGIN_FAILED") <= 5 and set(codes) <= {"LOGIN_FAILED", "RATE_LIMITED"}, codes
        with pytest.raises(RateLimited):  # the pair waits, even with the right password
            wallet.holders.authenticate(ALICE, PASSWORD, ip="203.0.113.9")
    finally:
        wallet.close()


def test_30_parallel_claim_guesses_reach_the_issuer_at_most_the_limit(database_url: str) -> None:
    asked, lock = [], threading.Lock()

    def issuer(request: httpx.Request) -> httpx.Response:
        with lock:
            asked.append(request)
        time.sleep(0.02)  # the issuer takes its time: the guesses overlap
        return httpx.Response(
            404, json={"code": "CLAIM_INVALID", "detail": "Unknown or already used claim code"}
        )

    wallet = Wallet(database_url, issuer, claim_max_failures=4)
    try:
        holder = HolderView(1, "ref-1", "王小丽", ALICE, "zh", False)
        answers = at_once(30, lambda i: wallet.vault.claim(holder, "ABCD-EFGH-JKLM"))
        codes = [a.code if isinstance(a, EcertError) else repr(a) for a in answers]
        assert (
            len(asked) <= 4
            and codes.count("CLAIM_INVALID") == len(asked)
            and set(codes) <= {"CLAIM_INVALID", "RATE_LIMITED"}
        ), codes
    finally:
        wallet.close()


def test_a_claim_the_issuer_could_not_answer_is_not_counted(database_url: str) -> None:
    wallet = Wallet(database_url, lambda r: httpx.Response(503, json={"code": "DOWN"}), claim_max_failures=2)
    try:
        holder = HolderView(1, "ref-1", "王小丽", ALICE, "zh", False)
        for _ in range(4):
            with pytest.raises(EcertError) as raised:
                wallet.vault.claim(holder, "ABCD-EFGH-JKLM")
            assert raised.value.code != "RATE_LIMITED"
    finally:
        wallet.close()


def test_1000_failures_by_someone_who_knows_the_id_number_do_not_lock_the_holder_out(
    database_url: str,
) -> None:
    """Back-off per account and address pair (and per address), never a lock on the account."""
    wallet = Wallet(database_url, login_max_failures=5, login_max_failures_per_ip=20)
    try:
        wallet.holders.register("王小丽", ALICE, PASSWORD, ip="198.51.100.1")
        wallet.holders.register("王大明", BOB, PASSWORD, ip="198.51.100.1")
        answers = []
        for attacker in range(50):  # 50 addresses × 20 tries: 1,000 failures
            for i in range(20):
                try:
                    wallet.holders.authenticate(ALICE, f"guess {i}", ip=f"203.0.113.{attacker}")
                except EcertError as exc:
                    answers.append(exc.code)
        assert len(answers) == 1000 and set(answers) == {"LOGIN_FAILED", "RATE_LIMITED"}
        assert answers.count("LOGIN_FAILED") == 50 * 5
        assert (
            wallet.holders.authenticate(ALICE, PASSWORD, ip="198.51.100.77").id_number == ALICE
        )  # the holder, elsewhere
        spray = []
        for i in range(21):  # one address trying many accounts waits after 20 failures
            try:
                wallet.holders.authenticate(f"sprayed-{i}", "guess", ip="192.0.2.1")
            except EcertError as exc:
                spray.append(exc.code)
        assert spray == ["LOGIN_FAILED"] * 20 + ["RATE_LIMITED"]
        with pytest.raises(RateLimited):  # a new address in an attacker's IPv6 /64 is the same address
            for i in range(6):
                try:
                    wallet.holders.authenticate(BOB, "guess", ip=f"2001:db8:1:2::{i + 1:x}")
                except EcertError as exc:
                    if exc.code == "RATE_LIMITED":
                        raise
        assert wallet.holders.authenticate(BOB, PASSWORD, ip="2001:db8:1:3::1").id_number == BOB
    finally:
        wallet.close()
