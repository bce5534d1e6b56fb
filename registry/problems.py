"""Every error the API answers is RFC 9457 problem+json with a stable `code`:

    {"type": "urn:ecert:problem:ID_CHECK_CHAR", "title": "The identifier's check character is wrong",
     "status": 422, "detail": "holder.code: …", "code": "ID_CHECK_CHAR", "field": "holder.code",
     "instance": "/v1/…"}

One renderer (`render`) for the one error root (`EcertError`); FastAPI's request validation and
Starlette's HTTP errors are translated into it, and anything else is a bare 500 `INTERNAL`.
The status and title come from the code (`registry.error_codes.ErrorCode`); only Starlette's HTTP
errors keep their own status. `document` writes the same shape, and every code, into the OpenAPI.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.error_codes import ErrorCode
from registry.errors import ChainError, ContractRevert, EcertError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class RateLimited(EcertError):
    code = ErrorCode.RATE_LIMITED


# Details safe to echo (never values: they may be personal data).
SAFE_DETAILS = ("field", "line", "position", "jobId", "scope", "reason", "errors")


def problem(
    request: Request,
    code: ErrorCode,
    detail: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem+json answer for `code`, with the code's status unless `status` is given."""
    status = code.status if status is None else status
    body = {
        "type": f"urn:ecert:problem:{code}",
        "title": code.title,
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
        "instance": request.url.path,
    }
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="ecert"'}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def render(request: Request, exc: EcertError) -> JSONResponse:
    """The one renderer of the one error root."""
    status = exc.code.status
    extra = {k: exc.details[k] for k in SAFE_DETAILS if k in exc.details}
    if isinstance(exc, ContractRevert):
        extra["error"] = exc.name
    detail = exc.message
    if status >= 500 and not isinstance(exc, ChainError):  # config, keystore: the log has the why
        log.error("%s: %s", exc.code, exc.message)
        detail = "The service cannot do this right now: its operator has been told (see the server log)"
    headers = {"Retry-After": str(exc.details.get("retryAfter", 1))} if isinstance(exc, RateLimited) else None
    return problem(request, exc.code, detail, headers=headers, **extra)


class RequestInvalid(EcertError):
    code = ErrorCode.REQUEST_INVALID


def field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "records", 3, "holder")` → `records[3].holder`; the source is dropped."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or (str(loc[0]) if loc else "body")


def from_validation(exc: RequestValidationError) -> EcertError:
    errors = list(exc.errors())
    if not errors:
        return RequestInvalid("The request is invalid", field="body")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return EcertError(
            "The body is not valid JSON: send a JSON object", code=ErrorCode.JSON_INVALID, field="body"
        )
    listed = [
        {"field": field_of(e.get("loc", ())), "message": e.get("msg", ""), "reason": e.get("type")}
        for e in errors[:20]
    ]
    field = listed[0]["field"]
    return RequestInvalid(
        f"{field}: {first.get('msg', 'invalid')}", field=field, reason=first.get("type"), errors=listed
    )


HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    400: ErrorCode.REQUEST_INVALID,
    413: ErrorCode.UPLOAD_TOO_LARGE,
}


def install(app: FastAPI) -> None:
    @app.exception_handler(EcertError)
    async def ecert_error(request: Request, exc: EcertError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
        detail = "No such resource: see /docs" if exc.status_code == 404 else str(exc.detail)
        return problem(request, code, detail, status=exc.status_code)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return problem(
            request, ErrorCode.JSON_TOO_DEEP, "The body is nested too deeply to be a certificate or request"
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, ErrorCode.INTERNAL, "Something went wrong on our side: it has been logged")

    document(app)


# What `problem` writes, for the OpenAPI: every code with its status and title in one table.
_DETAILS_SCHEMA: dict[str, Any] = {
    "field": {"type": "string", "description": "The field at fault, as a dotted path (`records[3].holder`)"},
    "line": {"type": "integer", "description": "The line of an uploaded file at fault"},
    "position": {"type": "integer", "description": "The record at fault, counted from 0"},
    "jobId": {"type": "string", "description": "The job that keeps this refusal"},
    "scope": {"type": "string", "description": "The scope the API key lacks"},
    "reason": {"type": "string", "description": "A finer reason (the validator's error type)"},
    "errors": {
        "type": "array",
        "description": "Every invalid field, up to 20 (REQUEST_INVALID)",
        "items": {
            "type": "object",
            "properties": {
                "field": {"type": "string"},
                "message": {"type": "string"},
                "reason": {"type": "string"},
            },
        },
    },
    "error": {"type": "string", "description": "The contract's custom error (CONTRACT_REVERTED)"},
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_schema() -> dict[str, Any]:
    """The `Problem` schema component: RFC 9457 with `code`, an enum of every `ErrorCode`."""
    table = "\n".join(f"| `{code}` | {code.status} | {code.title} |" for code in ErrorCode)
    return {
        "title": "Problem",
        "type": "object",
        "description": "An RFC 9457 problem (`application/problem+json`) with a stable `code`.",
        "required": ["type", "title", "status", "detail", "code", "instance"],
        "properties": {
            "type": {"type": "string", "description": "`urn:ecert:problem:` and the code"},
            "title": {"type": "string", "description": "The code's title"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status"},
            "detail": {"type": "string", "description": "What went wrong here, and what to do"},
            "code": {
                "type": "string",
                "enum": [str(code) for code in ErrorCode],
                "description": f"The stable code; its usual status and title:\n\n| code | status | title |\n"
                f"|---|---|---|\n{table}",
            },
            "instance": {"type": "string", "description": "The request's path"},
            **_DETAILS_SCHEMA,
        },
    }


_PROBLEM_BODY = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
_PAGE_BODY = {"text/html": {"schema": {"type": "string", "description": "A page naming the problem's code"}}}


def add_problems(spec: dict[str, Any], *, is_page: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """`spec` with the `Problem` schema and, on every operation, its problem responses: `4XX` and
    `5XX`, FastAPI's 422 (a problem here, not FastAPI's validation error) and any 4xx/5xx declared
    without a body. A response declared with its own body (a 503 report) is left as it is. The
    paths `is_page` picks answer people, so their problems are HTML pages naming the code."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problem_schema()
    validation_ref = "#/components/schemas/HTTPValidationError"
    for path, path_item in spec.get("paths", {}).items():
        body = copy.deepcopy(_PAGE_BODY if is_page is not None and is_page(path) else _PROBLEM_BODY)
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                content = response.get("content", {})
                fastapi_422 = (
                    content.get("application/json", {}).get("schema", {}).get("$ref") == validation_ref
                )
                if status[0] in "45" and (not content or fastapi_422):
                    response["content"] = body
            responses.setdefault(
                "4XX", {"description": "Refused: the problem says why (`code`)", "content": body}
            )
            responses.setdefault(
                "5XX", {"description": "Could not answer: the problem says why", "content": body}
            )
    if validation_ref not in json.dumps(spec):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


def document(app: FastAPI, *, is_page: Callable[[str], bool] | None = None) -> None:
    """Make `app.openapi()` document its problems (`add_problems`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problems(build(), is_page=is_page)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
