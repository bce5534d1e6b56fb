"""Fuzzing the verifier node over real HTTP: schemathesis against its own `/openapi.json`, and
hypothesis bodies for `POST /v1/verifications` (random JSON, mutated holder packages, random
`EC1:` strings). The chain is up throughout, so no answer may be a 5xx (503 would be a check that
could not run: none should), and no mutated certificate may come back VALID.

Bounded: derandomised, a fixed number of examples per test (ECERT_FUZZ_EXAMPLES=N to go deeper).
"""

from __future__ import annotations

import copy
import io
import json
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import base45
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verifier_stack import (
    AGENCY_ZJ,
    AUTHORITIES,
    BUSINESS_LICENCE,
    PROBLEM,
    Issued,
    StackHome,
    VerifierNode,
    records,
)

from registry.certificate.presentation import Presentation

pytestmark = pytest.mark.chain

EXAMPLES = int(os.environ.get("ECERT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 150, derandomize=not EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@dataclass
class Stack:
    home: StackHome
    node: VerifierNode
    issued: Issued
    bank: str
    wallet: str
    peer: str  # a trusted node of another region's key (it reports accesses to this node)
    http: httpx.Client  # the bank's

    def alive(self) -> bool:
        return (
            self.node.process is not None
            and self.node.process.poll() is None
            and httpx.get(f"{self.node.url}/healthz", timeout=5).status_code == 200
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = StackHome(tmp_path_factory.mktemp("verifier-fuzz"))
    node = VerifierNode(home, "330000", rate_limit_per_min="10000000")
    bank, wallet, peer = node.register(
        ("模糊测试银行", "330100", "bank"),
        ("浙里办", "330000", "wallet"),
        ("广东省验证节点", "440000", "node"),
    )
    try:
        with ThreadPoolExecutor(1) as pool:
            home.deploy()
            started = pool.submit(node.start)
            home.add_parties(authorities=AUTHORITIES[:1])
            issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, records(2), "zj")
            started.result()
        node.wait_indexed()
        with node.client(bank) as http:
            yield Stack(home, node, issued, bank, wallet, peer, http)
        assert node.process is not None and node.process.poll() is None, (
            f"the node died:\n{node.log()[-3000:]}"
        )
    finally:
        node.stop()
        home.tear_down()


def assert_no_server_error(response: httpx.Response | Any, what: object = "") -> None:
    assert response.status_code < 500, f"{response.status_code} for {what!r:.300}: {response.text[:500]}"


def assert_problem_if_error(response: httpx.Response) -> None:
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM) and response.json()["code"], (
            response.text[:300]
        )


def assert_not_valid(response: httpx.Response, what: object) -> None:
    """A refused request (4xx problem) or a decided INVALID: never VALID, never 5xx."""
    assert_no_server_error(response, what)
    assert_problem_if_error(response)
    if response.status_code == 200:
        assert response.json()["verdict"] == "INVALID", f"{what!r:.300} was {response.json()['verdict']}"


# ─── schemathesis: every operation of the node's own OpenAPI document ────────────────────


OPERATIONS = [
    ("POST", "/v1/verifications"), ("POST", "/v1/verifications/image"), ("POST", "/v1/shares"), ("GET", "/v1/shares"),
    ("DELETE", "/v1/shares/{share_id}"), ("GET", "/v1/shares/{share_id}/dynamic-code"), ("GET", "/v1/access-log"),
    ("GET", "/v1/shares/{token}/presentation"), ("POST", "/v1/holdings"), ("GET", "/v1/holdings"),
    ("GET", "/v1/receipt-key"), ("POST", "/v1/receipts/verify"),
    ("GET", "/v1/receipts/{receipt_id}"), ("GET", "/v1/receipts/{receipt_id}.pdf"),
    ("GET", "/v1/verifications/history"), ("GET", "/v1/verifications/history.csv"),
    ("GET", "/v1/status"), ("GET", "/s/{token}"), ("GET", "/healthz"), ("GET", "/v"), ("POST", "/v"),
    ("POST", "/v1/access-log/remote"),
    ("POST", "/v1/subscriptions"), ("GET", "/v1/subscriptions"), ("GET", "/v1/subscriptions/{subscription_id}"),
    ("DELETE", "/v1/subscriptions/{subscription_id}"), ("GET", "/v1/subscriptions/{subscription_id}/dead-letters"),
    ("POST", "/v1/subscriptions/{subscription_id}/dead-letters/{event_id}/redeliver"), ("GET", "/v1/notifications"),
    ("GET", "/v1/stats/verifications"),
]  # fmt: skip


@pytest.fixture(scope="module")
def api_schema(stack: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.node.url}/openapi.json")


def test_the_fuzzed_operations_are_all_the_node_has(api_schema: Any) -> None:
    assert sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()) == sorted(
        OPERATIONS
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_operation_answers_a_server_error(stack: Stack, api_schema: Any, method: str, path: str) -> None:
    """Schemathesis cases from the node's own OpenAPI document, sent with a key that may call the operation."""
    operation = api_schema[path][method]
    if path in ("/v1/access-log/remote", "/v1/stats/verifications"):  # a node's key (stats: an agency's too)
        key = stack.peer
    elif path.startswith(("/v1/shares", "/v1/access-log", "/v1/holdings")):
        key = stack.wallet
    else:
        key = stack.bank

    @settings(
        max_examples=EXAMPLES or 25,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        what = f"{case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:200] if case.body is not None else ''}"
        assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:500]!r}"
        if response.status_code >= 400 and path.startswith("/v1/"):
            content_type = (
                response.headers.get("content-type") or response.headers.get("Content-Type") or [""]
            )
            assert (content_type[0] if isinstance(content_type, list) else content_type).startswith(
                PROBLEM
            ), f"{what}: {content_type}"

    fuzz()


