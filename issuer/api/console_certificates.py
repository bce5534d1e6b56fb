"""The console's certificate pages (issue 12, points 2, 3 and 4): the agency's jobs, a search of
its certificates, one certificate with its history, unmasking, printing, a new claim code, and
the form that issues one certificate. Server-rendered like the rest of `/console`
(`issuer.api.console`); reads are `issuer.certificate_search`.

Who may do what (`issuer.staff.Role`):

* jobs, search, certificate pages — clerk, approver, auditor (personal data masked);
* unmask one certificate (with a reason; audited `unmask`, its fields named, never their values)
  — clerk and approver, who act on holders' cases; the auditor reads the trail, not the data;
* issue one certificate (audited `issue`), print it (audited `print`), give its holder a new
  claim code (audited `issue`, `what: claim_code`; the code shown once) — clerk.

Searching by number, holder name or holder code is exact, through the keyed blind index
(`issuer.blind_index`), which `install` gives the runtime's service so that intake fills it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from issuer.api.console import beijing_time, console_router, lang_of, render, require_role
from issuer.audit import AuditAction, AuditLog
from issuer.blind_index import blind_index_for
from issuer.certificate_search import STATUSES, CertificatePages, SearchQuery, field_rows, is_personal
from issuer.staff import Role, SignedInStaff
from registry.certificate.identifiers import check_identifier, parse_id_number, parse_licence_id, parse_uscc
from registry.certificate.labels import TYPE_EXT_LABELS, field_label, type_name
from registry.certificate.model import CODE_TYPE_ID_NUMBER, CODE_TYPE_USCC
from registry.certificate.types import TYPE_NAMES
from registry.error_codes import ErrorCode
from registry.errors import EcertError, IdentifierError

__all__ = ["install", "router"]

STYLESHEET = Path(__file__).parents[1] / "static" / "console_records.css"
MAX_REASON = 200
MIN_REASON = 4
DATE_EXT = frozenset({"establishedDate", "firstIssued", "birthDate"})
LIST_EXT = frozenset({"scope"})

router = console_router(tags=["console"])
Reader = Annotated[SignedInStaff, Depends(require_role(Role.CLERK, Role.APPROVER, Role.AUDITOR))]
Unmasker = Annotated[SignedInStaff, Depends(require_role(Role.CLERK, Role.APPROVER))]
Clerk = Annotated[SignedInStaff, Depends(require_role(Role.CLERK))]


def install(app: FastAPI) -> None:
    """The pages (the runtime's service fills the blind index at every intake: `IssuerRuntime.service`)."""
    app.include_router(router)


def pages(request: Request) -> CertificatePages:
    """The console's reads: the database, the data key and the index key; not the service."""
    state = request.app.state
    if getattr(state, "console_pages", None) is None:
        runtime = state.runtime
        made = vars(runtime).get("service")
        index = (
            made.blind_index
            if made is not None and made.blind_index is not None
            else blind_index_for(runtime)
        )
        state.console_pages = CertificatePages(
            runtime.sessions, runtime.settings.load_data_key(runtime.workspace.settings), index
        )
    found: CertificatePages = state.console_pages
    return found


def audit_log(request: Request) -> AuditLog:
    state = request.app.state
    if getattr(state, "console_audit", None) is None:
        state.console_audit = AuditLog(state.runtime.sessions)
    log: AuditLog = state.console_audit
    return log


def _page(
    request: Request, template: str, signed: SignedInStaff, status: int = 200, **context: Any
) -> HTMLResponse:
    lang = lang_of(request)
    return render(request, template, signed, status, when=beijing_time, type_name=lambda code: type_name(code, lang),
                  statuses=STATUSES, **context)  # fmt: skip


# ─── jobs ────────────────────────────────────────────────────────────────────────────────


@router.get("/console/jobs", response_class=HTMLResponse)
def jobs(request: Request, signed: Reader, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    rows, has_next = pages(request).jobs(signed.member.agency_code, page)
    return _page(request, "console_jobs.html", signed, jobs=rows, page=page, has_next=has_next)


# ─── search ──────────────────────────────────────────────────────────────────────────────


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/console/certificates", response_class=HTMLResponse)
def search(
    request: Request,
    signed: Reader,
    identifier: Annotated[str, Query(max_length=120)] = "",
    number: Annotated[str, Query(max_length=100)] = "",
    holder_name: Annotated[str, Query(max_length=200)] = "",
    holder_code: Annotated[str, Query(max_length=40)] = "",
    issued_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    issued_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    type_code: Annotated[str, Query(alias="type", max_length=21)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    job: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Exact identifier; exact number, holder name, holder code (blind index); the day range the
    issuer stored them; type; status; job. Newest first, 20 a page, names and codes masked."""
    errors: dict[str, str] = {}
    wanted_id = identifier.strip()
    if wanted_id:
        try:
            wanted_id = str(parse_licence_id(wanted_id, strict=False))
        except IdentifierError as exc:
            errors["identifier"] = exc.code.value
    start, end = _date(issued_from.strip()), _date(issued_to.strip())
    if issued_from.strip() and start is None:
        errors["from"] = ErrorCode.FIELD_INVALID.value
    if issued_to.strip() and end is None:
        errors["to"] = ErrorCode.FIELD_INVALID.value
    if status and status not in STATUSES:
        errors["status"] = ErrorCode.STATUS_INVALID.value
    query = SearchQuery(wanted_id, number, holder_name, holder_code, start, end, type_code.strip(),
                        status, job)  # fmt: skip
    reader = pages(request)
    found = None if errors else reader.search(signed.member.agency_code, query, page)
    form = {"identifier": identifier, "number": number, "holder_name": holder_name, "holder_code": holder_code,
            "from": issued_from, "to": issued_to, "type": type_code, "status": status, "job": job}  # fmt: skip
    links = {k: v for k, v in form.items() if v}
    return _page(
        request, "console_search.html", signed, 422 if errors else 200, form=form, errors=errors,
        found=found, links=links, types=sorted(set(TYPE_NAMES) | set(reader.type_codes(signed.member.agency_code))),
    )  # fmt: skip


# ─── one certificate ─────────────────────────────────────────────────────────────────────


def _certificate_page(request: Request, signed: SignedInStaff, identifier: str, status: int = 200, *,
                      unmasked: bool = False, **context: Any) -> HTMLResponse:  # fmt: skip
    view = pages(request).certificate(signed.member.agency_code, identifier)
    if view is None:
        return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.CERT_NOT_FOUND.value)
    rows = field_rows(view.fields, view.type_code, lang_of(request), unmasked=unmasked)
    return _page(request, "console_certificate.html", signed, status, cert=view, rows=rows, unmasked=unmasked,
                 may_unmask=signed.member.role in (Role.CLERK, Role.APPROVER),
                 is_clerk=signed.member.role is Role.CLERK, **context)  # fmt: skip


@router.get("/console/certificates/{identifier}", response_class=HTMLResponse)
def certificate(request: Request, signed: Reader, identifier: str, issued: str = "") -> HTMLResponse:
    return _certificate_page(request, signed, identifier, issued=bool(issued))


@router.post("/console/certificates/{identifier}/unmask", response_class=HTMLResponse)
def unmask(request: Request, signed: Unmasker, identifier: str,
           reason: Annotated[str, Form(max_length=1000)] = "") -> HTMLResponse:  # fmt: skip
    """The clear values, once (this answer only), after the reason is written to the audit
    trail with the identifier and the paths of the fields shown; never their values."""
    reader = pages(request)
    view = reader.certificate(signed.member.agency_code, identifier)
    if view is None:
        return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.CERT_NOT_FOUND.value)
    reason = " ".join(reason.split())
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        return _certificate_page(request, signed, identifier, 422, problem=ErrorCode.UNMASK_REASON_REQUIRED.value,
                                 reason_error=True, reason=reason[:MAX_REASON])  # fmt: skip
    shown = [row.path for row in field_rows(view.fields, view.type_code, "en") if row.personal]
    try:
        audit_log(request).append(signed.member.agency_code, signed.member.username, AuditAction.UNMASK,
                                  identifier, {"fields": shown, "reason": reason})  # fmt: skip
    except EcertError as exc:  # the reason holds what reads as an ID number: not in the trail
        return _certificate_page(request, signed, identifier, 422, problem=exc.code.value, reason_error=True)
    return _certificate_page(request, signed, identifier, unmasked=True)


@router.get("/console/certificates/{identifier}/print.pdf", response_model=None)
def print_pdf(request: Request, signed: Clerk, identifier: str) -> Response:
    """The printed licence (`issuer.printing`, the same PDF as the API's), audited `print`."""
    from issuer.printing import render_licence_pdf

    runtime = request.app.state.runtime
    lang = lang_of(request)
    if pages(request).certificate(signed.member.agency_code, identifier) is None:
        return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.CERT_NOT_FOUND.value)
    try:
        presentation = runtime.service.package(signed.member.agency_code, identifier)
    except EcertError as exc:
        return _certificate_page(request, signed, identifier, exc.code.status, problem=exc.code.value)
    pdf = render_licence_pdf(presentation, verifier_url=runtime.settings.verifier_url, lang=lang)
    audit_log(request).append(signed.member.agency_code, signed.member.username, AuditAction.PRINT, identifier,
                              {"format": "pdf", "lang": lang})  # fmt: skip
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{identifier}.pdf"', "Cache-Control": "no-store"})  # fmt: skip


@router.get("/console/certificates/{identifier}/licence.ofd", response_model=None)
def print_ofd(request: Request, signed: Clerk, identifier: str) -> Response:
    """The printed licence as an OFD file sealed with the agency's SM2 key (`issuer.ofd`, the same
    file as the API's), audited `print`."""
    from issuer.ofd import MEDIA_TYPE, render_licence_ofd

    runtime = request.app.state.runtime
    lang, agency = lang_of(request), signed.member.agency_code
    if pages(request).certificate(agency, identifier) is None:
        return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.CERT_NOT_FOUND.value)
    try:
        presentation = runtime.service.package(agency, identifier)
    except EcertError as exc:
        return _certificate_page(request, signed, identifier, exc.code.status, problem=exc.code.value)
    key = runtime.signers.national_key(agency)
    ofd = render_licence_ofd(
        presentation, verifier_url=runtime.settings.verifier_url, lang=lang, sm2_private_key=key
    )
    audit_log(request).append(agency, signed.member.username, AuditAction.PRINT, identifier,
                              {"format": "ofd", "lang": lang, "sealed": key is not None})  # fmt: skip
    return Response(ofd, media_type=MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{identifier}.ofd"', "Cache-Control": "no-store"})  # fmt: skip


@router.post("/console/certificates/{identifier}/claim-code", response_class=HTMLResponse)
def claim_code(request: Request, signed: Clerk, identifier: str) -> HTMLResponse:
    """A new one-time claim code for the holder (any earlier one stops working), shown once."""
    runtime = request.app.state.runtime
    if pages(request).certificate(signed.member.agency_code, identifier) is None:
        return _page(request, "console_refused.html", signed, 404, problem=ErrorCode.CERT_NOT_FOUND.value)
    code, expires = runtime.service.create_claim_code(signed.member.agency_code, identifier)
    audit_log(request).append(signed.member.agency_code, signed.member.username, AuditAction.ISSUE, identifier,
                              {"what": "claim_code", "expiresAt": expires.isoformat()})  # fmt: skip
    return _certificate_page(request, signed, identifier, claim={"code": code, "expires": expires})


# ─── the issue form ──────────────────────────────────────────────────────────────────────


def form_fields(type_code: str, lang: str) -> list[dict[str, Any]]:
    """The form of a type, from its field catalogue (`registry.certificate.labels`): the holder,
    number and validity, then the type's own ext fields in print order."""

    def one(path: str, kind: str = "text", required: bool = False) -> dict[str, Any]:
        return {"path": path, "name": path.replace(".", "__"), "label": field_label(type_code, path, lang),
                "kind": kind, "required": required}  # fmt: skip

    fields = [one("holder.name", required=True), one("holder.code", required=True),
              one("holder.codeType", "codeType"), one("number"), one("issuedDate", "date"), one("validFrom", "date"),
              one("validUntil", "date")]  # fmt: skip
    labels = {f["label"] for f in fields}
    for key in TYPE_EXT_LABELS.get(type_code, {}):
        kind = "date" if key in DATE_EXT else "lines" if key in LIST_EXT else "text"
        field = one(f"ext.{key}", kind)
        if field["label"] not in labels:  # an alias (vehicleClass of licenceClass): one field
            labels.add(field["label"])
            fields.append(field)
    return fields


def check_form(
    type_code: str, values: dict[str, str], today: dt.date
) -> tuple[dict[str, Any], dict[str, str]]:
    """The record the form makes, and an error code per field: the GB checks of the holder code
    (公民身份号码 GB 11643 or 统一社会信用代码 GB 32100, by its code type), dates, lengths."""
    record: dict[str, Any] = {"holder": {}}
    errors: dict[str, str] = {}
    for spec in form_fields(type_code, "en"):
        path, text = spec["path"], values.get(spec["path"], "").strip()
        if not text:
            if spec["required"]:
                errors[path] = ErrorCode.FIELD_MISSING.value
            continue
        if len(text) > (2000 if spec["kind"] == "lines" else 200):
            errors[path] = ErrorCode.FIELD_INVALID.value
            continue
        value: Any = text
        if spec["kind"] == "date":
            try:
                value = dt.date.fromisoformat(text).isoformat()
            except ValueError:
                errors[path] = ErrorCode.FIELD_INVALID.value
                continue
        elif spec["kind"] == "lines":
            value = [line.strip() for line in text.replace("；", "\n").splitlines() if line.strip()]
        elif spec["kind"] == "codeType" and text not in (CODE_TYPE_ID_NUMBER, CODE_TYPE_USCC):
            errors[path] = ErrorCode.FIELD_INVALID.value
            continue
        head, _, key = path.partition(".")
        if head in ("holder", "ext"):
            record.setdefault(head, {})[key] = value
        else:
            record[path] = value
    holder = record["holder"]
    if "code" in holder:
        try:
            holder["code"] = _holder_code(holder["code"], holder.get("codeType"), today)
        except IdentifierError as exc:
            errors["holder.code"] = exc.code.value
    if not errors and record.get("validUntil") and record["validUntil"] < record.get("validFrom", record.get(
            "issuedDate", today.isoformat())):  # fmt: skip
        errors["validUntil"] = ErrorCode.FIELD_INVALID.value
    return record, errors


def _holder_code(text: str, code_type: str | None, today: dt.date) -> str:
    """The canonical code (full-width, lowercase, spaces repaired), or the check's IdentifierError."""
    if code_type == CODE_TYPE_ID_NUMBER:
        return parse_id_number(text, strict=False, today=today).code
    if code_type == CODE_TYPE_USCC:
        return parse_uscc(text, strict=False).code
    checked = check_identifier(text)
    if checked.kind not in ("id_number", "uscc"):
        raise IdentifierError(f"{checked.kind} is not a holder code", code=ErrorCode.ID_FORMAT)
    code: str = checked.value.code  # type: ignore[attr-defined]
    return code


def _issue_page(request: Request, signed: SignedInStaff, type_code: str, status: int = 200,
                **context: Any) -> HTMLResponse:  # fmt: skip
    lang = lang_of(request)
    return _page(request, "console_issue.html", signed, status, types=sorted(TYPE_NAMES), type_code=type_code,
                 fields=form_fields(type_code, lang) if type_code else [], token=secrets.token_hex(16),
                 values=context.pop("values", {}), errors=context.pop("errors", {}), **context)  # fmt: skip


@router.get("/console/issue", response_class=HTMLResponse)
def issue_form(
    request: Request, signed: Clerk, type_code: Annotated[str, Query(alias="type", max_length=21)] = ""
) -> HTMLResponse:
    if type_code and type_code not in TYPE_NAMES:
        return _issue_page(request, signed, "", 422, problem=ErrorCode.TYPE_CODE_INVALID.value)
    return _issue_page(request, signed, type_code)


@router.post("/console/issue", response_class=HTMLResponse, response_model=None)
async def issue(request: Request, signed: Clerk) -> Response:
    """Check the fields one by one (the error beside each), then submit through the intake as
    the API does; the job anchors as usual. Audited `issue` with the new identifier."""
    form = await request.form()
    type_code = str(form.get("type") or "")
    if type_code not in TYPE_NAMES:
        return _issue_page(request, signed, "", 422, problem=ErrorCode.TYPE_CODE_INVALID.value)
    values = {spec["path"]: str(form.get(spec["name"]) or "") for spec in form_fields(type_code, "en")}
    token = str(form.get("token") or "")[:64]
    return await run_in_threadpool(_issue, request, signed, type_code, values, token)


def _issue(
    request: Request, signed: SignedInStaff, type_code: str, values: dict[str, str], token: str
) -> Response:
    runtime = request.app.state.runtime
    agency = signed.member.agency_code
    record, errors = check_form(type_code, values, dt.date.today())
    if errors:
        return _issue_page(request, signed, type_code, 422, values=values, errors=errors)
    try:
        grants = getattr(request.app.state, "grants", None)
        if grants is not None:
            grants.check(runtime, agency, type_code)
        job = runtime.service.submit(agency, type_code, [record], type_name=TYPE_NAMES[type_code],
                                     idempotency_key=f"console:{signed.member.username}:{token}" if token else None)  # fmt: skip
    except EcertError as exc:
        field = exc.details.get("field")
        errors = {field: exc.code.value} if isinstance(field, str) and field in values else {}
        return _issue_page(
            request, signed, type_code, 422, values=values, errors=errors, problem=exc.code.value
        )
    if job.errors or not job.identifiers:
        error = job.errors[0] if job.errors else {"code": ErrorCode.FIELD_INVALID.value, "field": None}
        field = str(error.get("field") or "")
        errors = {field: str(error["code"])} if field in values else {}
        return _issue_page(
            request, signed, type_code, 422, values=values, errors=errors, problem=error["code"]
        )
    identifier = job.identifiers[0]
    audit_log(request).append(agency, signed.member.username, AuditAction.ISSUE, identifier,
                              {"what": "certificate", "jobId": job.id, "typeCode": type_code})  # fmt: skip
    return RedirectResponse(
        f"/console/certificates/{identifier}?lang={lang_of(request)}&issued=1", status_code=303
    )


@router.get("/console/static/console_records.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip


__all__ += ["check_form", "form_fields", "is_personal"]
