"""Typed dependencies: the runtime, the caller (API key → agency and scopes), ownership of the
certificate or job a path names, the Idempotency-Key header and the certificate type."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from issuer.auth import Principal, authenticate
from issuer.runtime import IssuerRuntime
from registry.certificate.identifiers import parse_licence_id, parse_uscc
from registry.error_codes import ErrorCode
from registry.errors import ChainUnavailable, EcertError, IdentifierError, NotAuthorised, NotFound

log = logging.getLogger(__name__)


class AgencyForbidden(NotAuthorised):
    code = ErrorCode.AGENCY_FORBIDDEN


def get_runtime(request: Request) -> IssuerRuntime:
    runtime: IssuerRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[IssuerRuntime, Depends(get_runtime)]

_bearer = HTTPBearer(auto_error=False, description="An agency API key: `Authorization: Bearer ek_…`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same API key in `X-API-Key`")


def get_caller(
    runtime: Runtime,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    return authenticate(runtime.sessions, bearer.credentials if bearer else api_key)


Caller = Annotated[Principal, Depends(get_caller)]


def _scoped(scope: str) -> Callable[[Principal], Principal]:  # a dependency
    def dependency(caller: Caller) -> Principal:
        caller.require(scope)
        return caller

    dependency.__name__ = f"require_{scope}"
    return dependency


Issuing = Annotated[Principal, Depends(_scoped("issue"))]
StatusChanging = Annotated[Principal, Depends(_scoped("status"))]


def _forbidden(what: str) -> AgencyForbidden:
    return AgencyForbidden(f"{what} belongs to another agency: use that agency's API key")


def owned_certificate(
    identifier: Annotated[str, Path(description="The e-licence identifier (GB/T 36904).", max_length=120)],
    caller: Caller,
    runtime: Runtime,
) -> str:
    """The identifier, if the caller's agency issued it: 404 if no one did, 403 if another agency."""
    owner = runtime.service.owner_of(identifier)
    if owner is None:
        try:
            parse_licence_id(identifier)
        except IdentifierError as exc:
            raise IdentifierError(exc.message, code=exc.code, field="identifier") from None
        raise NotFound(f"No certificate {identifier} on this issuer", code=ErrorCode.CERT_NOT_FOUND)
    if owner != caller.agency_code:
        raise _forbidden(f"Certificate {identifier}")
    return identifier


def owned_job(job_id: Annotated[str, Path(max_length=64)], caller: Caller, runtime: Runtime) -> str:
    owner = runtime.service.job_owner(job_id)
    if owner is None:
        raise NotFound(f"No job {job_id}", code=ErrorCode.JOB_NOT_FOUND)
    if owner != caller.agency_code:
        raise _forbidden(f"Job {job_id}")
    return job_id


OwnedCertificate = Annotated[str, Depends(owned_certificate)]
OwnedJob = Annotated[str, Depends(owned_job)]


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Send the same key again to get the same job, never a duplicate.",
        ),
    ] = None,
) -> str | None:
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
        raise EcertError(
            "Idempotency-Key must be 1–200 printable characters",
            code=ErrorCode.IDEMPOTENCY_KEY_INVALID,
            field="Idempotency-Key",
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


class TypeGrants:
    """Whether an agency may issue a type, asked of the chain and remembered for a while, so
    that a type the agency was never granted is refused at once instead of failing to anchor."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self._ttl_s = ttl_s
        self._known: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def check(self, runtime: IssuerRuntime, agency_code: str, type_code: str) -> str:
        type_code = _type_code(type_code)
        key = (agency_code, type_code)
        with self._lock:
            if self._known.get(key, 0.0) > time.monotonic():
                return type_code
        try:
            granted = runtime.workspace.registry.is_granted(agency_code, type_code)
        except ChainUnavailable:  # the outbox keeps it until the chain is back
            log.warning("chain unreachable: accepting type %s for %s unchecked", type_code, agency_code)
            return type_code
        if not granted:
            raise EcertError(
                f"Agency {agency_code} is not granted type {type_code}: ask the regional authority to grant it",
                code=ErrorCode.TYPE_NOT_GRANTED, field="typeCode",
            )  # fmt: skip
        with self._lock:
            self._known[key] = time.monotonic() + self._ttl_s
        return type_code


def _type_code(text: str) -> str:
    if len(text) != 21 or not text[18:].isdigit():
        raise EcertError(
            f"typeCode {text[:40]!r} must be 21 characters: the defining authority's USCC + 3 digits",
            code=ErrorCode.TYPE_CODE_INVALID, field="typeCode",
        )  # fmt: skip
    try:
        parse_uscc(text[:18], strict=True)
    except IdentifierError as exc:
        raise EcertError(
            f"typeCode: {exc.message}", code=ErrorCode.TYPE_CODE_INVALID, field="typeCode", reason=exc.code
        ) from None
    return text


def get_grants(request: Request) -> TypeGrants:
    grants: TypeGrants = request.app.state.grants
    return grants


Grants = Annotated[TypeGrants, Depends(get_grants)]
