"""The verifier node's API over real HTTP: `ecert serve verifier --region 330000` in a subprocess
on a real anvil chain, certificates issued with `ecert issue`, status changed with
`ecert status set`, organisations registered with `ecert verifier org add`, and the chain stopped
with `ecert chain down` (DESIGN.md §5)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from verifier_stack import (
    AGENCY_ZJ,
    AUTHORITIES,
    BUSINESS_LICENCE,
    Issued,
    StackHome,
    VerifierNode,
    add_orgs,
    assert_problem,
    records,
    start_all,
    wait_for,
)

from registry.certificate.links import verify_link
from registry.certificate.presentation import Presentation
from verifier.receipts import digest_request, verify_receipt

pytestmark = pytest.mark.chain

BANK = "某某银行杭州分行"
VALID_CHECKS = [
    "format",
    "integrity",
    "seal",
    "anchor",
    "authority",
    "status",
    "validity",
    "national-seal",
    "freshness",
    "policy",
]
ONLINE_CHECKS = {"anchor", "authority", "status", "policy"}  # the ones needing chain facts
LAST_KNOWN_ACCEPTED_S = 3600  # the tolerant node's policy: last-known answers up to an hour old
VALID_PKG, STATUS_PKG, SPARE_PKG = 0, 1, 2


@dataclass
class Stack:
    home: StackHome
    node: VerifierNode
    limited: VerifierNode  # the same region with its own database and 60 requests/minute per key
    tolerant: VerifierNode  # the same region, its own database, accepting last-known answers
    tolerant_key: str
    issued: Issued
    bank: str
    wallet: str
    limited_keys: list[str]
    other_wallet: str  # another wallet organisation at the same node

    def client(self, key: str | None = None) -> httpx.Client:
        return self.node.client(key or self.bank)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = StackHome(tmp_path_factory.mktemp("verifier-api"))
    node = VerifierNode(home, "330000")
    limited = VerifierNode(
        home, "330000", database_url=f"sqlite:///{home.root / 'limited.sqlite'}", rate_limit_per_min="60"
    )
    limited_keys = limited.register(("甲银行", "330100", "bank"), ("乙银行", "330100", "bank"))
    tolerant_policy = home.root / "tolerant-330000.json"
    tolerant_policy.write_text(
        json.dumps({
            "region": "330000", "acceptLastKnownUpToSeconds": LAST_KNOWN_ACCEPTED_S,
            "recognise": [{"types": ["*"], "regions": ["*"]}],
        })
    )  # fmt: skip
    tolerant = VerifierNode(
        home, "330000", database_url=f"sqlite:///{home.root / 'tolerant.sqlite'}",
        policy_file=str(tolerant_policy),
    )  # fmt: skip
    [tolerant_key] = tolerant.register(("丙银行", "330100", "bank"))
    try:
        with ThreadPoolExecutor(2) as pool:  # organisations need no chain: register them while it is set up
            keys = pool.submit(add_orgs, node, [(BANK, "330100", "bank"), ("浙里办", "330000", "wallet"),
                                                ("粤省事", "440000", "wallet")])  # fmt: skip
            home.deploy()
            started = pool.submit(
                start_all, [node, limited, tolerant]
            )  # they index what follows as it happens
            home.add_parties(authorities=AUTHORITIES[:1])
            issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(3), "zj", qr=True)
            started.result()
            bank, wallet, other_wallet = keys.result()
            made = Stack(
                home, node, limited, tolerant, tolerant_key, issued, bank, wallet, limited_keys, other_wallet
            )
        node.wait_indexed()
        yield made
    finally:
        for running in (node, limited, tolerant):
            running.stop()
        home.tear_down()


def verify(
    stack: Stack, purpose: str = "开立对公账户", key: str | None = None, **body: Any
) -> httpx.Response:
    with stack.client(key) as client:
        return client.post("/v1/verifications", json={"purpose": purpose, **body})


def outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["kind"]: (c["outcome"], c["code"]) for c in report["checks"]}


def assert_valid(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["verdict"], report["reason"]) == ("VALID", None), outcomes(report)
    assert [c["kind"] for c in report["checks"] if c["outcome"] == "VALID"] == VALID_CHECKS
    assert outcomes(report)["share"] == ("SKIPPED", "NOT_APPLICABLE")
    return report


# ─── valid answers and receipts ──────────────────────────────────────────────────────────


def test_a_package_is_valid_from_the_index_with_a_receipt_the_bank_can_check(stack: Stack) -> None:
    package = stack.issued.package(VALID_PKG)
    report = assert_valid(verify(stack, package=package))
    # where the chain facts come from: the index (no RPC), at the block it had reached
    assert report["source"] == "index" and report["block"] >= 1
    anchor = next(c for c in report["checks"] if c["kind"] == "anchor")
    assert anchor["evidence"]["source"] == "index" and anchor["evidence"]["block"] == report["block"]
    assert anchor["evidence"]["root"] == package["batch"]["root"]
    receipt = report["receipt"]
    body = receipt["receipt"]
    assert (body["verdict"], body["reason"], body["source"], body["block"]) == (
        "VALID",
        None,
        "index",
        report["block"],
    )
    assert body["chainId"] == package["registry"]["chainId"] and body["node"]["region"] == "330000"
    assert [(c["kind"], c["outcome"]) for c in body["checks"]] == [
        (c["kind"], c["outcome"]) for c in report["checks"]
    ]
    # the receipt commits to what was shown: the bank recomputes the digest from its package
    assert body["requestDigest"] == "0x" + digest_request(Presentation.from_json(package)).hex()
    with stack.client() as client:
        assert client.post("/v1/receipts/verify", json=receipt).json() == {"valid": True}
        key = client.get("/v1/receipt-key").json()
    assert (
        key["algorithm"] == "Ed25519" and key["region"] == "330000" and key["keyId"] == body["node"]["keyId"]
    )
    assert verify_receipt(receipt, key["publicKeyPem"])


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: r["receipt"].update(verdict="INVALID"), id="verdict"),
        pytest.param(lambda r: r["receipt"].update(reason="CERT_REVOKED"), id="reason"),
        pytest.param(lambda r: r["receipt"].update(block=r["receipt"]["block"] + 1), id="block"),
        pytest.param(lambda r: r["receipt"].update(requestDigest="0x" + "00" * 32), id="request-digest"),
        pytest.param(lambda r: r["receipt"]["checks"][0].update(outcome="INVALID"), id="a-check"),
        pytest.param(lambda r: r["receipt"]["node"].update(region="440000"), id="node"),
        pytest.param(lambda r: r.update(signature=r["signature"][:-4] + "AAA="), id="signature"),
        pytest.param(lambda r: r.update(extra=1), id="extra-key"),
    ],
)
def test_a_receipt_is_tamper_evident(stack: Stack, tamper: Any) -> None:
    receipt = assert_valid(verify(stack, package=stack.issued.package(VALID_PKG)))["receipt"]
    tamper(receipt)
    with stack.client() as client:
        assert client.post("/v1/receipts/verify", json=receipt).json() == {"valid": False}
        pem = client.get("/v1/receipt-key").json()["publicKeyPem"]
    assert not verify_receipt(receipt, pem)


def test_an_ec1_code_is_valid_with_the_same_request_digest_as_its_package(stack: Stack) -> None:
    package = stack.issued.package(VALID_PKG)
    ec1 = Presentation.from_json(package).to_ec1()
    from_ec1 = assert_valid(verify(stack, ec1=ec1))
    from_json = assert_valid(verify(stack, package=package))
    assert from_ec1["receipt"]["receipt"]["requestDigest"] == from_json["receipt"]["receipt"]["requestDigest"]


def _as_photo(png: bytes) -> bytes:
    """The issuer's QR as a phone might send it: scaled up, JPEG."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    picture = picture.resize((picture.width * 3, picture.height * 3), Image.Resampling.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_qr_image_is_decoded_server_side_and_valid(stack: Stack, kind: str) -> None:
    png = stack.issued.qr(VALID_PKG).read_bytes()
    image, media = (png, "image/png") if kind == "png" else (_as_photo(png), "image/jpeg")
    with stack.client() as client:
        response = client.post(
            "/v1/verifications/image",
            files={"file": (f"qr.{kind}", image, media)},
            data={"purpose": "柜台核验"},
        )
    report = assert_valid(response)
    expected = digest_request(Presentation.from_json(stack.issued.package(VALID_PKG)))
    assert report["receipt"]["receipt"]["requestDigest"] == "0x" + expected.hex()


