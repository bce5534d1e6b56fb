"""Attacks on the holder's access log (`verifier/access_log.py`, `verifier/remote_log.py`,
`verifier/api/shares.py`): remote reports from a node that did fetch the share. A node's app
in-process on SQLite (no chain: none of these routes reads one)."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the helpers of tests/unit

from test_wallet_app import ALICE, packages

from registry.certificate.presentation import Presentation
from registry.workspace import Workspace
from verifier.api.app import create_app
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings


@dataclass
class Node:
    app: Any
    wallet: str
    node: str
    package: Presentation

    def request(self, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                return await client.request(method, path, headers=headers, **kw)

        return asyncio.run(send())


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / "home"))
    settings = VerifierSettings(
        region="330000", database_url=f"sqlite:///{tmp_path / 'node.sqlite'}", public_url="http://node.test"
    )
    rt = VerifierRuntime.open(Workspace(), settings)
    wallet = rt.organisations.add("浙里办", "330000", "wallet")[1]
    other = rt.organisations.add("广东省验证节点", "440000", "node")[1]
    [package] = packages(("王小丽", ALICE))
    try:
        yield Node(create_app(rt), wallet, other, package)
    finally:
        rt.close()


def test_a_remote_report_is_dated_within_the_share_s_life(node: Node) -> None:
    made = node.request("POST", "/v1/shares", node.wallet, json={
        "holderRef": "h-1", "presentation": node.package.disclose(["holder.name"]).to_json(), "purpose": "租房",
        "expiresInMinutes": 60})  # fmt: skip
    assert made.status_code == 201, made.text
    share = made.json()
    assert node.request("GET", f"/v1/shares/{share['token']}/presentation", node.node).status_code == 200
    report = {
        "organisation": "广州银行", "organisationRegion": "440100", "purpose": "跨省开户", "fields": ["holder.name"],
        "verdict": "VALID", "channel": "api", "shareTokenHash": hashlib.sha256(share["token"].encode()).hexdigest(),
        "digest": share["digest"],
    }  # fmt: skip
    statuses = [
        node.request("POST", "/v1/access-log/remote", node.node,
                     json={**report, "eventId": uuid.uuid4().hex, "at": at}).status_code
        for at in ("2099-12-31T23:59:59+00:00", "2001-01-01T00:00:00+00:00")
    ]  # fmt: skip
    assert all(s >= 400 for s in statuses), statuses
