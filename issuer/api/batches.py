"""Batches: many certificates of one type in one request, as JSON or as an uploaded file
(JSON Lines or CSV). Bad records are reported one by one in the job; the rest are issued."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from issuer.api.deps import Grants, IdempotencyKey, Issuing, Runtime
from issuer.api.jobs import accepted, submit_records
from issuer.api.schemas import TYPE_CODE, BatchRequest, JobResponse
from issuer.api.uploads import FORMATS, MAX_UPLOAD_BYTES, parse_upload
from registry.error_codes import ErrorCode
from registry.errors import EcertError

router = APIRouter(prefix="/v1/batches", tags=["batches"])

UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file", "typeCode"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "Records as JSON Lines (.jsonl) or CSV with dotted headers.",
        },
        "typeCode": {"type": "string", "description": TYPE_CODE.description},
        "typeName": {"type": "string"},
        "format": {
            "type": "string",
            "enum": list(FORMATS),
            "description": "Default: from the file name, else sniffed.",
        },
    },
}
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BatchRequest.model_json_schema(by_alias=True)},
            "multipart/form-data": {"schema": UPLOAD_SCHEMA},
        },
    }
}


def _json_body(raw: bytes) -> BatchRequest:
    try:
        return BatchRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


async def _upload(request: Request) -> tuple[str, str | None, list[dict[str, Any]]]:
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException as exc:
        raise EcertError(
            f"Unreadable multipart body: {exc.detail}", code=ErrorCode.UPLOAD_MALFORMED, field="file"
        ) from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise EcertError(
            "Attach the records as the multipart file field `file`",
            code=ErrorCode.FIELD_MISSING,
            field="file",
        )
    type_code = form.get("typeCode")
    if not isinstance(type_code, str) or not type_code.strip():
        raise EcertError(
            "Give the certificate type as the form field `typeCode`",
            code=ErrorCode.FIELD_MISSING,
            field="typeCode",
        )
    if (upload.size or 0) > MAX_UPLOAD_BYTES:
        raise EcertError(
            f"Uploads are limited to {MAX_UPLOAD_BYTES >> 20} MiB: split the file",
            code=ErrorCode.UPLOAD_TOO_LARGE,
            field="file",
        )
    raw = await upload.read()
    fmt, type_name = form.get("format"), form.get("typeName")
    records = await run_in_threadpool(
        parse_upload, raw, upload.filename, upload.content_type, fmt if isinstance(fmt, str) and fmt else None
    )
    return type_code.strip(), type_name if isinstance(type_name, str) and type_name else None, records


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    summary="Issue a batch (JSON or an uploaded JSONL/CSV file)",
    openapi_extra=OPENAPI_BODY,
)
async def submit_batch(
    request: Request,
    response: Response,
    caller: Issuing,
    runtime: Runtime,
    grants: Grants,
    key: IdempotencyKey,
) -> JobResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        type_code, type_name, records = await _upload(request)
        field = "file"
    elif kind == "application/json" or kind.endswith("+json"):
        body = _json_body(await request.body())
        type_code, type_name, records, field = body.type_code, body.type_name, body.records, "records"
    else:
        raise EcertError(
            "Send application/json ({typeCode, records}) or multipart/form-data (file, typeCode)",
            code=ErrorCode.MEDIA_TYPE_UNSUPPORTED, field="Content-Type",
        )  # fmt: skip
    job = await run_in_threadpool(
        submit_records, runtime, grants, caller, type_code, type_name, records, key, field=field
    )
    return accepted(response, job)