# ─── malformed input: 4xx problems, never 500 ────────────────────────────────────────────

BAD_BODIES = {
    "not-json": (b"{not json", 400, "JSON_INVALID"),
    "a-list": (b"[1, 2]", 422, "REQUEST_INVALID"),
    "no-purpose": ({"ec1": "EC1:0"}, 422, "REQUEST_INVALID"),
    "empty-purpose": ({"ec1": "EC1:0", "purpose": ""}, 422, "REQUEST_INVALID"),
    "nothing-to-verify": ({"purpose": "开户"}, 422, "REQUEST_INVALID"),
    "two-things": ({"purpose": "开户", "ec1": "EC1:0", "shareUrl": "http://x/s/y"}, 422, "REQUEST_INVALID"),
    "bad-ec1": ({"purpose": "开户", "ec1": "EC1:NOT-BASE45-%%%"}, 400, "CERT_MALFORMED"),
    "not-ec1": ({"purpose": "开户", "ec1": "hello"}, 400, "CERT_MALFORMED"),
    "ec1-too-long": ({"purpose": "开户", "ec1": "EC1:" + "A" * 20_000}, 422, "REQUEST_INVALID"),
    "package-not-a-package": ({"purpose": "开户", "package": {"a": 1}}, 422, "CERT_FORMAT"),
    "package-missing-parts": ({"purpose": "开户", "package": {"format": "ecert/1"}}, 400, "CERT_MALFORMED"),
    "bad-at": ({"purpose": "开户", "ec1": "EC1:0", "at": "yesterday"}, 422, "REQUEST_INVALID"),
    "share-url-not-a-link": ({"purpose": "开户", "shareUrl": "ftp://node/x"}, 422, "SHARE_URL_INVALID"),
}


