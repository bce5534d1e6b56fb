"""The console's upload (issue 12, point 3): a clerk issues many certificates of one type from a
CSV (dotted headers), JSON Lines or JSON file — read by `issuer.api.uploads` and submitted by
`issuer.api.jobs.submit_records`, exactly as `POST /v1/batches` does — then watches the job on
its page: a `<progress>` bar a small local script refreshes from the job's JSON (the page reloads
itself without script), and the refused rows, downloadable as CSV.

Row numbers count DATA rows: 1 is the first record after the CSV header line (JSON Lines: the
first record; blank lines are not counted in either), which is the intake's record position.

* GET  /console/upload, POST            — the form; the POST makes the job (clerk, admin)
* GET  /console/jobs/{id}               — the job: progress and its refused rows (every role)
* GET  /console/jobs/{id}.json          — its progress, for the page's script (every role)
* GET  /console/jobs/{id}/errors.csv    — its refused rows as CSV (every role)
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from issuer.api.console import PAGE_CSP, SignedIn, console_router, lang_of, render, require_role
from issuer.api.console_certificates import audit_log
from issuer.api.jobs import MAX_RECORDS, submit_records
from issuer.api.uploads import MAX_UPLOAD_BYTES, parse_upload
from issuer.audit import AuditAction
from issuer.auth import Principal
from issuer.console_text import CONSOLE
from issuer.models import AuditLogEntry
from issuer.service import JobView
from issuer.staff import Role, SignedInStaff
from registry.certificate.labels import type_name
from registry.certificate.types import TYPE_NAMES
from registry.error_codes import ErrorCode
from registry.errors import EcertError

__all__ = ["errors_csv", "install", "progress", "router"]

SCRIPT = Path(__file__).parents[1] / "static" / "console_upload.js"
STYLESHEET = Path(__file__).parents[1] / "static" / "console_upload.css"
SHOWN_ERRORS = 200  # refused rows on the page; the CSV has them all
JOB_ID = re.compile(r"[0-9a-f]{8,64}")
REFRESH_S = 3  # the page's own reload, without script
# the job page runs its own script and reads its JSON: nothing else is allowed
JOB_PAGE_CSP = PAGE_CSP + "; script-src 'self'; connect-src 'self'"
ROW_HEADERS = {
    "zh": ["row 数据行号（1 = CSV 表头行之后的第一条记录；JSONL 为第一条记录；空行不计）", "field 字段", "code 代码",
           "message 说明"],
    "en": ["row (data row: 1 = the first record after the CSV header line; JSONL: the first record; blank lines"
           " not counted)", "field", "code", "message"],
}  # fmt: skip

router = console_router(tags=["console"])
Uploader = Annotated[SignedInStaff, Depends(require_role(Role.CLERK, Role.ADMIN))]


def install(app: FastAPI) -> None:
    app.include_router(router)


def _page(
    request: Request, template: str, signed: SignedInStaff, status: int = 200, **context: Any
) -> HTMLResponse:
    lang = lang_of(request)
    return render(request, template, signed, status, type_name=lambda code: type_name(code, lang), **context)


def _types(request: Request, agency: str) -> list[str]:
    """The types the agency may issue (asked of the chain, remembered: `TypeGrants`)."""
    grants = getattr(request.app.state, "grants", None)
    if grants is None:
        return sorted(TYPE_NAMES)
    runtime = request.app.state.runtime
    granted = []
    for code in sorted(TYPE_NAMES):
        try:
            grants.check(runtime, agency, code)
        except EcertError:
            continue
        granted.append(code)
    return granted


def progress(job: JobView) -> dict[str, Any]:
    """How far the job is: records done (on chain, refused at intake or by the chain) of all."""
    processed = min(job.total, sum(job.counts.get(s, 0) for s in ("confirmed", "failed", "refused")))
    return {"id": job.id, "typeCode": job.type_code, "total": job.total, "processed": processed,
            "counts": job.counts, "failed": len(job.errors), "done": job.done}  # fmt: skip


def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def errors_csv(errors: list[dict[str, Any]], lang: str, *, masked: bool = False) -> str:
    """The refused rows (row, field, code, message); the header says what the row counts.
    `masked`: each message is the code's words, never the intake's, which may quote a value
    (a holder code of the wrong length) — for the auditor, who reads no personal data."""
    words = CONSOLE[lang]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ROW_HEADERS[lang])
    for error in errors:
        code = str(error.get("code") or "")
        message = words.get(code, words["unknown_problem"]) if masked else error.get("message")
        writer.writerow([error["position"], _cell(error.get("field")), _cell(code), _cell(message)])
    return out.getvalue()


# ─── the upload ──────────────────────────────────────────────────────────────────────────


def _form(request: Request, signed: SignedInStaff, status: int = 200, **context: Any) -> HTMLResponse:
    return _page(request, "console_upload.html", signed, status, types=_types(request, signed.member.agency_code),
                 max_mb=MAX_UPLOAD_BYTES >> 20, max_records=MAX_RECORDS, token=secrets.token_hex(16), **context)  # fmt: skip


@router.get("/console/upload", response_class=HTMLResponse)
def upload_form(request: Request, signed: Uploader) -> HTMLResponse:
    return _form(request, signed, type_code="")


def _submit(request: Request, signed: SignedInStaff, type_code: str, raw: bytes, filename: str | None,
            content_type: str | None, token: str) -> JobView:  # fmt: skip
    """Read the file and submit its records as the API's upload does; audited `issue`. The
    form's token makes a second click (or a resend) answer the same job, never a second one."""
    runtime, agency = request.app.state.runtime, signed.member.agency_code
    if type_code not in TYPE_NAMES:
        raise EcertError("Choose a certificate type", code=ErrorCode.TYPE_CODE_INVALID, field="typeCode")
    records = parse_upload(raw, filename, content_type)
    caller = Principal(agency, frozenset({"issue"}), 0)  # the staff member acts for the agency, like a key
    job = submit_records(runtime, request.app.state.grants, caller, type_code, TYPE_NAMES[type_code], records,
                         f"console-upload:{signed.member.username}:{token}" if token else None, field="file")  # fmt: skip
    if not _audited(runtime, agency, job.id):  # a resent form answers its first job, logged once
        audit_log(request).append(agency, signed.member.username, AuditAction.ISSUE, job.id,
                                  {"what": "upload", "jobId": job.id, "typeCode": type_code, "records": job.total,
                                   "refused": len(job.errors)})  # fmt: skip
    return job


