"""Correction requests, for holders' wallets (issue 12, point 9; `issuer.corrections`). Public
(no API key): the holder proves possession with the full holder package (every salt) and their
holder code, then reads the agency's answer with the request's token, sent in a header (never in
a URL: paths end up in access logs). Failures count against the client address as for claims
(`ECERT_ISSUER_CLAIM_RATE_PER_MIN`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from issuer.api.deps import Runtime
from issuer.corrections import MAX_KEY, MAX_MESSAGE, CorrectionAlreadyOpen
from registry.errors import NotAuthorised, NotFound
from registry.problems import PROBLEM_JSON, problem

router = APIRouter(prefix="/v1/corrections", tags=["corrections"])

PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
RATE: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many failed requests from this address (RATE_LIMITED)", **PROBLEM}
}


class CorrectionIn(BaseModel):
    package: dict[str, Any] = Field(
        description="The full holder package as the wallet keeps it (as POST /v1/claims answered)"
    )
    holderCode: str = Field(
        max_length=18, description="The holder's ID number (or USCC) as the wallet knows it"
    )
    kind: Literal["field", "renewal"] = Field(
        description="field: a field is wrong; renewal: renew the certificate"
    )
    field: str | None = Field(
        None,
        max_length=200,
        description="The wrong field's path (holder.name, ext.address…); kind field only",
    )
    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE, description="What is wrong, in the holder's words"
    )


class CorrectionCreated(BaseModel):
    id: str = Field(examples=["cr_3q2Xb8m0Zt9KfV1wY7nQ4A"])
    token: str = Field(description="The secret to read the request with (X-Correction-Token), shown once")
    identifier: str
    kind: Literal["field", "renewal"]
    field: str | None
    status: Literal["open"]
    createdAt: str = Field(examples=["2026-12-04T08:00:00Z"])
    dueAt: str = Field(examples=["2026-12-05T08:00:00Z"])


class CorrectionOut(BaseModel):
    id: str
    identifier: str
    kind: Literal["field", "renewal"]
    field: str | None
    message: str
    status: Literal["open", "fixed", "refused"]
    createdAt: str
    dueAt: str
    answeredAt: str | None
    reason: str | None = Field(description="The agency's reason (refused) or note (fixed)")
    newIdentifier: str | None = Field(description="The renewed certificate (version + 1) when fixed")
    package: dict[str, Any] | None = Field(
        description="The renewed holder package, once fixed and confirmed on chain"
    )
    packagePending: bool = Field(
        description="Fixed, but the renewed certificate is still being anchored: ask again"
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _guarded(runtime: Any, address: str, subject: str, what: str) -> Callable[[], None]:
    """Failures are counted per client address AND what was asked about (one request id, one
    certificate): a wallet server asks for all its holders from one address, so one holder's
    failures must not lock the others out. A per-address cap ten times higher still stops a
    flood. Only refusals count (not found, not yours), never an ordinary 409 or 422."""
    keyed, flood = f"{address}|{subject}", address
    runtime.correction_limit.check(keyed, what=f"failed {what} about this from this address")
    runtime.correction_flood_limit.check(flood, what=f"failed {what} from this address")

    def spend() -> None:
        runtime.correction_limit.spend(keyed)
        runtime.correction_flood_limit.spend(flood)

    return spend


@router.post(
    "", status_code=201, response_model=None, summary="Ask the issuing agency to correct or renew a certificate (holder)",
    responses={201: {"model": CorrectionCreated, "description": "A new request, open until `dueAt`"},
               200: {"model": CorrectionCreated, "description": "A retry with the same Idempotency-Key: the first request"},
               403: {"description": "Not the holder of this certificate (CORRECTION_NOT_YOURS)", **PROBLEM},
               404: {"description": "Not the full holder package of a certificate issued here (CERT_NOT_FOUND)", **PROBLEM},
               409: {"description": "Superseded (CERT_SUPERSEDED: ask about the newest version), or a request about "
                     "the same is open (CORRECTION_ALREADY_OPEN, its id in `existingId`)", **PROBLEM},
               422: {"description": "Bad kind, field or message", **PROBLEM}, **RATE},
)  # fmt: skip
def create(
    body: CorrectionIn,
    runtime: Runtime,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=MAX_KEY,
                                                  description="Retry safely: the same key returns the first request")] = None,
) -> dict[str, Any] | JSONResponse:  # fmt: skip
    digest = body.package.get("digest") if isinstance(body.package, dict) else None
    spend = _guarded(runtime, _client(request), f"cert:{str(digest)[:66]}", "correction requests")
    try:
        made = runtime.corrections.create(body.package, body.holderCode, body.kind, body.field, body.message,
                                          idempotency_key)  # fmt: skip
    except CorrectionAlreadyOpen as exc:
        return problem(request, exc.code, exc.message, existingId=exc.existing_id)
    except (NotFound, NotAuthorised):
        spend()
        raise
    if not made.new:
        response.status_code = 200
    return made.to_json()


@router.get(
    "/{request_id}", response_model=CorrectionOut, summary="A correction request and the agency's answer (holder)",
    responses={200: {"description": "The request; with the renewed package once fixed and confirmed"},
               404: {"description": "No such request, or not this token (CORRECTION_NOT_FOUND)", **PROBLEM}, **RATE},
)  # fmt: skip
def read(
    request_id: Annotated[str, Path(max_length=40)],
    runtime: Runtime,
    request: Request,
    token: Annotated[
        str, Header(alias="X-Correction-Token", max_length=64, description="The request's token")
    ] = "",
) -> dict[str, Any]:
    spend = _guarded(runtime, _client(request), f"request:{request_id}", "correction reads")
    try:
        view, package = runtime.corrections.read(request_id, token)
    except NotFound:
        spend()
        raise
    return {**view.to_json(), "package": package,
            "packagePending": view.status == "fixed" and package is None}  # fmt: skip
