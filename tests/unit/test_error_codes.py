"""One registry of error codes (issue 10, point 22): `ErrorCode` gives every code its HTTP status
and title; every code the sources raise is a member, written as one (never a bare string); each
service's OpenAPI documents every code in its `Problem` schema and a problem answer on every
operation; a problem's status and title are its code's."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from issuer.api import create_app as issuer_app
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotFound
from registry.problems import PROBLEM_JSON, install
from verifier.api.app import create_app as verifier_app
from wallet.app import create_app as wallet_app

ROOT = Path(__file__).parents[2]
PACKAGES = ("registry", "issuer", "verifier", "wallet")
UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{3,}")
CODE_NAMES = {"code", "unavailable_code"}  # a keyword or class attribute that holds an error code


def _sources() -> list[Path]:
    return [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def _code_sites() -> list[tuple[str, ast.expr]]:
    """Every `code=` keyword and `code = ` class attribute in the sources: (where, value)."""
    sites = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg in CODE_NAMES]
            elif isinstance(node, ast.ClassDef):
                values = [
                    s.value
                    for s in node.body
                    if isinstance(s, ast.Assign | ast.AnnAssign)
                    and s.value is not None
                    and any(isinstance(t, ast.Name) and t.id in CODE_NAMES for t in (s.targets if isinstance(s, ast.Assign) else [s.target]))
                ]  # fmt: skip
            else:
                continue
            sites += [(f"{path.relative_to(ROOT)}:{v.lineno}", v) for v in values]
    return sites


def test_codes_are_unique_named_by_their_value_with_a_status_and_a_title() -> None:
    values = [code.value for code in ErrorCode]
    assert len(values) == len(set(values)) and len(values) == len(ErrorCode.__members__)  # no aliases
    for name, code in ErrorCode.__members__.items():
        assert code.value == name and UPPER_SNAKE.fullmatch(name), name  # compares and stores as its name
        assert isinstance(code.status, int) and 400 <= code.status <= 599, name
        assert isinstance(code.title, str) and code.title.strip() and "\n" not in code.title, name


def test_every_code_in_the_sources_is_a_member_written_as_one() -> None:
    sites = _code_sites()
    assert len(sites) > 150  # the scan sees the raise sites
    strings = [
        (where, v.value)
        for where, v in sites
        if isinstance(v, ast.Constant) and isinstance(v.value, str) and UPPER_SNAKE.fullmatch(v.value)
    ]
    assert strings == [], "write ErrorCode.X, not a string (add the code to registry/error_codes.py)"
    unknown = [
        (where, v.attr)
        for where, v in sites
        if isinstance(v, ast.Attribute)
        and isinstance(v.value, ast.Name)
        and v.value.id == "ErrorCode"
        and v.attr not in ErrorCode.__members__
    ]
    assert unknown == []


def test_an_error_takes_its_code_from_the_registry() -> None:
    assert NotFound("x", code=ErrorCode.JOB_NOT_FOUND).code is ErrorCode.JOB_NOT_FOUND
    assert NotFound("x").code is ErrorCode.NOT_FOUND
    with pytest.raises(KeyError, match="NOT_A_CODE"):
        EcertError("x", code="NOT_A_CODE")  # type: ignore[arg-type]
    assert ErrorCode.of("CLAIM_EXPIRED", ErrorCode.REQUEST_REFUSED) is ErrorCode.CLAIM_EXPIRED
    assert ErrorCode.of("FROM_A_NEWER_NODE", ErrorCode.REQUEST_REFUSED) is ErrorCode.REQUEST_REFUSED
    assert ErrorCode.of(None, ErrorCode.SHARE_NOT_FOUND) is ErrorCode.SHARE_NOT_FOUND


def test_every_wallet_error_text_is_of_a_code() -> None:
    for lang in ("zh", "en"):
        table = json.loads((ROOT / "wallet" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        keyed = {key.removeprefix("error.") for key in table if key.startswith("error.")} - {
            "GENERIC",
            "title",
        }
        assert keyed and keyed <= set(ErrorCode.__members__), keyed - set(ErrorCode.__members__)


def _apps() -> dict[str, FastAPI]:
    return {
        "issuer": issuer_app(SimpleNamespace()),  # the OpenAPI needs no runtime
        "verifier": verifier_app(SimpleNamespace(settings=SimpleNamespace(region="330000"))),
        "wallet": wallet_app(SimpleNamespace(settings=SimpleNamespace(cookie_secure=None))),
    }


@pytest.mark.parametrize("service", ["issuer", "verifier", "wallet"])
def test_the_openapi_documents_every_code_and_a_problem_on_every_operation(service: str) -> None:
    spec = _apps()[service].openapi()
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "instance"} <= set(problem["required"])
    code = problem["properties"]["code"]
    assert code["enum"] == [c.value for c in ErrorCode]
    for member in ErrorCode:  # the table: code, status, title
        assert f"| `{member}` | {member.status} | {member.title} |" in code["description"]
    assert "HTTPValidationError" not in json.dumps(spec)  # a 422 here is a problem, not FastAPI's shape
    ref = {"$ref": "#/components/schemas/Problem"}
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 10
    for path, method, op in operations:
        responses = op["responses"]
        assert {"4XX", "5XX"} <= set(responses), f"{method} {path}"
        for status in ("4XX", "5XX"):
            content = responses[status]["content"]
            if service == "wallet" and not path.startswith("/api/"):
                assert "text/html" in content, f"{method} {path}: a page answers a problem as a page"
            else:
                assert content == {PROBLEM_JSON: {"schema": ref}}, f"{method} {path}"
        for status, response in responses.items():
            if status[0] in "45" and status not in ("4XX", "5XX"):
                assert response.get("content"), f"{method} {path} {status} has no body"


def test_the_verifier_documents_its_503_report_apart_from_problems() -> None:
    spec = _apps()["verifier"].openapi()
    for path in ("/v1/verifications", "/v1/verifications/image"):
        assert "application/json" in spec["paths"][path]["post"]["responses"]["503"]["content"]
    assert "application/json" in spec["paths"]["/healthz"]["get"]["responses"]["503"]["content"]


def _problem_of(code: ErrorCode) -> httpx.Response:
    app = FastAPI()
    install(app)

    @app.get("/boom")
    def boom() -> None:
        raise EcertError("what went wrong", code=code)

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/boom")

    return asyncio.run(fetch())


@pytest.mark.parametrize(
    "code",
    [ErrorCode.CLAIM_EXPIRED, ErrorCode.CERT_MALFORMED, ErrorCode.SHARE_NOT_FOUND, ErrorCode.BATCH_CORRUPT],
)
def test_a_problem_has_its_codes_status_and_title(code: ErrorCode) -> None:
    answer = _problem_of(code)
    body = answer.json()
    assert answer.status_code == code.status and answer.headers["content-type"] == PROBLEM_JSON
    assert body["status"] == code.status and body["title"] == code.title and body["code"] == code.value
    assert body["type"] == f"urn:ecert:problem:{code}" and body["instance"] == "/boom"
