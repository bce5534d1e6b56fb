"""Cross-region recognition (跨省互认) and cross-node shares (跨省通办) over real HTTP: three
verifier nodes — 浙江 330000, 上海 310000, 广东 440000 — as separate `ecert serve verifier`
processes over one on-chain registry, each with its policy (verifier/policies/<region>.json):

    330000  every type from every region
    310000  business licences from 330000 and 310000 only
    440000  business licences from every region, no other type
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from verifier_stack import (
    AGENCY_GD,
    AGENCY_ZJ,
    BUSINESS_LICENCE,
    OTHER_TYPE,
    Issued,
    StackHome,
    VerifierNode,
    assert_problem,
    records,
    start_all,
)

from registry.certificate.presentation import Presentation

pytestmark = pytest.mark.chain

REGIONS = ("330000", "310000", "440000")
SHARED_FIELDS = [
    "holder.name",
    "identifier",
    "issuer.code",
    "typeCode",
    "validFrom",
    "validUntil",
]  # the type and agency always come along


@dataclass
class Stack:
    home: StackHome
    nodes: dict[str, VerifierNode]
    banks: dict[str, str]  # region → a bank's key at that node
    wallet: str  # a wallet's key at 330000
    zj: Issued  # business licences of 杭州 (330100)
    zj_other: Issued  # the other type of 杭州, which only 330000 recognises
    gd: Issued  # business licences of 广州 (440100)

    def verify(self, region: str, purpose: str = "跨省开户", **body: Any) -> httpx.Response:
        with self.nodes[region].client(self.banks[region]) as client:
            return client.post("/v1/verifications", json={"purpose": purpose, **body})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = StackHome(tmp_path_factory.mktemp("cross-region"))
    zj, sh, gd = nodes = [VerifierNode(home, region) for region in REGIONS]
    gd.env["ECERT_VERIFIER_TRUSTED_NODES"] = json.dumps([zj.url])
    zj_bank, wallet, node_key = zj.register(
        ("杭州银行", "330100", "bank"), ("浙里办", "330000", "wallet"), ("广东省验证节点", "440000", "node")
    )
    (sh_bank,), (gd_bank,) = (
        sh.register(("上海银行", "310100", "bank")),
        gd.register(("广州银行", "440100", "bank")),
    )
    gd.env["ECERT_VERIFIER_NODE_KEY"] = node_key  # 广东 fetches 浙江's shares with its key there
    try:
        with ThreadPoolExecutor(1) as pool:
            home.deploy()
            started = pool.submit(start_all, nodes)  # they index what follows as it happens
            home.add_parties()
            issued_zj = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(2), "zj")
            issued_other = home.issue(AGENCY_ZJ, OTHER_TYPE, records(1, start=100), "zj-other")
            issued_gd = home.issue(AGENCY_GD, BUSINESS_LICENCE, records(2, town="广州"), "gd")
            started.result()
        for node in nodes:
            node.wait_indexed()
        yield Stack(
            home,
            dict(zip(REGIONS, nodes, strict=False)),
            dict(zip(REGIONS, (zj_bank, sh_bank, gd_bank), strict=False)),
            wallet,
            issued_zj,
            issued_other,
            issued_gd,
        )
    finally:
        for node in nodes:
            node.stop()
        home.tear_down()


def outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["kind"]: (c["outcome"], c["code"]) for c in report["checks"]}


def policy_of(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["kind"] == "policy")


def assert_verdict(response: httpx.Response, verdict: str, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["verdict"], report["reason"]) == (verdict, reason), outcomes(report)
    return report


# ─── one registry, three policies ────────────────────────────────────────────────────────


@pytest.mark.parametrize("region", REGIONS)
def test_every_node_accepts_a_zhejiang_business_licence(stack: Stack, region: str) -> None:
    report = assert_verdict(stack.verify(region, package=stack.zj.package(0)), "VALID")
    assert policy_of(report)["evidence"] == {"node": region, "typeCode": BUSINESS_LICENCE, "region": "330100"}
    assert report["source"] == "index" and report["receipt"]["receipt"]["node"]["region"] == region


@pytest.mark.parametrize("region", ["330000", "440000"])
def test_zhejiang_and_guangdong_accept_a_guangzhou_business_licence(stack: Stack, region: str) -> None:
    report = assert_verdict(stack.verify(region, package=stack.gd.package(0)), "VALID")
    assert policy_of(report)["outcome"] == "VALID" and policy_of(report)["evidence"]["region"] == "440100"


def test_shanghai_does_not_recognise_a_guangzhou_business_licence(stack: Stack) -> None:
    report = assert_verdict(
        stack.verify("310000", package=stack.gd.package(0)), "INVALID", "POLICY_NOT_RECOGNISED"
    )
    policy = policy_of(report)
    assert (policy["outcome"], policy["code"]) == ("INVALID", "POLICY_NOT_RECOGNISED")
    assert (
        BUSINESS_LICENCE in policy["message"]
        and "440100" in policy["message"]
        and "310000" in policy["message"]
    )
    # everything else about the certificate holds: only recognition fails
    assert {kind for kind, (outcome, _) in outcomes(report).items() if outcome == "INVALID"} == {"policy"}
    assert report["receipt"]["receipt"]["reason"] == "POLICY_NOT_RECOGNISED"


@pytest.mark.parametrize(
    ("region", "verdict"), [("330000", "VALID"), ("310000", "INVALID"), ("440000", "INVALID")]
)
def test_a_type_only_zhejiang_recognises(stack: Stack, region: str, verdict: str) -> None:
    reason = None if verdict == "VALID" else "POLICY_NOT_RECOGNISED"
    report = assert_verdict(stack.verify(region, package=stack.zj_other.package(0)), verdict, reason)
    assert policy_of(report)["evidence"]["typeCode"] == OTHER_TYPE
    if verdict == "INVALID":
        assert OTHER_TYPE in policy_of(report)["message"] and "330100" in policy_of(report)["message"]


def test_the_nodes_answer_from_one_registry_with_their_own_receipt_keys(stack: Stack) -> None:
    keys = {region: node.client().get("/v1/receipt-key").json() for region, node in stack.nodes.items()}
    assert len({k["keyId"] for k in keys.values()}) == 3 and [k["region"] for k in keys.values()] == list(
        REGIONS
    )
    receipts = {
        region: stack.verify(region, package=stack.zj.package(1)).json()["receipt"] for region in REGIONS
    }
    assert len({r["receipt"]["chainId"] for r in receipts.values()}) == 1
    assert len({r["receipt"]["requestDigest"] for r in receipts.values()}) == 1  # the same certificate shown
    for region, receipt in receipts.items():
        for other, node in stack.nodes.items():  # each node vouches only for its own receipts
            with node.client() as client:
                assert client.post("/v1/receipts/verify", json=receipt).json() == {"valid": region == other}


# ─── a share made in 浙江, verified in 广东 ───────────────────────────────────────────────


def _share(stack: Stack, package: dict[str, Any], **terms: Any) -> dict[str, Any]:
    disclosure = Presentation.from_json(package).disclose(SHARED_FIELDS)
    with stack.nodes["330000"].client(stack.wallet) as wallet:
        response = wallet.post(
            "/v1/shares",
            json={
                "holderRef": "holder-1",
                "presentation": disclosure.to_json(),
                "purpose": "跨省开户",
                "expiresInMinutes": 60,
                **terms,
            },
        )
    assert response.status_code == 201, response.text
    share = response.json()
    assert share["url"].startswith(stack.nodes["330000"].url + "/s/") and sorted(share["fields"]) == sorted(
        SHARED_FIELDS
    )
    return share


def test_a_share_of_another_node_is_fetched_and_verified_here(stack: Stack) -> None:
    package = stack.zj.package(0)
    share = _share(stack, package)
    report = assert_verdict(stack.verify("440000", shareUrl=share["url"]), "VALID")
    assert outcomes(report)["format"] == ("VALID", "FORMAT_OK")
    assert sorted(next(c for c in report["checks"] if c["kind"] == "format")["evidence"]["fields"]) == sorted(
        SHARED_FIELDS
    )
    assert (
        next(c for c in report["checks"] if c["kind"] == "integrity")["evidence"]["digest"]
        == package["digest"]
    )
    assert report["receipt"]["receipt"]["node"]["region"] == "440000"
    # 广东's own access log has its bank's verification of that digest (the holder's wallet is at 浙江)
    assert share["digest"] == package["digest"]


def test_shares_from_untrusted_nodes_are_refused(stack: Stack) -> None:
    share = _share(stack, stack.zj.package(1))
    assert_problem(stack.verify("310000", shareUrl=share["url"]), 403, "NODE_UNTRUSTED")  # 上海 trusts no one
    foreign = share["url"].replace(stack.nodes["330000"].url, stack.nodes["310000"].url)
    assert_problem(stack.verify("440000", shareUrl=foreign), 403, "NODE_UNTRUSTED")  # 广东 trusts 浙江 only
    assert_problem(
        stack.verify("440000", shareUrl="http://evil.example/s/" + "A" * 32), 403, "NODE_UNTRUSTED"
    )


def test_a_wrong_or_withdrawn_share_is_not_found(stack: Stack) -> None:
    base = stack.nodes["330000"].url
    assert_problem(stack.verify("440000", shareUrl=f"{base}/s/{'A' * 32}"), 404, "SHARE_NOT_FOUND")
    share = _share(stack, stack.zj.package(1))
    with stack.nodes["330000"].client(stack.wallet) as wallet:
        assert (
            wallet.delete(f"/v1/shares/{share['id']}", params={"holderRef": "holder-1"}).json()["withdrawn"]
            is True
        )
    assert_problem(stack.verify("440000", shareUrl=share["url"]), 404, "SHARE_WITHDRAWN")


def test_only_nodes_may_fetch_a_shared_disclosure(stack: Stack) -> None:
    share = _share(stack, stack.zj.package(0))
    for key in (stack.banks["330000"], stack.wallet):  # a wallet's fetch would be unlogged
        with stack.nodes["330000"].client(key) as caller:
            assert_problem(caller.get(f"/v1/shares/{share['token']}/presentation"), 403, "SCOPE_MISSING")
    with stack.nodes["330000"].client() as anonymous:
        assert_problem(anonymous.get(f"/v1/shares/{share['token']}/presentation"), 401, "AUTH_REQUIRED")


def test_a_dynamic_share_is_verified_across_nodes_with_its_current_code_only(stack: Stack) -> None:
    share = _share(stack, stack.zj.package(0), dynamic=True)
    assert_problem(
        stack.verify("440000", shareUrl=share["url"]), 404, "SHARE_CODE_EXPIRED"
    )  # no code: a photo of an old QR
    assert_problem(
        stack.verify("440000", shareUrl=share["url"] + "?c=0123456789abcdef"), 404, "SHARE_CODE_EXPIRED"
    )
    if time.time() % 30 > 24:  # a code lives for its 30-second window: fetch it early in one
        time.sleep(30 - time.time() % 30 + 0.2)
    with stack.nodes["330000"].client(stack.wallet) as wallet:
        current = wallet.get(
            f"/v1/shares/{share['id']}/dynamic-code", params={"holderRef": "holder-1"}
        ).json()["code"]
    assert_verdict(stack.verify("440000", shareUrl=f"{share['url']}?c={current}"), "VALID")


def test_a_single_use_share_serves_one_verification_across_nodes(stack: Stack) -> None:
    share = _share(stack, stack.zj.package(0), singleUse=True)
    assert_verdict(stack.verify("440000", shareUrl=share["url"]), "VALID")
    second = stack.verify("440000", shareUrl=share["url"])
    assert second.status_code == 404 or second.json()["verdict"] == "INVALID"