# ─── hypothesis: POST /v1/verifications ──────────────────────────────────────────────────

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=16,
)
request_bodies = json_values | st.fixed_dictionaries(
    {"purpose": st.text(max_size=210)},
    optional={
        "package": json_values,
        "ec1": st.text(max_size=64) | st.text(BASE45, max_size=64).map("EC1:".__add__),
        "shareUrl": st.text(max_size=64) | st.just("http://127.0.0.1:1/s/x"),
        "at": st.text(max_size=30) | st.datetimes().map(lambda d: d.isoformat()),
    },
)


@FUZZ
@given(body=request_bodies)
def test_random_json_bodies_are_refused_or_decided_never_a_server_error(stack: Stack, body: Any) -> None:
    assert_not_valid(stack.http.post("/v1/verifications", json=body), body)


def _flip_hex(text: str, position: int) -> str:
    """`0x…` with one hex digit changed (to another value, so the bytes differ)."""
    i = 2 + position % (len(text) - 2)
    return text[:i] + format((int(text[i], 16) + 1) % 16, "x") + text[i + 1 :]


@st.composite
def mutated_packages(draw: st.DrawFn, package: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A holder package with one change that makes it another certificate (or no certificate)."""
    p = copy.deepcopy(package)
    leaves, batch = p["leaves"], p["batch"]
    i = draw(st.integers(0, len(leaves) - 1))
    kind = draw(st.sampled_from([
        "leaf-value", "leaf-path", "leaf-salt", "drop-leaf", "duplicate-leaf", "swap-values", "digest", "seal", "root",
        "proof-item", "drop-proof-item", "add-proof-item", "index", "chain-id", "registry", "multiproof", "leaf-raw",
    ]))  # fmt: skip
    flip = draw(st.integers(0, 200))
    if kind == "leaf-value":
        new = draw(st.text(min_size=1, max_size=20) | st.integers() | st.booleans() | st.none())
        leaves[i]["value"] = json.dumps(new, ensure_ascii=False, separators=(",", ":"))
        if leaves[i]["value"] == package["leaves"][i]["value"]:
            leaves[i]["value"] = json.dumps(str(new) + "改", ensure_ascii=False)
    elif kind == "leaf-path":
        leaves[i]["path"] = draw(
            st.sampled_from([leaf["path"] for leaf in leaves if leaf["path"] != leaves[i]["path"]])
            | st.text(min_size=1, max_size=20)
        )
    elif kind == "leaf-salt":
        leaves[i]["salt"] = _flip_hex(leaves[i]["salt"], flip)
    elif kind == "drop-leaf":
        del leaves[i]
    elif kind == "duplicate-leaf":
        leaves.insert(i, copy.deepcopy(leaves[i]))
    elif kind == "swap-values":
        j = (i + 1 + draw(st.integers(0, len(leaves) - 2))) % len(leaves)
        leaves[i]["value"], leaves[j]["value"] = leaves[j]["value"], leaves[i]["value"]
        if leaves[i]["value"] == leaves[j]["value"]:
            leaves[i]["value"] = '"换"'
    elif kind in ("digest", "seal"):
        p[kind] = _flip_hex(p[kind], flip)
    elif kind == "root":
        batch["root"] = _flip_hex(batch["root"], flip)
    elif kind == "proof-item" and batch["proof"]:
        j = flip % len(batch["proof"])
        batch["proof"][j] = _flip_hex(batch["proof"][j], draw(st.integers(0, 63)))
    elif kind == "drop-proof-item" and batch["proof"]:
        del batch["proof"][flip % len(batch["proof"])]
    elif kind in ("add-proof-item", "proof-item", "drop-proof-item"):
        batch["proof"].insert(
            flip % (len(batch["proof"]) + 1), "0x" + draw(st.binary(min_size=32, max_size=32)).hex()
        )
    elif kind == "index":
        batch["index"] = draw(
            (st.integers(-3, 2**300) | st.integers(2**53 - 2, 2**53 + 2)).filter(
                lambda n: n != package["batch"]["index"]
            )
            | st.text(max_size=5)
        )
    elif kind == "chain-id":
        p["registry"]["chainId"] = draw(
            st.integers(-3, 2**70).filter(lambda n: n != package["registry"]["chainId"])
        )
    elif kind == "registry":
        p["registry"]["address"] = "0x" + draw(st.binary(min_size=20, max_size=20)).hex()
    elif kind == "multiproof":  # claims some fields are hidden, with a proof that proves nothing
        del leaves[i]
        p["multiproof"] = {
            "proof": ["0x" + draw(st.binary(min_size=32, max_size=32)).hex()],
            "flags": draw(st.lists(st.booleans(), max_size=len(leaves) + 1)),
        }
    else:  # leaf-raw: any JSON where a leaf was
        leaves[i] = draw(json_values)
    return kind, p


@pytest.fixture(scope="module")
def package(stack: Stack) -> dict[str, Any]:
    return stack.issued.package(0)


@FUZZ
@given(data=st.data())
def test_a_mutated_package_is_never_valid(stack: Stack, package: dict[str, Any], data: st.DataObject) -> None:
    kind, mutated = data.draw(mutated_packages(package), label="mutation")
    assert_not_valid(
        stack.http.post("/v1/verifications", json={"package": mutated, "purpose": "模糊测试"}), kind
    )


@FUZZ
@given(data=st.data())
def test_random_and_mutated_ec1_codes_are_never_valid(
    stack: Stack, package: dict[str, Any], data: st.DataObject
) -> None:
    ec1 = Presentation.from_json(package).to_ec1()
    strategy = st.one_of(
        st.text(BASE45, max_size=300).map("EC1:".__add__),  # random Base45
        st.tuples(st.integers(4, len(ec1) - 1), st.sampled_from(BASE45))
        .map(  # one character changed
            lambda t: ec1[: t[0]] + t[1] + ec1[t[0] + 1 :]
        )
        .filter(lambda s: s != ec1),
        st.integers(4, len(ec1) - 1).map(lambda n: ec1[:n]),  # cut short
        st.binary(max_size=200).map(
            lambda b: "EC1:" + base45.b45encode(zlib.compress(b)).decode()
        ),  # not CBOR
    )
    code = data.draw(strategy, label="ec1")
    assert_not_valid(stack.http.post("/v1/verifications", json={"ec1": code, "purpose": "模糊测试"}), code)


def test_the_unmutated_package_is_still_valid(stack: Stack, package: dict[str, Any]) -> None:
    """The control: what the fuzzing mutated verifies."""
    response = stack.http.post("/v1/verifications", json={"package": package, "purpose": "模糊测试"})
    assert (response.status_code, response.json()["verdict"]) == (200, "VALID"), response.text[:500]


# ─── inputs that used to crash or 500 ────────────────────────────────────────────────────


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_deeply_nested_request_bodies_are_refused_and_the_node_survives(stack: Stack, depth: int) -> None:
    """py_ecc (imported by eth_account) raises the recursion limit to 100,000, deeper than the C
    stack: a body of 200,000 '[' once crashed the node (SIGSEGV). Without a key the body is not
    even parsed (401); with one it is refused as malformed."""
    for body in (b"[" * depth, b'{"purpose": "x", "package": ' + b"[" * depth):
        anonymous = httpx.post(
            f"{stack.node.url}/v1/verifications",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert anonymous.status_code == 401, anonymous.text[:300]
        response = stack.http.post(
            "/v1/verifications", content=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code in (400, 422), response.text[:300]
        assert response.headers["content-type"].startswith(PROBLEM)
    assert stack.alive()


@pytest.mark.parametrize("value", ["[" * 100_000, "[" * 50_000 + "]" * 50_000, '{"a":' * 50_000])
def test_a_deeply_nested_leaf_value_is_refused(stack: Stack, package: dict[str, Any], value: str) -> None:
    deep = copy.deepcopy(package)
    deep["leaves"][0]["value"] = value
    response = stack.http.post("/v1/verifications", json={"package": deep, "purpose": "模糊测试"})
    assert stack.alive()
    assert_not_valid(response, "deep leaf value")


def _with_surrogate_path(package: dict[str, Any]) -> bytes:
    raw = json.dumps(package).replace(f'"path": "{package["leaves"][0]["path"]}"', '"path": "\\ud800"', 1)
    assert "\\ud800" in raw
    return raw.encode()


def test_a_leaf_path_that_is_not_unicode_is_refused(stack: Stack, package: dict[str, Any]) -> None:
    """A lone surrogate in a path passes `FieldLeaf.from_json`; RFC 8785 (the receipt's request
    digest) cannot encode it: 400, not 500 (the request parser of /v1/verifications already
    refuses such a string as invalid JSON; the share endpoint finds it malformed later)."""
    raw = b'{"purpose": "x", "package": ' + _with_surrogate_path(package) + b"}"
    response = stack.http.post("/v1/verifications", content=raw, headers={"Content-Type": "application/json"})
    assert_problem_if_error(response)
    assert response.status_code == 400 and response.json()["code"] in ("JSON_INVALID", "CERT_MALFORMED"), (
        response.text
    )
    with httpx.Client(
        base_url=stack.node.url,
        headers={"Authorization": f"Bearer {stack.wallet}", "Content-Type": "application/json"},
    ) as wallet:
        raw = (
            b'{"holderRef": "h", "purpose": "x", "expiresInMinutes": 10, "presentation": '
            + _with_surrogate_path(package)
            + b"}"
        )
        assert_not_valid(wallet.post("/v1/shares", content=raw), "share with a surrogate path")


@pytest.mark.parametrize("where", ["index", "chainId"])
@pytest.mark.parametrize("value", [2**53, 2**64, 2**256 - 1, 2**256])
def test_integers_beyond_json_precision_are_refused(
    stack: Stack, package: dict[str, Any], where: str, value: int
) -> None:
    big = copy.deepcopy(package)
    (big["batch"] if where == "index" else big["registry"])[where] = value
    assert_not_valid(
        stack.http.post("/v1/verifications", json={"package": big, "purpose": "模糊测试"}), (where, value)
    )
    shown = Presentation.from_json(package).disclose(["holder.name", "validFrom", "validUntil"]).to_json()
    (shown["batch"] if where == "index" else shown["registry"])[where] = value
    with stack.node.client(stack.wallet) as wallet:
        created = wallet.post(
            "/v1/shares",
            json={"holderRef": "h", "presentation": shown, "purpose": "x", "expiresInMinutes": 10},
        )
    assert_not_valid(created, ("share", where, value))
    if created.status_code == 201:
        opened = httpx.get(created.json()["url"], headers={"Accept": "application/json"}, timeout=30)
        assert_not_valid(opened, ("share page", where, value))


def _bomb_png() -> bytes:
    """A PNG that claims 20,000 × 20,000 pixels in a few kilobytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (20_000, 20_000), 1).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_a_decompression_bomb_upload_is_refused(stack: Stack) -> None:
    """400 million pixels in 76 kB: PIL refuses to open it (DecompressionBombError), answered 400."""
    response = stack.http.post(
        "/v1/verifications/image",
        files={"file": ("bomb.png", _bomb_png(), "image/png")},
        data={"purpose": "模糊测试"},
    )
    assert stack.alive()
    assert_problem_if_error(response)
    assert (response.status_code, response.json()["code"]) == (400, "QR_UNREADABLE")