@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_requests_are_problems_with_a_code(stack: Stack, case: tuple[Any, int, str]) -> None:
    body, status, code = case
    with stack.client() as client:
        if isinstance(body, bytes):
            response = client.post(
                "/v1/verifications", content=body, headers={"Content-Type": "application/json"}
            )
        else:
            response = client.post("/v1/verifications", json=body)
    assert_problem(response, status, code)


def test_the_verification_route_is_still_routed_for_anything_but_post(stack: Stack) -> None:
    """POST /v1/verifications skips FastAPI's router (`DirectRoute`); every other request still
    gets the router's answer, as a problem."""
    with stack.client() as client:
        assert_problem(client.get("/v1/verifications"), 405, "METHOD_NOT_ALLOWED")
        assert_problem(client.post("/v1/verifications/elsewhere", json={}), 404, "NOT_FOUND")
        assert client.post("/v1/verifications/image", data={"purpose": "核验"}).status_code == 422


def test_a_package_with_a_broken_field_is_a_problem_or_invalid_never_valid(stack: Stack) -> None:
    package = stack.issued.package(VALID_PKG)
    package["leaves"][0]["value"] = "not canonical json"
    assert_problem(verify(stack, package=package), 400, "CERT_MALFORMED")
    package = stack.issued.package(VALID_PKG)
    package["leaves"][0]["value"] = '"被改过的地址"'
    response = verify(stack, package=package)
    assert response.status_code == 200 and response.json()["verdict"] == "INVALID"
    assert response.json()["reason"] == "CERT_TAMPERED"


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 255).save(out, format="PNG")
    return out.getvalue()


BAD_UPLOADS = {
    "not-an-image": (
        {"file": ("qr.png", b"GIF89a? not really", "image/png")},
        {"purpose": "核验"},
        400,
        "QR_UNREADABLE",
    ),
    "no-qr-in-it": (
        {"file": ("blank.png", _blank_png(), "image/png")},
        {"purpose": "核验"},
        400,
        "QR_UNREADABLE",
    ),
    "no-purpose": ({"file": ("blank.png", _blank_png(), "image/png")}, {}, 422, "REQUEST_INVALID"),
    "no-file": ({}, {"purpose": "核验"}, 422, "REQUEST_INVALID"),
    "too-large": (
        {"file": ("big.png", b"\x89PNG" + b"\0" * (5 * 1024 * 1024), "image/png")},
        {"purpose": "核验"},
        413,
        "UPLOAD_TOO_LARGE",
    ),
}


@pytest.mark.parametrize("case", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_bad_uploads_are_problems_with_a_code(stack: Stack, case: tuple[dict, dict, int, str]) -> None:
    files, data, status, code = case
    with stack.client() as client:
        response = client.post("/v1/verifications/image", files=files or None, data=data)
    assert_problem(response, status, code)


# ─── who may ask, and how often ──────────────────────────────────────────────────────────


def test_an_api_key_is_required_and_must_be_known(stack: Stack) -> None:
    package = stack.issued.package(VALID_PKG)
    anonymous = httpx.post(
        f"{stack.node.url}/v1/verifications", json={"package": package, "purpose": "开户"}, timeout=30
    )
    assert_problem(anonymous, 401, "AUTH_REQUIRED")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert_problem(verify(stack, key="vk_" + "x" * 43, package=package), 401, "AUTH_INVALID")
    with httpx.Client(base_url=stack.node.url, headers={"X-API-Key": stack.bank}, timeout=30) as client:
        assert_valid(client.post("/v1/verifications", json={"package": package, "purpose": "开户"}))
    with stack.client() as client:  # a bank may not read holders' access logs or manage shares
        assert_problem(
            client.get("/v1/access-log", params={"digest": package["digest"]}), 403, "SCOPE_MISSING"
        )
        assert_problem(client.get("/v1/shares", params={"holderRef": "h"}), 403, "SCOPE_MISSING")


def test_each_key_is_rate_limited_on_its_own(stack: Stack) -> None:
    """60 per minute: a burst of 10, then 429 problems; another key of the node is unaffected."""
    package = stack.issued.package(VALID_PKG)
    first, second = stack.limited_keys
    with stack.limited.client(first) as client:
        answers = [
            client.post("/v1/verifications", json={"package": package, "purpose": "开户"}) for _ in range(16)
        ]
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:], statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert_problem(limited, 429, "RATE_LIMITED")
    assert (
        1 <= int(limited.headers["retry-after"]) <= 60
    )  # when a token is back (60 per minute: about a second)
    with stack.limited.client(second) as client:
        assert_valid(client.post("/v1/verifications", json={"package": package, "purpose": "开户"}))


# ─── status: suspension, reinstatement, and "as of T" ────────────────────────────────────


