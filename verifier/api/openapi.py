"""The OpenAPI facts every route declares: who may call it (a security requirement) and the
problems it may answer. Documentation only: `verifier.api.deps` authenticates, and declaring the
scheme here costs a request nothing (no security dependency runs)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["API_KEY", "OPTIONAL_API_KEY", "answers", "declare_security"]

SCHEMES = {
    "bearerApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Your organisation's API key (`vk_…`, from the node's operator): "
        "`Authorization: Bearer vk_…`. Keys are rate limited (429 with Retry-After).",
    },
    "headerApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key, in `X-API-Key`, for clients that cannot set Authorization",
    },
}
API_KEY: dict[str, Any] = {"security": [{"bearerApiKey": []}, {"headerApiKey": []}]}
OPTIONAL_API_KEY: dict[str, Any] = {"security": [{"bearerApiKey": []}, {"headerApiKey": []}, {}]}

_WHY = {
    400: "The body is not JSON, or not the shape asked for",
    401: "No API key, or an unknown or revoked one (`AUTH_REQUIRED`, `AUTH_INVALID`): send `Authorization: Bearer <key>`",
    403: "Your key is of an organisation that may not call this (`SCOPE_MISSING`)",
    404: "Not found, or not yours (another organisation's looks the same)",
    410: "Gone: the share expired, was withdrawn or was used up",
    413: "The upload is too large",
    422: "The request is invalid: `field` and `errors` say what to change",
    429: "Too many requests for this key (`RATE_LIMITED`): wait `Retry-After` seconds",
    503: "The node cannot answer now (chain or index unavailable): retry later",
}


def answers(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """The problem answers of a route, each described for an integrator (`why` overrides a
    description: `answers(401, 404, s404="No such receipt of yours")`); `registry.problems`
    gives each the Problem schema."""
    return {s: {"description": why.get(f"s{s}", _WHY[s])} for s in statuses}


def declare_security(app: FastAPI) -> None:
    """Add the API-key schemes to `app`'s OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEMES)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
