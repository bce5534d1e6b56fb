"""`/docs` and `/redoc` of the issuer and the verifier work with no internet: the pages name no
other host and every script, style sheet and icon they load is served by the service itself from
an installed package (issue 10, point 18). The wallet has no API docs. And the verifier's answers
that may carry personal data say no-store, no framing, no referrer."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from issuer.api import create_app as issuer_app
from registry.errors import NotAuthorised, NotFound
from verifier.api.app import create_app as verifier_app
from verifier.api.privacy import PRIVATE_JSON
from verifier.api.verifications import _answer

EXTERNAL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+", re.IGNORECASE)


class AppClient:
    """Requests straight to the ASGI app, no server (no lifespan: the apps here own no runtime)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def fetch() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app), base_url="http://node.test"
            ) as client:
                return await client.get(url, headers=headers)

        return asyncio.run(fetch())


class Resources(HTMLParser):
    """Every URL a page loads: src, href, and the spec and bundle URLs in its inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def _apps() -> dict[str, AppClient]:
    issuer = issuer_app(SimpleNamespace())  # the docs need no runtime
    verifier = verifier_app(SimpleNamespace(settings=SimpleNamespace(region="330000")))
    return {"issuer": AppClient(issuer), "verifier": AppClient(verifier)}


@pytest.mark.parametrize("service", ["issuer", "verifier"])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_name_no_other_host_and_their_assets_answer(service: str, page: str) -> None:
    client = _apps()[service]
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert EXTERNAL.findall(html) == [], f"{service}{page} loads from another host"
    parser = Resources()
    parser.feed(html)
    scripts = re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", html)  # the OpenAPI document
    loaded = parser.urls + scripts
    assert any(u.endswith(".js") for u in loaded) and "/openapi.json" in loaded
    for url in loaded:
        assert url.startswith("/"), url
        fetched = client.get(url)
        assert fetched.status_code == 200 and len(fetched.content) > 0, url
    if page == "/docs":
        oauth = client.get("/docs/oauth2-redirect")
        assert oauth.status_code == 200 and EXTERNAL.findall(oauth.text) == []


def test_the_wallet_has_no_api_docs() -> None:
    from wallet.app import create_app as wallet_app

    app = wallet_app(SimpleNamespace(settings=SimpleNamespace()))
    assert (app.docs_url, app.redoc_url, app.openapi_url) == (None, None, None)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith(("/docs", "/redoc", "/openapi"))]


def _headers_ok(headers, *, page: bool) -> None:
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert ("style-src 'unsafe-inline'" in csp) == page


def test_a_verification_answer_says_no_store_no_framing_no_referrer() -> None:
    result = SimpleNamespace(
        to_json=lambda: {"verdict": "VALID", "disclosed": {"holder.name": "张三"}}, http_status=200
    )
    response = _answer(result)
    _headers_ok(response.headers, page=False)
    assert sum(name == b"cache-control" for name, _ in response.raw_headers) == 1
    assert len(PRIVATE_JSON) == 4  # precomputed: appended as is on the hot path


def test_share_pages_and_json_answers_of_the_verifier_carry_the_private_headers() -> None:
    def no_share(token: str, code: str | None = None, identified: bool = True) -> None:
        raise NotFound("No such share", code="SHARE_NOT_FOUND")

    def refuse(token: str | None) -> None:
        raise NotAuthorised("An API key is required", code="AUTH_REQUIRED")

    runtime = SimpleNamespace(
        settings=SimpleNamespace(region="330000"),
        shares=SimpleNamespace(open=no_share),
        organisations=SimpleNamespace(authenticate=refuse),
    )
    client = AppClient(verifier_app(runtime))
    page = client.get("/s/some-token")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    _headers_ok(page.headers, page=True)
    as_json = client.get("/s/some-token", headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    _headers_ok(as_json.headers, page=True)
    refused = client.get("/v1/access-log")  # no key: a problem answer, private all the same
    assert refused.status_code == 401
    _headers_ok(refused.headers, page=False)
    docs = client.get("/docs")  # the docs keep their own (cacheable) headers
    assert "cache-control" not in docs.headers and "content-security-policy" not in docs.headers
