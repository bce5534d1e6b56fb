"""No body gives a 500: lone surrogates and invalid UTF-8 anywhere in any JSON or form body of the
issuer, the verifier node or the wallet are a 4xx problem (property tests over every route the
services' OpenAPI documents name, sent over HTTP with valid credentials, so the text reaches the
code behind authentication)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stack import Stack, csrf_of, http_holder, stack_for

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]

BROKEN_TEXT = st.sampled_from(
    ["\ud800", "\udfff", "a\udc00b", "\udc00\ud800", "名\ud83d"]
)  # lone or reversed halves
BROKEN_UTF8 = st.sampled_from(
    [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe4\xb8"]
)  # not UTF-8
FILLERS = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
EXAMPLES = settings(max_examples=6, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="module")
def holder(stack: Stack) -> Iterator[httpx.Client]:
    client = http_holder(stack, stack.person())
    yield client
    client.close()


def _clients(stack: Stack, holder: httpx.Client) -> dict[str, httpx.Client]:
    return {
        "issuer": stack.issuer_client(),
        "verifier": httpx.Client(
            base_url=stack.verifier.url, headers={"Authorization": f"Bearer {stack.bank_key}"}, timeout=30
        ),
        "wallet": holder,
    }


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with `$ref`s and a first `anyOf`/`allOf` branch followed (enough to name fields)."""
    for _ in range(10):
        if "$ref" in schema:
            node: Any = spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        elif "anyOf" in schema or "allOf" in schema:
            branches = [b for b in schema.get("anyOf", schema.get("allOf", [])) if b.get("type") != "null"]
            schema = branches[0] if branches else {}
        else:
            break
    return schema


def _routes(spec: dict[str, Any], media: str) -> list[tuple[str, str, list[str]]]:
    """(method, path with its parameters filled, field names) of every operation taking `media`."""
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if media not in content:
                continue
            schema = _schema(spec, content[media].get("schema", {}))
            fields = list(schema.get("properties", {})) or ["value"]
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path), fields))
    return found


def _assert_refused(response: httpx.Response, route: str) -> None:
    assert 400 <= response.status_code < 500, f"{route}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), (
        f"{route}: {response.headers['content-type']}"
    )


def _wallet_spec() -> dict[str, Any]:
    """The wallet publishes no OpenAPI document (its pages are not an API): made from its routers."""
    from fastapi.openapi.utils import get_openapi

    from wallet.routes import access, accounts, api, certificates, preferences, shares

    routes = [
        route
        for module in (accounts, certificates, shares, access, preferences, api)
        for route in module.router.routes
    ]
    return get_openapi(title="ecert wallet", version="1", routes=routes)


def _every_route(
    stack: Stack, holder: httpx.Client, media: str
) -> list[tuple[httpx.Client, str, str, list[str]]]:
    out = []
    for name, client in _clients(stack, holder).items():
        spec = _wallet_spec() if name == "wallet" else client.get("/openapi.json").json()
        out += [(client, method, path, fields) for method, path, fields in _routes(spec, media)]
    assert out, f"no route takes {media}"
    return out


@EXAMPLES
@given(text=BROKEN_TEXT, raw=BROKEN_UTF8)
def test_broken_unicode_in_any_json_body_is_a_4xx(
    stack: Stack, holder: httpx.Client, text: str, raw: bytes
) -> None:
    headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf_of(holder.get("/certificates").text)}
    for client, method, path, fields in _every_route(stack, holder, "application/json"):
        escaped = json.dumps(dict.fromkeys(fields, text)).encode()  # "\ud800": valid JSON, invalid Unicode
        literal = b'{"' + fields[0].encode() + b'": "' + raw + b'"}'  # bytes that are not UTF-8 at all
        for body in (escaped, literal):
            _assert_refused(client.request(method, path, content=body, headers=headers), f"{method} {path}")


def _wallet_forms() -> list[tuple[str, str, list[str]]]:
    """Every page form of the wallet (they read `request.form()` themselves, so OpenAPI does not
    name their fields): each POST route, with the fields its templates post."""
    from fastapi.routing import APIRoute

    from wallet.routes import access, accounts, certificates, preferences, shares

    fields = [
        "name",
        "id_number",
        "password",
        "password_confirm",
        "code",
        "purpose",
        "fields",
        "expiry",
        "lang",
    ]
    return [(
        "POST", re.sub(r"\{[^}]+\}", "x", route.path), fields)
        for module in (accounts, certificates, shares, access, preferences) for route in module.router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    ]  # fmt: skip


@EXAMPLES
@given(text=BROKEN_TEXT, raw=BROKEN_UTF8)
def test_broken_unicode_in_any_form_body_is_a_4xx(
    stack: Stack, holder: httpx.Client, text: str, raw: bytes
) -> None:
    forms = _wallet_forms()
    assert len(forms) >= 6, forms
    for method, path, fields in forms:
        token = csrf_of(holder.get("/certificates").text)
        for value in (quote_from_bytes(text.encode("utf-8", "surrogatepass")), quote_from_bytes(raw)):
            body = "&".join([f"csrf_token={token}", *(f"{field}={value}" for field in fields)])
            answer = holder.request(
                method,
                path,
                content=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            _assert_refused(answer, f"{method} {path}")
            assert answer.status_code != 303, f"{method} {path} accepted broken text"
