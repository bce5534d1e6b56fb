"""POST /v1/verifications: a holder package, an `EC1:` string (or its link `<node>/v#EC1:…`), a
share link of another node, or a QR photo. Valid and invalid answer 200 with the report and a signed receipt; a check that
could not run answers 503 with the partial report; malformed input is a 4xx problem."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any, NamedTuple

import orjson
import rfc8785
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.certificate.links import read_scanned
from registry.certificate.presentation import Presentation
from registry.error_codes import ErrorCode
from registry.errors import CertificateError
from registry.jsonbytes import JSONBytesResponse
from registry.qr import decode_qr
from verifier.api.deps import CallerDep, Runtime, token
from verifier.api.openapi import API_KEY, answers
from verifier.api.privacy import PRIVATE_JSON
from verifier.api.schemas import VerificationOut
from verifier.inputs import presentation_from_text
from verifier.orgs import Caller
from verifier.receipts import digest_request
from verifier.remote import fetch_shared_presentation
from verifier.runtime import VerifierRuntime
from verifier.service import Verification, Who

PATH = "/v1/verifications"
router = APIRouter(prefix=PATH, tags=["verifications"])
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# No NUL in a purpose: the hot route skips `RefuseBrokenText`, and the multipart route is not a
# body it reads; PostgreSQL refuses the entry, and with it every later batch of the access log
NO_NUL = r"^[^\x00]*$"
PURPOSE_MAX, EC1_MAX = 200, 16_384


class VerificationRequest(BaseModel):
    """Exactly one of `package`, `ec1`, `shareUrl`."""

    package: dict[str, Any] | None = Field(None, description="A holder package or disclosure (JSON)")
    ec1: str | None = Field(
        None, description="An offline QR payload, EC1:…, or its link <node>/v#EC1:…", max_length=EC1_MAX
    )
    shareUrl: str | None = Field(None, description="A share link of a trusted node of another region")
    purpose: str = Field(
        ...,
        min_length=1,
        max_length=PURPOSE_MAX,
        pattern=NO_NUL,
        description="Why you verify (shown to the holder)",
    )
    at: dt.datetime | None = Field(None, description="Verify as of this moment (from the index history)")


def request_digest(presentation: Presentation) -> bytes:
    """What the receipt commits to (`digest_request`). A package RFC 8785 cannot encode (an integer
    beyond 2**53, a lone surrogate in a path) is no certificate anyone could check: malformed."""
    try:
        return digest_request(presentation)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise CertificateError(f"Not a canonical JSON package: {exc}", code=ErrorCode.CERT_MALFORMED) from exc


def _answer(result: Verification) -> JSONResponse:
    response = JSONBytesResponse(result.to_json(), status_code=result.http_status)
    response.raw_headers.extend(
        PRIVATE_JSON
    )  # the report carries the disclosed fields: no-store, no framing, no referrer
    return response


class _Body(NamedTuple):
    """A request as the hot route reads it: `VerificationRequest`'s fields."""

    package: dict[str, Any] | None
    ec1: str | None
    shareUrl: str | None
    purpose: str
    at: dt.datetime | None


_USUAL_KEYS = frozenset(("package", "ec1", "shareUrl", "purpose"))


