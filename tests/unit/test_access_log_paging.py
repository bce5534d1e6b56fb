"""Flooding hides no look (review: the access log returned at most 200 entries, unpaged, so
opening a share 200 times pushed the real looks out of the holder's sight): `GET /v1/access-log`
pages newest first by an opaque `before` cursor (`X-Next-Before`, `Link: rel="next"`), and the
wallet's access-log page follows it ("更早的记录 / Older"), in standard and elder mode, its unread
badge still right. Over real HTTP: a verifier node's app and the wallet's, each served by uvicorn
in a thread (no chain: no route here reads one); the entries written straight into the node's
database, as a flood would leave them. On SQLite, and on PostgreSQL when ECERT_TEST_POSTGRES_URL
is set."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from databases import postgres_database
from sqlalchemy import insert, select
from test_wallet_app import ALICE, csrf, register

from registry.chain.runner import free_port
from registry.settings import Settings
from registry.workspace import Workspace
from verifier.access_log import decode_cursor, encode_cursor
from verifier.api.app import create_app as verifier_app
from verifier.db import make_engine
from verifier.models import AccessEntry, Holding
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings
from wallet.app import create_app as wallet_app
from wallet.models import Holder
from wallet.runtime import WalletRuntime
from wallet.settings import WalletSettings

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
DIGEST = "0x" + "cd" * 32
FLOOD = 250  # looks by the flooder, all newer than the real ones
REAL = [
    "杭州银行",
    "浙江省人民医院",
    "西湖区不动产登记中心",
]  # the oldest three: the looks a flood would hide
START = dt.datetime(2030, 3, 1, 8, 0, tzinfo=dt.UTC)


class Served:
    """An ASGI app served by uvicorn on a free port in a thread."""

    def __init__(self, app: Any) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(app, host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]), log_level="warning",
                                lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@dataclass
class Stack:
    verifier: Served
    wallet: Served
    wallet_key: str
    wallet_org_id: int
    database_url: str
    wallet_rt: WalletRuntime

    def api(self, **params: Any) -> httpx.Response:
        return httpx.get(self.verifier.url + "/v1/access-log", params=params, timeout=10,
                         headers={"Authorization": f"Bearer {self.wallet_key}"})  # fmt: skip

    def holder_ref(self) -> str:
        with self.wallet_rt.sessions() as session:
            return session.scalars(select(Holder.holder_ref)).one()

    def log(self, holder_ref: str, organisation: str, at: dt.datetime, purpose: str = "核验") -> None:
        self.logs(holder_ref, [(organisation, at, purpose)])

    def logs(self, holder_ref: str, looks: list[tuple[str, dt.datetime, str]]) -> None:
        engine = make_engine(self.database_url)
        try:
            with engine.begin() as connection:
                if connection.scalar(select(Holding.digest).where(Holding.holder_ref == holder_ref)) is None:
                    connection.execute(insert(Holding), {"wallet_org_id": self.wallet_org_id, "holder_ref": holder_ref,
                                                         "digest": DIGEST, "created_at": START})  # fmt: skip
                connection.execute(insert(AccessEntry), [
                    {"at": at, "organisation": org, "organisation_region": "330100", "purpose": purpose,
                     "digest": DIGEST, "identifier": None, "share_id": None, "fields": '["holder.name"]',
                     "verdict": "VALID", "reason": None, "channel": "link"}
                    for org, at, purpose in looks
                ])  # fmt: skip
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.sqlite'}"
        return
    with postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def stack(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / "node-home"))
    settings = VerifierSettings(region="330000", database_url=database_url, public_url="http://node.test")
    rt = VerifierRuntime.open(Workspace(), settings)
    wallet_org_id, wallet_key = rt.organisations.add("浙里办", "330000", "wallet")
    verifier = Served(verifier_app(rt))
    wallet_settings = WalletSettings(verifier_url=verifier.url, verifier_key=wallet_key, password_scrypt_n=1024,
                                     status_cache_s=0)  # fmt: skip
    wallet_rt = WalletRuntime.open(wallet_settings, Settings(home=tmp_path / "wallet-home"))
    wallet = Served(wallet_app(wallet_rt))
    try:
        yield Stack(verifier, wallet, wallet_key, wallet_org_id, database_url, wallet_rt)
    finally:
        wallet.close()
        wallet_rt.close()
        verifier.close()
        rt.close()


def flood(stack: Stack, holder_ref: str) -> None:
    """The real looks first (oldest), then `FLOOD` opens of a share by one visitor, a second apart."""
    looks = [(org, START + dt.timedelta(seconds=i), "开户") for i, org in enumerate(REAL)]
    looks += [("刷屏者", START + dt.timedelta(minutes=10, seconds=i), "刷屏") for i in range(FLOOD)]
    stack.logs(holder_ref, looks)


def test_every_look_is_reached_through_the_api_page_by_page_newest_first(stack: Stack) -> None:
    holder_ref = "h-flooded"
    flood(stack, holder_ref)
    first = stack.api(holderRef=holder_ref)
    assert first.status_code == 200, first.text
    assert len(first.json()) == 200 and {e["organisation"] for e in first.json()} == {"刷屏者"}  # as before
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"holderRef": holder_ref, "limit": 70}
    pages = 0
    while True:
        answer = stack.api(**params)
        assert answer.status_code == 200, answer.text
        seen += answer.json()
        pages += 1
        cursor = answer.headers.get("X-Next-Before")
        if cursor is None:
            assert "Link" not in answer.headers
            break
        assert answer.headers["Link"].endswith('>; rel="next"')
        following = httpx.get(stack.verifier.url + answer.headers["Link"][1:].split(">")[0], timeout=10,
                              headers={"Authorization": f"Bearer {stack.wallet_key}"})  # fmt: skip
        assert following.json() == stack.api(**{**params, "before": cursor}).json()  # the Link is that page
        params["before"] = cursor
        if pages == 1:  # a look logged meanwhile is on no older page: the pages do not shift
            stack.log(holder_ref, "新来的银行", START + dt.timedelta(hours=1))
    assert pages == 4 and len(seen) == FLOOD + len(REAL)
    assert [e["organisation"] for e in seen[-3:]] == REAL[::-1]  # the oldest reached, newest first
    ats = [dt.datetime.fromisoformat(e["at"]) for e in seen]
    assert ats == sorted(ats, reverse=True) and len(set(ats)) == len(ats)  # no entry twice, none skipped
    assert stack.api(holderRef=holder_ref, limit=1).json()[0]["organisation"] == "新来的银行"


def test_a_page_s_size_and_cursor_are_checked(stack: Stack) -> None:
    stack.log("h-1", "杭州银行", START)
    for bad in (
        {"limit": 0},
        {"limit": 501},
        {"before": "not-a-cursor"},
        {"before": "MjAzMC0wMy0wMVQwODowMA"},
    ):
        refused = stack.api(holderRef="h-1", **bad)
        assert refused.status_code == 422, (bad, refused.text)
        if "before" in bad:
            assert refused.json()["code"] == "CURSOR_INVALID"
    assert len(stack.api(holderRef="h-1", limit=500).json()) == 1
    # a cursor names a position, not a scope: another holder's cursor reads nothing of theirs
    cursor = encode_cursor(START + dt.timedelta(days=1), 10**9)
    assert decode_cursor(cursor) == (START + dt.timedelta(days=1), 10**9)
    assert [e["organisation"] for e in stack.api(holderRef="h-1", before=cursor).json()] == ["杭州银行"]
    assert stack.api(holderRef="h-other", before=cursor).json() == []


def test_the_openapi_documents_the_paging(stack: Stack) -> None:
    spec = httpx.get(stack.verifier.url + "/openapi.json", timeout=10).json()
    route = spec["paths"]["/v1/access-log"]["get"]
    assert "X-Next-Before" in route["description"] and "before" in route["description"]
    assert {"X-Next-Before", "Link"} <= set(route["responses"]["200"]["headers"])
    params = {p["name"]: p for p in route["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 500 and "before" in params
    assert "CURSOR_INVALID" in route["responses"]["422"]["description"]


def older_link(page: str) -> str | None:
    found = re.search(r'data-action="log-older" rel="next" href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def organisations(page: str) -> list[str]:
    return re.findall(r'<strong class="org">([^<]+)</strong>', page)


@pytest.mark.parametrize("elder", [False, True])
def test_the_holder_pages_back_to_the_oldest_look_in_the_wallet(stack: Stack, elder: bool) -> None:
    with httpx.Client(base_url=stack.wallet.url, timeout=10) as client:
        assert register(client, "王小丽", ALICE).status_code == 303
        if elder:
            client.post("/settings", data={"csrf_token": csrf(client, "/settings"), "elder": "1"})
        holder_ref = stack.holder_ref()
        flood(stack, holder_ref)
        home = client.get("/" if elder else "/certificates").text
        assert 'data-unread="200+"' in home  # the newest page all unread, and more behind it
        page = client.get("/access-log")
        assert page.status_code == 200, page.text
        assert ('class="elder' in page.text) is elder and "更早的记录" in page.text
        shown, link, pages = organisations(page.text), older_link(page.text), 1
        assert "回到最新记录" not in page.text  # the newest page
        assert "data-unread" not in client.get("/" if elder else "/certificates").text  # all seen
        while link:
            page = client.get(link)
            assert page.status_code == 200, page.text
            assert "回到最新记录" in page.text
            shown += organisations(page.text)
            link, pages = older_link(page.text), pages + 1
        assert pages == 6 and len(shown) == FLOOD + len(REAL) and shown[-3:] == REAL[::-1]
        assert (
            "data-unread" not in client.get("/" if elder else "/certificates").text
        )  # an older page moved nothing
        stack.log(holder_ref, "新来的银行", START + dt.timedelta(hours=1))
        assert 'data-unread="1"' in client.get("/" if elder else "/certificates").text
        client.post("/settings", data={"csrf_token": csrf(client, "/settings"), "lang": "en"})
        english = client.get("/access-log").text
        assert "Older" in english and organisations(english)[0] == "新来的银行"
        assert client.get("/access-log", params={"before": "garbage"}).status_code == 422  # told, never a 500
        # the wallet's JSON API pages the same way
        listed, params = [], {}
        while True:
            answer = client.get("/api/v1/access-log", params=params)
            assert answer.status_code == 200, answer.text
            listed += [e["organisation"] for e in answer.json()]
            if "X-Next-Before" not in answer.headers:
                break
            params = {"before": answer.headers["X-Next-Before"]}
        assert len(listed) == FLOOD + len(REAL) + 1 and listed[-3:] == REAL[::-1]
