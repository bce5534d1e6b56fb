"""The verifier's OpenAPI document is one an integrator can build on (issue 11, point 11): every
operation says what it answers (a schema for its success), who may call it (a security
requirement on every route that needs an API key, with the schemes declared), and its problem
answers (401, 403, 404, 410, 422, 429, 503 where they can happen), each a `Problem`."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from verifier.api.app import create_app

PROBLEM_REF = "#/components/schemas/Problem"
PUBLIC = {("GET", "/v1/receipt-key"), ("POST", "/v1/receipts/verify"), ("GET", "/healthz"), ("GET", "/v"), ("POST", "/v")}  # fmt: skip
OPTIONAL_KEY = {("GET", "/s/{token}")}
# what each keyed operation may answer besides its success, at the least
KEYED_PROBLEMS = {401, 422, 429, 503}
ALSO = {
    ("GET", "/v1/receipts/{receipt_id}"): {404},
    ("GET", "/v1/receipts/{receipt_id}.pdf"): {404},
    ("GET", "/s/{token}"): {401, 404, 410},
    ("GET", "/v1/shares/{token}/presentation"): {403, 404, 410},
    ("POST", "/v1/shares"): {403},
    ("GET", "/v1/holdings"): {403},
    ("POST", "/v1/access-log/remote"): {403},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app = create_app(SimpleNamespace(settings=SimpleNamespace(region="330000")))  # type: ignore[arg-type]

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node.test"
        ) as client:
            return await client.get("/openapi.json")

    response = asyncio.run(fetch())
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if not path.startswith("/desk")  # the front desk's pages: people, signed in by cookie
    ]


def test_the_api_key_schemes_are_declared(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerApiKey"] == {**schemes["bearerApiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["headerApiKey"]["in"] == "header" and schemes["headerApiKey"]["name"] == "X-API-Key"


def test_every_operation_documents_its_success_with_a_schema(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        ok = next((op["responses"][s] for s in ("200", "201") if s in op["responses"]), None)
        assert ok is not None, f"{method} {path}: no success answer"
        assert ok.get("description"), f"{method} {path}: success undescribed"
        content = ok.get("content", {})
        assert content and all(media.get("schema") for media in content.values()), (
            f"{method} {path}: success without a schema: {ok}"
        )
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            assert (schema != {} and schema.get("type") != "object") or schema.get("properties"), (
                f"{method} {path}: a bare object is no response model"
            )


def test_every_keyed_operation_declares_its_security(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        security = op.get("security")
        if (method, path) in PUBLIC:
            assert not security, f"{method} {path} needs no key"
        elif (method, path) in OPTIONAL_KEY:
            assert {} in security and {"bearerApiKey": []} in security
        else:
            assert security and {"bearerApiKey": []} in security and {"headerApiKey": []} in security, (
                f"{method} {path}: no security requirement"
            )


def test_every_keyed_operation_documents_its_problems_as_problems(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        if (method, path) in PUBLIC:
            continue
        expected = KEYED_PROBLEMS | ALSO.get((method, path), set())
        responses = op["responses"]
        for status in expected:
            answer = responses.get(str(status))
            assert answer is not None, f"{method} {path}: {status} undocumented"
            assert answer["description"] and len(answer["description"]) > 10
            if status != 503 or "application/problem+json" in answer.get("content", {}):
                assert answer["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}, (
                    f"{method} {path}: {status} is not a Problem"
                )


def test_a_verification_answer_documents_the_disclosed_values_and_the_receipt(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    answer = schemas["VerificationOut"]["properties"]
    assert {"verdict", "checks", "disclosed", "receipt", "receiptId"} <= set(answer)
    assert "disclosedDigest" in schemas["ReceiptBody"]["properties"]
    ok = spec["paths"]["/v1/verifications"]["post"]["responses"]
    assert ok["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/VerificationOut"
    }
    assert ok["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/VerificationOut"
    }