def _read_request(raw: bytes) -> VerificationRequest | _Body:
    """Parse and validate the body in one pass: the hot path skips FastAPI's generic body
    handling, which cost more than the verification's own checks. The usual body (no `at`) is
    read by orjson and held to the model's limits here, at under half the model's cost; any other
    body, and every invalid one, goes through the model (pydantic's parser, in Rust), whose
    errors are the answer."""
    usual = _usual_body(raw)
    if usual is not None:
        return usual
    try:
        return VerificationRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def _usual_body(raw: bytes) -> _Body | None:
    """The body if it is an object of `_USUAL_KEYS` the model would take as it is, else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= _USUAL_KEYS:
        return None
    package, ec1, share_url, purpose = (
        data.get("package"),
        data.get("ec1"),
        data.get("shareUrl"),
        data.get("purpose"),
    )
    if (
        type(purpose) is str and 1 <= len(purpose) <= PURPOSE_MAX and "\x00" not in purpose
        and (package is None or type(package) is dict)
        and (ec1 is None or (type(ec1) is str and len(ec1) <= EC1_MAX))
        and (share_url is None or type(share_url) is str)
    ):  # fmt: skip
        return _Body(package, ec1, share_url, purpose, None)
    return None


_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": VerificationRequest.model_json_schema()}},
    },
    "parameters": [
        {
            "name": "authorization",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "Bearer <API key>",
        },
        {
            "name": "x-api-key",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "or the API key alone",
        },
    ],
}


class DirectRoute:
    """ASGI, in place of the app's router: `POST /v1/verifications` goes straight to `verify`,
    anything else to the router. FastAPI's routing cost 8% of a verification; the app's
    middleware and exception handlers still wrap this route like every other."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == scope.get("root_path", "") + PATH
        ):
            response = await verify(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def verify(request: Request) -> JSONResponse:
    """CPU-bound and short (about a millisecond, no I/O when the index is fresh): run on the event
    loop rather than hopping to a thread; a share link of another node is fetched in a thread."""
    rt: VerifierRuntime = request.app.state.runtime
    who = rt.organisations.authenticate(
        token(request.headers.get("authorization"), request.headers.get("x-api-key"))
    )
    body = _read_request(await request.body())
    given = [name for name in ("package", "ec1", "shareUrl") if getattr(body, name)]
    if len(given) != 1:
        raise CertificateError(
            "Send exactly one of package, ec1, shareUrl", code=ErrorCode.REQUEST_INVALID, field="body"
        )
    remote = None
    if body.package is not None:
        presentation = Presentation.from_json(body.package)
    elif body.ec1 is not None:
        presentation = presentation_from_text(body.ec1)
    else:
        assert body.shareUrl is not None  # the one of the three that was given
        remote = await run_in_threadpool(
            fetch_shared_presentation, body.shareUrl, rt.settings.trusted_nodes, rt.settings.node_key
        )
        presentation = remote.presentation
    at = body.at if body.at is None or body.at.tzinfo else body.at.replace(tzinfo=dt.UTC)
    run = partial(
        rt.service.verify, presentation, who=_who(rt, who), purpose=body.purpose, channel="api",
        request_digest=request_digest(presentation), at=at, remote=remote,
    )  # fmt: skip
    if rt.history.batch(presentation.batch_root) is not None:
        return _answer(run())  # the index knows the batch: no I/O, stay on the event loop
    return _answer(await run_in_threadpool(run))  # may ask the chain: never block the loop with it


INDETERMINATE = {"description": "Could not verify (a check could not run, e.g. the chain is unreachable): "
                 "the partial report, verdict ERROR, never valid. Retry later.", "model": VerificationOut}  # fmt: skip
DECIDED = {"description": "Verified: `verdict` is VALID or INVALID (an invalid certificate is an answer, "
           "not an error). `disclosed` has the values checked; `receipt`, signed by this node, covers "
           "them (`disclosedDigest`): keep both.", "model": VerificationOut}  # fmt: skip
ANSWERS = {200: DECIDED, 503: INDETERMINATE, **answers(400, 401, 422, 429)}
# Documented here; `DirectRoute` answers it (the router only would if it were not installed).
router.add_api_route(
    "",
    verify,
    methods=["POST"],
    summary="Verify a certificate",
    description="Send exactly one of `package` (a holder package or disclosure, JSON), `ec1` (a QR "
    "payload or its link) or `shareUrl` (a share link of a trusted node of another region), and "
    "why you verify (`purpose`, shown to the holder).",
    openapi_extra={**_OPENAPI, **API_KEY},
    response_model=None,
    responses=ANSWERS,
)


@router.post(
    "/image", summary="Verify the QR code in a photo", response_model=None, openapi_extra=API_KEY,
    description="A PNG or JPEG (up to 5 MB) of a certificate's QR code: an EC1 code, its verification link, or a share link.",
    responses={**ANSWERS, **answers(413)},
)  # fmt: skip
def verify_image(
    rt: Runtime,
    who: CallerDep,
    file: Annotated[UploadFile, File(description="A PNG or JPEG with the certificate's QR code")],
    purpose: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
) -> JSONResponse:
    raw = file.file.read(MAX_IMAGE_BYTES + 1)
    if len(raw) > MAX_IMAGE_BYTES:
        raise CertificateError("The image is larger than 5 MB", code=ErrorCode.UPLOAD_TOO_LARGE, field="file")
    payload = decode_qr(raw)[0]
    remote = None
    scanned = read_scanned(payload) if payload.startswith(("http://", "https://")) else None
    if scanned is not None and scanned.share_url is not None:  # a share link: its node has the disclosure
        remote = fetch_shared_presentation(scanned.share_url, rt.settings.trusted_nodes, rt.settings.node_key)
        presentation = remote.presentation
    else:  # an EC1: code, bare or in a verification link's fragment, or a package's JSON
        presentation = presentation_from_text(payload)
    result = rt.service.verify(
        presentation,
        who=_who(rt, who),
        purpose=purpose,
        channel="qr",
        request_digest=request_digest(presentation),
        remote=remote,
    )
    return _answer(result)


def _who(rt: VerifierRuntime, caller: Caller) -> Who:
    """The calling organisation; with its id (so its receipt is kept) only if the node keeps them."""
    kept = caller.organisation_id if rt.settings.keep_api_receipts else None
    return Who(caller.name, caller.region, organisation_id=kept)
