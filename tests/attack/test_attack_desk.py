"""Attacks on the verifier's front desk and share pages (`verifier/api/desk.py`,
`verifier/api/pages.py`): a node's app in-process on SQLite (no chain needed: none of these
refusals reads one)."""

from __future__ import annotations

import asyncio
import sys
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
    package: Presentation

    def request(
        self, method: str, path: str, cookies: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://node.test", cookies=cookies
            ) as client:
                return await client.request(method, path, **kw)

        return asyncio.run(send())


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / "home"))
    settings = VerifierSettings(
        region="330000", database_url=f"sqlite:///{tmp_path / 'node.sqlite'}", public_url="http://node.test"
    )
    rt = VerifierRuntime.open(Workspace(), settings)
    wallet = rt.organisations.add("浙里办", "330000", "wallet")[1]
    [package] = packages(("王小丽", ALICE))
    try:
        yield Node(create_app(rt), wallet, package)
    finally:
        rt.close()


def test_a_non_ascii_csrf_token_at_the_desk_is_a_403(node: Node) -> None:
    page = node.request("GET", "/desk")
    pre = page.cookies.get("desk_pre")
    assert pre
    answer = node.request("POST", "/desk/login", cookies={"desk_pre": pre},
                          data={"csrf_token": "é", "username": "clerk", "password": "x" * 12, "code": "123456"})  # fmt: skip
    assert answer.status_code == 403, answer.status_code


def test_a_non_ascii_dynamic_code_on_a_share_link_is_a_404(node: Node) -> None:
    made = node.request("POST", "/v1/shares", headers={"Authorization": f"Bearer {node.wallet}"}, json={
        "holderRef": "h-1", "presentation": node.package.disclose(["holder.name"]).to_json(), "purpose": "租房",
        "expiresInMinutes": 60, "dynamic": True})  # fmt: skip
    assert made.status_code == 201, made.text
    answer = node.request("GET", f"/s/{made.json()['token']}", params={"c": "é"})
    assert answer.status_code == 404, answer.status_code
