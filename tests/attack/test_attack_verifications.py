"""Attacks on the verifier's hot route (`POST /v1/verifications`, its orjson fast path past the
text guard) and on what every verification writes: the access log. A node's app in-process (no
chain: a verification that cannot read one is ERROR, and is logged all the same), on SQLite and
on PostgreSQL (ECERT_TEST_POSTGRES_URL, as `scripts/test.sh` sets it).

The access log is written in batches and a batch the database refuses stays queued for the next
flush (`verifier.access_log.AccessRecorder.flush`): one entry PostgreSQL cannot store holds back
every entry after it, for good. Whatever a verification logs must therefore fit its column."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the helpers of tests/unit
sys.path.insert(0, str(Path(__file__).parents[1]))

from databases import postgres_database
from test_wallet_app import ALICE, packages

from registry.certificate.canonical import FieldLeaf
from registry.certificate.presentation import Presentation
from registry.workspace import Workspace
from verifier.api.app import create_app
from verifier.models import AccessEntry
from verifier.runtime import VerifierRuntime
from verifier.service import VerificationService
from verifier.settings import VerifierSettings

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL")


class Http:
    """The app in-process (an ASGI transport; its errors answered, not raised)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=("198.51.100.7", 4000)
        )

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport, base_url="http://node.test") as client:
                return await client.request(method, path, **kw)

        return asyncio.run(send())


@dataclass
class Node:
    http: Http
    rt: VerifierRuntime
    bank: str
    package: Presentation

    def verify(self, presentation: Presentation | dict[str, Any], purpose: str = "开户") -> httpx.Response:
        package = presentation if isinstance(presentation, dict) else presentation.to_json()
        return self.http.request("POST", "/v1/verifications", headers={"Authorization": f"Bearer {self.bank}"},
                                 json={"package": package, "purpose": purpose})  # fmt: skip

    def logged(self) -> int:
        """Entries in the access log table, once everything queued was written (or tried)."""
        with contextlib.suppress(Exception):  # the batch stays queued: what the test shows
            self.rt.access_log.flush()
        with self.rt.sessions() as session:
            return int(session.scalar(select(func.count(AccessEntry.id))) or 0)


def _node(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / "home"))
    settings = VerifierSettings(region="330000", database_url=database_url, public_url="http://node.test")
    rt = VerifierRuntime.open(Workspace(), settings)
    bank = rt.organisations.add("杭州银行", "330100", "bank")[1]
    # the node's service without its chain checks (no chain here): each verification is still
    # signed and logged, which is what is attacked
    rt.__dict__["service"] = VerificationService(
        None, checks=(), receipts=rt.receipts, access_log=rt.access_log, region="330000", chain_id=31337
    )
    [package] = packages(("王小丽", ALICE))
    try:
        yield Node(Http(create_app(rt)), rt, bank, package)
    finally:
        rt.close()


@pytest.fixture
def sqlite_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    yield from _node(f"sqlite:///{tmp_path / 'node.sqlite'}", tmp_path, monkeypatch)


@pytest.fixture
def pg_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    assert POSTGRES_URL
    with postgres_database(POSTGRES_URL) as url:
        yield from _node(url, tmp_path, monkeypatch)


def with_identifier(presentation: Presentation, identifier: str) -> Presentation:
    leaves = tuple(
        FieldLeaf(leaf.salt, leaf.path, f'"{identifier}"') if leaf.path == "identifier" else leaf
        for leaf in presentation.leaves
    )
    return dataclasses.replace(presentation, leaves=leaves)


# ─── one request, and the node's access log stops (PostgreSQL) ───────────────────────────────


@needs_postgres
def test_a_long_identifier_does_not_stop_the_access_log(pg_node: Node) -> None:
    assert pg_node.verify(pg_node.package).status_code in (200, 503)  # 503: ERROR, no chain here
    assert pg_node.logged() == 1
    pg_node.verify(with_identifier(pg_node.package, "W" * 500))
    assert pg_node.verify(pg_node.package).status_code in (200, 503)  # 503: ERROR, no chain here
    assert pg_node.logged() >= 2  # the honest verification after it is in the log


@needs_postgres
def test_a_huge_batch_index_does_not_stop_the_access_log(pg_node: Node) -> None:
    assert pg_node.verify(pg_node.package).status_code in (200, 503)  # 503: ERROR, no chain here
    assert pg_node.logged() == 1
    pg_node.verify(dataclasses.replace(pg_node.package, batch_index=2**31))
    assert pg_node.verify(pg_node.package).status_code in (200, 503)  # 503: ERROR, no chain here
    assert pg_node.logged() >= 2


@needs_postgres
def test_an_anonymous_verification_link_cannot_stop_the_access_log(pg_node: Node) -> None:
    for poisoned in (with_identifier(pg_node.package, "W" * 500),
                     dataclasses.replace(pg_node.package, batch_index=2**40)):  # fmt: skip
        visit = pg_node.http.request("POST", "/v", data={"code": poisoned.to_ec1(), "purpose": "看看"})
        assert visit.status_code in (200, 503), visit.text[:300]  # the verdict page
    assert pg_node.verify(pg_node.package).status_code in (200, 503)  # 503: ERROR, no chain here
    assert pg_node.logged() >= 1