def _audited(runtime: Any, agency: str, job_id: str) -> bool:
    with runtime.sessions() as session:
        return session.scalar(
            select(AuditLogEntry.id).where(AuditLogEntry.agency == agency, AuditLogEntry.subject == job_id,
                                           AuditLogEntry.action == AuditAction.ISSUE.value).limit(1)
        ) is not None  # fmt: skip


@router.post("/console/upload", response_class=HTMLResponse, response_model=None)
async def upload(
    request: Request,
    signed: Uploader,
    type_code: Annotated[str, Form(alias="type", max_length=21)] = "",
    file: Annotated[UploadFile | None, File()] = None,
    token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        if file is None or not file.filename:
            raise EcertError("Attach the records' file", code=ErrorCode.FIELD_MISSING, field="file")
        raw = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            raise EcertError(f"Uploads are limited to {MAX_UPLOAD_BYTES >> 20} MiB: split the file",
                             code=ErrorCode.UPLOAD_TOO_LARGE, field="file")  # fmt: skip
        job = await run_in_threadpool(
            _submit, request, signed, type_code, raw, file.filename, file.content_type, token
        )
    except EcertError as exc:
        status = exc.code.status if 400 <= exc.code.status < 500 else 422
        line = exc.details.get("line")
        return _form(request, signed, status, type_code=type_code, failure=exc.code.value,
                     line=line if isinstance(line, int) else None)  # fmt: skip
    return RedirectResponse(f"/console/jobs/{job.id}?lang={lang_of(request)}", status_code=303)


# ─── the job ─────────────────────────────────────────────────────────────────────────────


def _job(request: Request, signed: SignedInStaff, job_id: str) -> JobView | None:
    """The job, if it is this agency's (another agency's is not found, like none at all)."""
    if not JOB_ID.fullmatch(job_id):
        return None
    try:
        found: JobView = request.app.state.runtime.service.job(signed.member.agency_code, job_id)
    except EcertError:
        return None
    return found


def _not_found(request: Request, signed: SignedInStaff) -> HTMLResponse:
    return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.JOB_NOT_FOUND.value)


@router.get("/console/jobs/{job_id}.json", response_model=None)
def job_json(request: Request, signed: SignedIn, job_id: str) -> Response:
    job = _job(request, signed, job_id)
    if job is None:
        return JSONResponse(
            {"code": ErrorCode.JOB_NOT_FOUND.value}, 404, headers={"Cache-Control": "no-store"}
        )
    return JSONResponse(progress(job), headers={"Cache-Control": "no-store"})


@router.get("/console/jobs/{job_id}/errors.csv", response_model=None)
def job_errors(request: Request, signed: SignedIn, job_id: str) -> Response:
    job = _job(request, signed, job_id)
    if job is None:
        return _not_found(request, signed)
    return Response("\ufeff" + errors_csv(job.errors, lang_of(request), masked=signed.member.role is Role.AUDITOR), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="job-{job.id[:12]}-errors.csv"',
                             "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/console/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, signed: SignedIn, job_id: str) -> HTMLResponse:
    job = _job(request, signed, job_id)
    if job is None:
        return _not_found(request, signed)
    page = _page(request, "console_job.html", signed, job=job, progress=progress(job), refresh_s=REFRESH_S,
                 errors=job.errors[:SHOWN_ERRORS], error_count=len(job.errors))  # fmt: skip
    page.headers["Content-Security-Policy"] = JOB_PAGE_CSP
    return page


@router.get("/console/static/console_upload.js")
def script() -> Response:
    return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/console/static/console_upload.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip
