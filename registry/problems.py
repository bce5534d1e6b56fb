"""Every error the API answers is RFC 9457 problem+json with a stable `code`:

    {"type": "urn:ecert:problem:ID_CHECK_CHAR", "title": "Unprocessable Content", "status": 422,
     "detail": "holder.code: …", "code": "ID_CHECK_CHAR", "field": "holder.code", "instance": "/v1/…"}

One renderer (`render`) for the one error root (`EcertError`); FastAPI's request validation and
Starlette's HTTP errors are translated into it, and anything else is a bare 500 `INTERNAL`.
The status comes from the code when it has its own, else from the error's class.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    CertificateError,
    ChainError,
    ChainUnavailable,
    ConfigError,
    Conflict,
    ContractRevert,
    EcertError,
    IdentifierError,
    KeystoreError,
    NotAuthorised,
    NotFound,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    "AUTH_REQUIRED": 401,
    "RATE_LIMITED": 429,
    "CERT_MALFORMED": 400,
    "QR_UNREADABLE": 400,
    "AUTH_INVALID": 401,
    "JSON_INVALID": 400,
    "UPLOAD_MALFORMED": 400,
    "IDEMPOTENCY_KEY_INVALID": 400,
    "CLAIM_EXPIRED": 410,
    "UPLOAD_TOO_LARGE": 413,
    "BATCH_TOO_LARGE": 413,
    "MEDIA_TYPE_UNSUPPORTED": 415,
    "BATCH_CORRUPT": 500,
    "METHOD_NOT_ALLOWED": 405,
}


class RateLimited(EcertError):
    code = "RATE_LIMITED"


# First match wins: subclasses before their parents.
STATUS_BY_CLASS: tuple[tuple[type[EcertError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (NotAuthorised, 403),
    (RateLimited, 429),
    (ChainUnavailable, 503),
    (ContractRevert, 409),
    (ChainError, 502),
    (ConfigError, 500),
    (KeystoreError, 500),
    (CertificateError, 422),
    (IdentifierError, 422),
    (EcertError, 422),
)
# Details safe to echo (never values: they may be personal data).
SAFE_DETAILS = ("field", "line", "position", "jobId", "scope", "reason", "errors")


def status_for(exc: EcertError) -> int:
    """The HTTP status of an error: by its code when it has its own, else by its class."""
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    return next(status for cls, status in STATUS_BY_CLASS if isinstance(exc, cls))


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"urn:ecert:problem:{code}",
        "title": HTTPStatus(status).phrase,
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
    status = status_for(exc)
    extra = {k: exc.details[k] for k in SAFE_DETAILS if k in exc.details}
    if isinstance(exc, ContractRevert):
        extra["error"] = exc.name
    detail = exc.message
    if status >= 500 and not isinstance(exc, ChainError):  # config, keystore: the log has the why
        log.error("%s: %s", exc.code, exc.message)
        detail = "The service cannot do this right now: its operator has been told (see the server log)"
    headers = {"Retry-After": str(exc.details.get("retryAfter", 1))} if isinstance(exc, RateLimited) else None
    return problem(request, status, exc.code, detail, headers=headers, **extra)


class RequestInvalid(EcertError):
    code = "REQUEST_INVALID"


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
        return EcertError("The body is not valid JSON: send a JSON object", code="JSON_INVALID", field="body")
    listed = [
        {"field": field_of(e.get("loc", ())), "message": e.get("msg", ""), "reason": e.get("type")}
        for e in errors[:20]
    ]
    field = listed[0]["field"]
    return RequestInvalid(
        f"{field}: {first.get('msg', 'invalid')}", field=field, reason=first.get("type"), errors=listed
    )


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "REQUEST_INVALID", 413: "UPLOAD_TOO_LARGE"}


def install(app: FastAPI) -> None:
    @app.exception_handler(EcertError)
    async def ecert_error(request: Request, exc: EcertError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        detail = "No such resource: see /docs" if exc.status_code == 404 else str(exc.detail)
        return problem(request, exc.status_code, code, detail)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return problem(
            request, 400, "JSON_TOO_DEEP", "The body is nested too deeply to be a certificate or request"
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "INTERNAL", "Something went wrong on our side: it has been logged")