def _at(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def test_suspension_and_reinstatement_show_at_once_and_stay_in_the_history(stack: Stack) -> None:
    package = stack.issued.package(STATUS_PKG)
    identifier = stack.issued.identifier(STATUS_PKG)
    anchored_at = next(
        c for c in assert_valid(verify(stack, package=package))["checks"] if c["kind"] == "anchor"
    )["evidence"]["anchoredAt"]

    suspended_block = stack.home.set_status(identifier, "suspended", 2)
    stack.node.wait_indexed(suspended_block)
    response = verify(stack, package=package)
    report = response.json()
    assert response.status_code == 200 and (report["verdict"], report["reason"]) == (
        "INVALID",
        "CERT_SUSPENDED",
    )
    status = next(c for c in report["checks"] if c["kind"] == "status")
    suspended_at = stack.home.block_time(suspended_block)
    assert status["evidence"] == {  # the agency's GB reason reaches the bank (issue 10, point 16)
        "status": "suspended", "block": report["block"], "source": "index",
        "reason": "02", "reasonZh": "暂扣", "reasonEn": "withheld", "since": dt.datetime.fromtimestamp(suspended_at, dt.UTC).isoformat(),
    }  # fmt: skip
    assert "02 暂扣" in status["message"] and "02: withheld" in status["message"]
    assert report["block"] >= suspended_block
    with stack.client() as client:
        assert client.post("/v1/receipts/verify", json=report["receipt"]).json() == {"valid": True}
        assert report["receipt"]["receipt"]["verdict"] == "INVALID"

    reinstated_block = stack.home.set_status(identifier, "active", 1)
    stack.node.wait_indexed(reinstated_block)
    assert_valid(verify(stack, package=package))
    reinstated_at = stack.home.block_time(reinstated_block)
    assert anchored_at < suspended_at < reinstated_at

    # verification as of a moment: before, during and after the suspension
    before, during = _at(suspended_at - 1), _at(suspended_at)
    assert_valid(verify(stack, package=package, at=before))
    response = verify(stack, package=package, at=during)
    assert response.status_code == 200 and response.json()["reason"] == "CERT_SUSPENDED"
    assert response.json()["source"] == "index"
    assert_valid(verify(stack, package=package, at=_at(reinstated_at)))
    # … and before the batch existed, it was not anchored yet
    response = verify(stack, package=package, at=_at(anchored_at - 1))
    assert (response.status_code, response.json()["reason"]) == (200, "NOT_ANCHORED")
    assert response.json()["source"] == "index"  # the index was asked: not an "offline" answer

    position = {"root": package["batch"]["root"], "index": package["batch"]["index"]}
    with stack.client() as client:
        now = client.get("/v1/status", params=position).json()
        then = client.get("/v1/status", params={**position, "at": during}).json()
        earlier = client.get("/v1/status", params={**position, "at": before}).json()
        unknown = client.get("/v1/status", params={**position, "root": "0x" + "ab" * 32})
        out_of_range = client.get("/v1/status", params={**position, "index": 3})
    assert (now["status"], now["reason"], now["since"]) == ("active", 1, reinstated_at)
    assert (then["status"], then["reason"], then["since"]) == ("suspended", 2, suspended_at)
    assert (earlier["status"], earlier["since"]) == ("active", anchored_at)
    assert now["indexedBlock"] >= reinstated_block
    assert_problem(unknown, 422, "NOT_ANCHORED")
    assert_problem(out_of_range, 422, "CERT_INDEX_OUT_OF_RANGE")


# ─── the holder's access log ─────────────────────────────────────────────────────────────


def test_the_holder_sees_who_verified_newest_first(stack: Stack) -> None:
    package = stack.issued.package(SPARE_PKG)
    assert_valid(verify(stack, purpose="开立对公账户", package=package))
    assert_valid(verify(stack, purpose="贷款审批", ec1=Presentation.from_json(package).to_ec1()))
    with stack.client(stack.wallet) as wallet:
        assert wallet.get("/v1/access-log", params={"holderRef": "h-newest"}).json() == []  # holds nothing
        assert (
            wallet.post("/v1/holdings", json={"holderRef": "h-newest", "presentation": package}).status_code
            == 201
        )
        entries = wallet.get("/v1/access-log", params={"holderRef": "h-newest"}).json()
        assert (
            entries
            == wallet.get(
                "/v1/access-log", params={"holderRef": "h-newest", "digest": package["digest"]}
            ).json()
        )
        assert_problem(wallet.get("/v1/access-log"), 422, "REQUEST_INVALID")  # whose log: the holder is named
    assert [(e["purpose"], e["channel"]) for e in entries[:2]] == [
        ("贷款审批", "api"),
        ("开立对公账户", "api"),
    ]
    latest = entries[0]
    assert (latest["organisation"], latest["region"], latest["verdict"], latest["reason"]) == (
        BANK,
        "330100",
        "VALID",
        None,
    )
    assert latest["fields"] == [leaf["path"] for leaf in package["leaves"]] and latest[
        "identifier"
    ] == stack.issued.identifier(SPARE_PKG)
    assert latest["digest"] == package["digest"] and latest["at"] >= entries[1]["at"]


def test_a_node_with_two_workers_logs_every_verification_through_its_node_process(stack: Stack) -> None:
    """Each worker sends its entries to the node process, the one writer; none is lost or doubled,
    whichever worker answered, and the last ones are written when the node stops."""
    node = VerifierNode(
        stack.home, "330000", workers=2, database_url=f"sqlite:///{stack.home.root / 'two-workers.sqlite'}"
    )
    bank, wallet = node.register(("丙银行", "330100", "bank"), ("浙里办", "330000", "wallet"))
    package = stack.issued.package(SPARE_PKG)
    log_of = {"holderRef": "h-workers", "digest": package["digest"]}
    node.start()
    try:
        node.wait_indexed()
        with node.client(bank) as client, ThreadPoolExecutor(4) as pool:  # concurrent: both workers answer
            answers = list(
                pool.map(
                    lambda n: client.post(
                        "/v1/verifications", json={"purpose": f"核验{n}", "package": package}
                    ),
                    range(40),
                )
            )
        assert all(a.status_code == 200 and a.json()["verdict"] == "VALID" for a in answers)
        with node.client(wallet) as client:
            assert (
                client.post(
                    "/v1/holdings", json={"holderRef": "h-workers", "presentation": package}
                ).status_code
                == 201
            )
            logged = wait_for(
                lambda: len(entries := client.get("/v1/access-log", params=log_of).json()) == 40 and entries,
                10, what="for 40 access-log entries",
            )  # fmt: skip
        assert sorted(e["purpose"] for e in logged) == sorted(f"核验{n}" for n in range(40))
        with node.client(bank) as client:
            assert (
                client.post("/v1/verifications", json={"purpose": "停机前", "package": package}).status_code
                == 200
            )
    finally:
        node.stop()
    # one worker writes itself, even if the environment names a socket (only `serve` sets it, for its workers)
    reopened = VerifierNode(
        stack.home, "330000", database_url=node.database_url, access_log_socket="/nonexistent/socket"
    ).start()
    try:
        with reopened.client(bank) as client:
            assert (
                client.post("/v1/verifications", json={"purpose": "单进程", "package": package}).status_code
                == 200
            )
        with reopened.client(wallet) as client:
            purposes = [e["purpose"] for e in client.get("/v1/access-log", params=log_of).json()]
    finally:
        reopened.stop()
    assert len(purposes) == 42 and purposes[:2] == ["单进程", "停机前"]


def test_a_share_link_visit_is_listed_by_share_id(stack: Stack) -> None:
    disclosure = Presentation.from_json(stack.issued.package(SPARE_PKG)).disclose(
        ["holder.name", "validFrom", "validUntil"]
    )
    with stack.client(stack.wallet) as wallet:
        share = wallet.post(
            "/v1/shares",
            json={
                "holderRef": "h-1",
                "presentation": disclosure.to_json(),
                "purpose": "租房",
                "expiresInMinutes": 60,
            },
        ).json()
        opened = httpx.get(share["url"], params={"purpose": "公安调查"}, headers={"Accept": "application/json", "User-Agent": "Visitor/2"},
                           timeout=30)  # fmt: skip
        assert opened.status_code == 200 and opened.json()["verdict"] == "VALID", opened.text
        entries = wallet.get("/v1/access-log", params={"holderRef": "h-1", "shareId": share["id"]}).json()
    assert [(e["channel"], e["shareId"]) for e in entries] == [("link", share["id"])]
    # no API key: the visitor's typed purpose is their claim, kept apart, with their network and browser
    [entry] = entries
    assert (entry["anonymous"], entry["purpose"], entry["claimedPurpose"]) == (True, "租房", "公安调查")
    assert (entry["ipPrefix"], entry["userAgent"]) == ("127.0.0.0/24", "Visitor/2")


# ─── whose log and shares a wallet reaches (issue 10, point 1) ───────────────────────────


def test_a_share_is_managed_only_by_its_wallet_for_its_holder(stack: Stack) -> None:
    """Another wallet, or the same wallet for another holder: as unknown (404), never 403."""
    disclosure = Presentation.from_json(stack.issued.package(SPARE_PKG)).disclose(["holder.name"])
    with stack.client(stack.wallet) as wallet, stack.client(stack.other_wallet) as other:
        made = wallet.post("/v1/shares", json={"holderRef": "h-scope", "presentation": disclosure.to_json(),
                                                "expiresInMinutes": 60, "dynamic": True})  # fmt: skip
        assert made.status_code == 201, made.text
        share = made.json()
        for client, holder in ((other, "h-scope"), (wallet, "h-other")):
            assert client.get("/v1/shares", params={"holderRef": holder}).json() == []
            for method, path in (
                ("GET", f"/v1/shares/{share['id']}/dynamic-code"),
                ("DELETE", f"/v1/shares/{share['id']}"),
            ):
                assert_problem(
                    client.request(method, path, params={"holderRef": holder}), 404, "SHARE_NOT_FOUND"
                )
            assert_problem(client.get("/v1/access-log", params={"holderRef": holder, "shareId": share["id"]}), 404,
                           "ACCESS_LOG_NOT_FOUND")  # fmt: skip
        assert [s["id"] for s in wallet.get("/v1/shares", params={"holderRef": "h-scope"}).json()] == [
            share["id"]
        ]
        assert (
            wallet.get(f"/v1/shares/{share['id']}/dynamic-code", params={"holderRef": "h-scope"}).status_code
            == 200
        )
        assert (
            wallet.delete(f"/v1/shares/{share['id']}", params={"holderRef": "h-scope"}).json()["withdrawn"]
            is True
        )


def test_a_claimed_never_shared_certificate_s_log_is_read_only_through_its_wallet_for_its_holder(
    stack: Stack,
) -> None:
    package = stack.issued.package(VALID_PKG)
    log_of = {"holderRef": "h-claimed", "digest": package["digest"]}
    with stack.client(stack.wallet) as wallet, stack.client(stack.other_wallet) as other:
        held = wallet.post("/v1/holdings", json={"holderRef": "h-claimed", "presentation": package})
        assert held.status_code == 201 and held.json()["digest"] == package["digest"]
        again = wallet.post("/v1/holdings", json={"holderRef": "h-claimed", "presentation": package})
        assert again.status_code == 200 and again.json() == held.json()  # bound once
        # what banks and link visitors are given, a disclosure, binds nothing
        disclosure = Presentation.from_json(package).disclose(["holder.name"]).to_json()
        assert_problem(other.post("/v1/holdings", json={"holderRef": "h-claimed", "presentation": disclosure}), 422,
                       "CERT_PARTIAL")  # fmt: skip
        forged = {**package, "leaves": package["leaves"][1:]}
        assert_problem(other.post("/v1/holdings", json={"holderRef": "h-claimed", "presentation": forged}), 422,
                       "CERT_TAMPERED")  # fmt: skip
        assert_valid(verify(stack, purpose="授信审查-h-claimed", package=package))
        seen = wait_for(lambda: [e for e in wallet.get("/v1/access-log", params=log_of).json()
                                 if e["purpose"] == "授信审查-h-claimed"], 10, what="the bank's verification")  # fmt: skip
        assert [(e["organisation"], e["digest"]) for e in seen] == [(BANK, package["digest"])]
        assert any(
            e["purpose"] == "授信审查-h-claimed"
            for e in wallet.get("/v1/access-log", params={"holderRef": "h-claimed"}).json()
        )
        assert wallet.get("/v1/holdings", params={"holderRef": "h-claimed"}).json() == [held.json()]
        for client, holder in ((other, "h-claimed"), (wallet, "h-someone-else")):
            assert_problem(
                client.get("/v1/access-log", params={**log_of, "holderRef": holder}),
                404,
                "ACCESS_LOG_NOT_FOUND",
            )
            assert client.get("/v1/access-log", params={"holderRef": holder}).json() == []
            assert client.get("/v1/holdings", params={"holderRef": holder}).json() == []


# ─── API keys retired while the node runs (issue 10, point 9) ─────────────────────────────


def test_a_revoked_or_rotated_key_is_refused_by_every_worker_within_5_s(stack: Stack) -> None:
    """`ecert verifier org rotate-key|revoke` write the node's database from another process;
    each worker caches the keys it has seen and still refuses a retired one within 5 s."""
    node = VerifierNode(
        stack.home, "330000", workers=2, database_url=f"sqlite:///{stack.home.root / 'key-revocation.sqlite'}"
    )
    added = stack.home.ecert(
        "verifier", "org", "add", "--name", "丁银行", "--region", "330100", "--node", "330000", env=node.env
    )
    org_id, first = (
        int(re.search(r"organisation (\d+)", added.stdout).group(1)),
        added.stdout.strip().splitlines()[-1],
    )
    package = stack.issued.package(SPARE_PKG)

    def statuses(key: str, count: int = 24) -> set[int]:
        """Answers to `count` verifications over 4 connections at once: both workers answer."""
        with node.client(key) as client, ThreadPoolExecutor(4) as pool:
            return {
                a.status_code
                for a in pool.map(
                    lambda n: client.post(
                        "/v1/verifications", json={"purpose": f"核验{n}", "package": package}
                    ),
                    range(count),
                )
            }

    def retire(*args: str) -> str:
        """Run `ecert verifier org …`, then wait out the 5 s promised from when it returned."""
        done = stack.home.ecert("verifier", "org", *args, "--node", "330000", env=node.env)
        time.sleep(5.0)
        return done.stdout

    node.start()
    try:
        node.wait_indexed()
        assert statuses(first) == {200}  # every worker now has the key in its cache
        second = retire("rotate-key", "--id", str(org_id)).strip().splitlines()[-1]
        assert second.startswith("vk_") and second != first
        assert statuses(first) == {401}
        assert statuses(second) == {200}
        assert "revoked 1 key(s)" in retire("revoke", "--id", str(org_id))
        assert statuses(second) == {401}
        listed = stack.home.ecert("verifier", "org", "list", "--node", "330000", env=node.env).stdout
        assert re.search(rf"^\s*{org_id}\s+bank\s+330100\s+0 key\(s\)\s+丁银行$", listed, re.MULTILINE), (
            listed
        )
    finally:
        node.stop()


# ─── answers with personal data, and the docs (issue 10, point 18) ───────────────────────


def test_answers_with_personal_data_are_not_cached_framed_or_referred_and_the_docs_are_offline(
    stack: Stack,
) -> None:
    def private(response: httpx.Response, *, page: bool = False) -> None:
        assert response.headers["cache-control"] == "no-store", response.url
        assert response.headers["referrer-policy"] == "no-referrer"
        csp = response.headers["content-security-policy"]
        assert (
            "frame-ancestors 'none'" in csp
            and "default-src 'none'" in csp
            and ("style-src 'unsafe-inline'" in csp) == page
        )

    package = stack.issued.package(VALID_PKG)
    answer = verify(stack, package=package)
    assert answer.status_code == 200
    private(answer)
    disclosure = Presentation.from_json(package).disclose(["holder.name"])
    with stack.client(stack.wallet) as wallet:
        created = wallet.post(
            "/v1/shares",
            json={"holderRef": "h-headers", "presentation": disclosure.to_json(), "expiresInMinutes": 60},
        )
        private(created)
        private(wallet.get("/v1/shares", params={"holderRef": "h-headers"}))
        private(wallet.get("/v1/access-log", params={"holderRef": "h-headers"}))
    page = httpx.get(created.json()["url"], timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    private(page, page=True)
    private(httpx.get(created.json()["url"], headers={"Accept": "application/json"}, timeout=30), page=True)
    with stack.client() as client:
        for docs in ("/docs", "/redoc"):
            html = client.get(docs)
            assert html.status_code == 200 and not re.search(r"(?:https?:)?//[A-Za-z0-9.-]+", html.text), docs
            assets = re.findall(r"""(?:src|href)=["'](/docs-assets/[^"']+)["']""", html.text)
            assert assets and all(client.get(a).status_code == 200 for a in assets), assets


# ─── verification links <node>/v#EC1:… (issue 11, point 6) ──────────────────────────────


def test_a_verification_link_verifies_as_its_ec1_in_the_api_and_with_ecert_verify(stack: Stack) -> None:
    package = stack.issued.package(VALID_PKG)
    ec1 = Presentation.from_json(package).to_ec1()
    link = verify_link("https://verify.elsewhere.example", ec1)  # any node's link: its payload is what counts
    assert "#EC1:" in link and " " not in link
    from_link, from_ec1 = assert_valid(verify(stack, ec1=link)), assert_valid(verify(stack, ec1=ec1))
    assert from_link["receipt"]["receipt"]["requestDigest"] == from_ec1["receipt"]["receipt"]["requestDigest"]
    with stack.client() as client:
        for not_a_certificate in (f"{stack.node.url}/s/some-share-token", "https://verify.example/v#nothing"):
            answer = client.post("/v1/verifications", json={"purpose": "开户", "ec1": not_a_certificate})
            assert_problem(answer, 422, "LINK_INVALID")
    done = stack.home.ecert("verify", link, "--json")  # offline-readable: no node is asked for the payload
    assert json.loads(done.stdout)["verdict"] == "VALID", done.stdout + done.stderr
    refused = stack.home.ecert("verify", f"{stack.node.url}/s/some-share-token", "--json", check=False)
    assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "LINK_INVALID"


def test_the_page_at_a_verification_link_verifies_what_it_is_posted_as_an_anonymous_qr_visit(
    stack: Stack,
) -> None:
    """What the page's script posts (the browser test runs the script itself): the verdict page with
    the disclosed fields, private headers, and an anonymous access-log entry on channel `qr`."""
    package = stack.issued.package(SPARE_PKG)
    disclosure = Presentation.from_json(package).disclose(["holder.name", "validFrom", "validUntil"])
    link = verify_link(stack.node.url, disclosure.to_ec1())
    page = httpx.get(link, timeout=30)  # httpx, like a browser, never sends the fragment
    assert page.status_code == 200 and 'id="scan-form"' in page.text and "<h1" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    script = httpx.get(f"{stack.node.url}/static/verify.js", timeout=30)
    assert script.status_code == 200 and "location.hash" in script.text
    answer = httpx.post(f"{stack.node.url}/v", data={"code": link, "purpose": "前台核验", "lang": "en"},
                        headers={"User-Agent": "Scanner/1"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200 and 'data-verdict="VALID"' in answer.text, answer.text[-2000:]
    assert set(re.findall(r'<dd data-path="([^"]+)"', answer.text)) == set(disclosure.paths())
    assert answer.headers["cache-control"] == "no-store" and '<html lang="en">' in answer.text
    broken = httpx.post(
        f"{stack.node.url}/v", data={"code": "https://x.example/v#EC1:NOT-A-CODE"}, timeout=30
    )
    assert broken.status_code == 400 and 'data-problem="CERT_MALFORMED"' in broken.text
    with stack.client(stack.wallet) as wallet:
        held = wallet.post("/v1/holdings", json={"holderRef": "h-scan", "presentation": package})
        assert held.status_code == 201, held.text
        entries = wallet.get("/v1/access-log", params={"holderRef": "h-scan"}).json()
    [entry] = [e for e in entries if e["channel"] == "qr"]
    assert (entry["anonymous"], entry["verdict"], entry["claimedPurpose"]) == (True, "VALID", "前台核验")
    assert (entry["ipPrefix"], entry["userAgent"]) == ("127.0.0.0/24", "Scanner/1")
    assert set(entry["fields"]) == set(disclosure.paths())


# ─── the chain stops: could not verify (503), never valid ────────────────────────────────


def test_with_the_chain_stopped_the_answer_is_503_error_never_valid(stack: Stack) -> None:
    """The index answers what it last knew (`lastKnown`), but the verdict stays ERROR (503) at a
    node whose policy accepts no last-known answer, and VALID with its age where the policy
    accepts it; a batch the index does not have is ERROR everywhere; a tampered package INVALID."""
    package = stack.issued.package(VALID_PKG)
    position = {"root": package["batch"]["root"], "index": package["batch"]["index"]}
    unknown_batch = {**package, "batch": {**package["batch"], "root": "0x" + "ab" * 32}}
    tampered = json.loads(json.dumps(package))
    tampered["leaves"][0]["value"] = '"被改过的地址"'
    stack.tolerant.wait_indexed()
    indexed = stack.node.wait_indexed()
    stack.home.chain_down()
    try:
        # the head tracker gives up on the chain within its max age (3 s): then every answer is 503
        first = wait_for(
            lambda: (r := verify(stack, package=package)).status_code == 503 and r, 15, what="for a 503"
        )
        answers = [
            first,
            *(verify(stack, package=package) for _ in range(3)),
            verify(stack, ec1=Presentation.from_json(package).to_ec1()),
        ]
        for response in answers:
            report = response.json()
            assert response.status_code == 503 and report["verdict"] == "ERROR", report
            assert report["reason"] == "LAST_KNOWN_REFUSED" and report["source"] == "lastKnown", report
            last_known = report["lastKnown"]
            assert (last_known["verdict"], last_known["block"], last_known["accepted"]) == (
                "VALID",
                indexed,
                False,
            )
            assert 0 <= last_known["ageSeconds"] < 120
            results = outcomes(report)
            # every check ran, on the index's last-known facts; only freshness refuses them
            assert {k: v[0] for k, v in results.items() if k != "share"} == {
                **dict.fromkeys(VALID_CHECKS, "VALID"),
                "freshness": "ERROR",
            }, results
            assert results["freshness"] == ("ERROR", "LAST_KNOWN_REFUSED")
            receipt = report["receipt"]["receipt"]
            assert (receipt["verdict"], receipt["source"], receipt["block"]) == (
                "ERROR",
                "lastKnown",
                indexed,
            )
            assert receipt["ageSeconds"] == last_known["ageSeconds"]
        not_indexed = verify(stack, package=unknown_batch)
        assert not_indexed.status_code == 503 and "lastKnown" not in not_indexed.json()
        assert all(outcomes(not_indexed.json())[k] == ("ERROR", "CHAIN_UNAVAILABLE") for k in ONLINE_CHECKS)
        bad = verify(stack, package=tampered)
        assert (bad.status_code, bad.json()["verdict"]) == (200, "INVALID"), bad.json()
        with stack.tolerant.client(stack.tolerant_key) as client:
            # its own head tracker gives up on the chain on its own clock (within 3 s of its last read)
            accepted = wait_for(
                lambda: (
                    (
                        r := client.post(
                            "/v1/verifications", json={"purpose": "开立对公账户", "package": package}
                        )
                    ).json()["source"]
                    == "lastKnown"
                    and r
                ),
                15,
                what="for the tolerant node to answer last-known",
            )
            report = accepted.json()
            assert (accepted.status_code, report["verdict"], report["source"]) == (
                200,
                "VALID",
                "lastKnown",
            ), report
            assert report["lastKnown"]["accepted"] is True and report["lastKnown"]["verdict"] == "VALID"
            assert outcomes(report)["freshness"] == ("VALID", "LAST_KNOWN_ACCEPTED")
            assert client.post("/v1/receipts/verify", json=report["receipt"]).json() == {"valid": True}
        with stack.client() as client:
            assert_problem(client.get("/v1/status", params=position), 503, "CHAIN_UNAVAILABLE")
            assert client.post("/v1/receipts/verify", json=answers[0].json()["receipt"]).json() == {
                "valid": True
            }
    finally:
        stack.home.chain_up()
    response = wait_for(
        lambda: (r := verify(stack, package=package)).status_code == 200 and r,
        15,
        what="for the node to recover",
    )
    report = assert_valid(response)
    assert "lastKnown" not in report and report["source"] in ("index", "chain")


def test_an_api_receipt_is_in_the_answer_and_is_not_kept_by_a_node_that_does_not_keep_them(
    stack: Stack,
) -> None:
    """ECERT_VERIFIER_KEEP_API_RECEIPTS is off by default: the bank has its signed receipt in the
    answer; the node keeps only the front desk's (tests/api/test_verifier_receipts.py keeps all)."""
    answer = assert_valid(verify(stack, package=stack.issued.package(VALID_PKG)))
    assert answer["receipt"] and len(answer["receiptId"]) == 32
    with stack.client() as client:
        kept = client.get(f"/v1/receipts/{answer['receiptId']}")
        history = client.get("/v1/verifications/history")
    assert (kept.status_code, kept.json()["code"]) == (404, "RECEIPT_NOT_FOUND")
    assert history.status_code == 200 and answer["receiptId"] not in history.text
