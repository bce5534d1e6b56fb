"""The console's queue of holders' correction requests (issue 12, point 9; `issuer.corrections`):
open requests first, by deadline, the overdue ones marked in words as well as in colour; one
request with its certificate (masked, as on the certificate page) and the two answers.

Who may do what (`issuer.staff.Role`):

* the queue and a request — every role; the holder's message and the certificate's personal
  data are for those who answer (masked data unmasked with a reason, audited `unmask`);
* answer — clerk, approver and admin: fix by a renewal (version + 1 with the corrected value,
  audited `correction_fix`) or refuse with a reason (audited `correction_refuse`). The auditor
  reads only.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from issuer.api.console import beijing_time, console_router, lang_of, render, require_role
from issuer.api.console_certificates import DATE_EXT, audit_log
from issuer.audit import AuditAction
from issuer.certificate_search import display_text, field_rows, is_personal, mask_value
from issuer.corrections import CorrectionView
from issuer.staff import Role, SignedInStaff
from registry.certificate.labels import field_label, type_name
from registry.error_codes import ErrorCode
from registry.errors import EcertError

__all__ = ["editable_path", "install", "router", "time_left"]

STYLESHEET = Path(__file__).parents[1] / "static" / "console_corrections.css"
MIN_REASON, MAX_REASON = 4, 200  # an unmask reason, as on the certificate page
EDITABLE = frozenset(
    {"name", "number", "validFrom", "validUntil", "holder.name", "holder.code", "holder.codeType"}
)
_INDEX = re.compile(r"\[\d+\]$")

router = console_router(tags=["console"])
Reader = Annotated[SignedInStaff, Depends(require_role())]
Answerer = Annotated[SignedInStaff, Depends(require_role(Role.CLERK, Role.APPROVER, Role.ADMIN))]
ANSWERERS = (Role.CLERK, Role.APPROVER, Role.ADMIN)


def install(app: FastAPI) -> None:
    app.include_router(router)


def editable_path(view: CorrectionView) -> str | None:
    """The path the fix form edits: the flagged field (a list item: its list; the masked twin:
    the code), or validUntil for a renewal; None when the issuer sets that field itself."""
    if view.kind == "renewal" or not view.field:
        return "validUntil"
    path = _INDEX.sub("", view.field)
    path = "holder.code" if path == "holder.codeMasked" else path
    return path if path in EDITABLE or path.startswith("ext.") else None


def time_left(view: CorrectionView, now: dt.datetime) -> tuple[str, int, str]:
    """(`overdue` | `due`, amount, `h` | `min`): how far past or before its deadline a request is."""
    delta = now - view.due_at if now > view.due_at else view.due_at - now
    minutes = int(delta.total_seconds() // 60)
    return ("overdue" if now > view.due_at else "due"), *(
        (minutes // 60, "h") if minutes >= 60 else (minutes, "min")
    )


def _current(fields: dict[str, Any], path: str) -> Any:
    head, _, key = path.partition(".")
    return (fields.get(head) or {}).get(key) if key else fields.get(head)


def _page(
    request: Request, template: str, signed: SignedInStaff, status: int = 200, **context: Any
) -> HTMLResponse:
    lang = lang_of(request)
    runtime = request.app.state.runtime
    return render(request, template, signed, status, when=beijing_time, now=runtime.corrections.now(),
                  time_left=time_left, type_name=lambda code: type_name(code, lang), **context)  # fmt: skip


def _refused(request: Request, signed: SignedInStaff, code: ErrorCode) -> HTMLResponse:
    return _page(request, "console_refused.html", signed, code.status, problem=code.value)


# ─── the queue ───────────────────────────────────────────────────────────────────────────


@router.get("/console/corrections", response_class=HTMLResponse)
def queue(
    request: Request,
    signed: Reader,
    status: Annotated[str, Query(max_length=16)] = "open",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    status = "answered" if status == "answered" else "open"
    rows, has_next = request.app.state.runtime.corrections.queue(signed.member.agency_code, status, page)
    return _page(
        request, "console_corrections.html", signed, rows=rows, state=status, page=page, has_next=has_next
    )


# ─── one request ─────────────────────────────────────────────────────────────────────────


def _detail(request: Request, signed: SignedInStaff, request_id: str, status: int = 200, *,
            unmasked: bool = False, **context: Any) -> HTMLResponse:  # fmt: skip
    corrections = request.app.state.runtime.corrections
    try:
        view = corrections.get(signed.member.agency_code, request_id)
    except EcertError as exc:
        return _refused(request, signed, exc.code)
    lang = lang_of(request)
    fields = corrections.current_fields(view)
    rows = field_rows(fields, view.type_code, lang, unmasked=unmasked)
    may_answer = signed.member.role in ANSWERERS and view.status == "open"
    path = editable_path(view)
    edit: dict[str, Any] | None = None
    if may_answer and path is not None:
        value = _current(fields, path)
        text = display_text(value).replace("；", "\n") if isinstance(value, list) else display_text(value)
        personal = bool(text) and is_personal(path, text)
        edit = {"path": path, "label": field_label(view.type_code, path, lang), "lines": isinstance(value, list),
                "date": path in ("validFrom", "validUntil") or path.removeprefix("ext.") in DATE_EXT,
                "value": text if unmasked or not personal else "", "masked": mask_value(path, text) if personal and
                not unmasked else None}  # fmt: skip
    return _page(request, "console_correction.html", signed, status, view=view, rows=rows, unmasked=unmasked,
                 may_answer=may_answer, may_read=signed.member.role in ANSWERERS, edit=edit, **context)  # fmt: skip


@router.get("/console/corrections/{request_id}", response_class=HTMLResponse)
def detail(request: Request, signed: Reader, request_id: str, answered: str = "") -> HTMLResponse:
    return _detail(request, signed, request_id, answered=answered)


@router.post("/console/corrections/{request_id}/unmask", response_class=HTMLResponse)
def unmask(request: Request, signed: Answerer, request_id: str,
           reason: Annotated[str, Form(max_length=1000)] = "") -> HTMLResponse:  # fmt: skip
    """The certificate's personal data in clear, once, after the reason is in the audit trail
    (`unmask`, the certificate's identifier, the paths shown), as on the certificate page."""
    corrections = request.app.state.runtime.corrections
    try:
        view = corrections.get(signed.member.agency_code, request_id)
    except EcertError as exc:
        return _refused(request, signed, exc.code)
    reason = " ".join(reason.split())
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        return _detail(request, signed, request_id, 422, problem=ErrorCode.UNMASK_REASON_REQUIRED.value,
                       unmask_error=True)  # fmt: skip
    shown = [r.path for r in field_rows(corrections.current_fields(view), view.type_code, "en") if r.personal]
    try:
        audit_log(request).append(signed.member.agency_code, signed.member.username, AuditAction.UNMASK,
                                  view.identifier, {"fields": shown, "reason": reason, "request": view.id})  # fmt: skip
    except EcertError as exc:
        return _detail(request, signed, request_id, 422, problem=exc.code.value, unmask_error=True)
    return _detail(request, signed, request_id, unmasked=True)


@router.post("/console/corrections/{request_id}/fix", response_class=HTMLResponse, response_model=None)
async def fix(request: Request, signed: Answerer, request_id: str) -> Response:
    form = await request.form()
    value, note = str(form.get("value") or ""), str(form.get("note") or "")[:1000]
    return await run_in_threadpool(_fix, request, signed, request_id, value, note)


def _fix(request: Request, signed: SignedInStaff, request_id: str, value: str, note: str) -> Response:
    corrections = request.app.state.runtime.corrections
    try:
        view = corrections.get(signed.member.agency_code, request_id)
        path = editable_path(view)
        values: dict[str, Any] = {}
        if path is not None and value.strip():
            current = _current(corrections.current_fields(view), path)
            values[path] = (
                [line.strip() for line in value.replace("；", "\n").splitlines() if line.strip()]
                if isinstance(current, list) else value.strip()
            )  # fmt: skip
        elif view.kind == "field" and path is not None:
            return _detail(
                request, signed, request_id, 422, problem=ErrorCode.FIELD_MISSING.value, fix_error=True
            )
        corrections.fix(
            signed.member.agency_code, request_id, signed.member.id, signed.member.username, values, note
        )
    except EcertError as exc:
        return _detail(request, signed, request_id, 422 if exc.code.status < 400 else exc.code.status,
                       problem=exc.code.value, fix_error=True)  # fmt: skip
    return RedirectResponse(
        f"/console/corrections/{request_id}?lang={lang_of(request)}&answered=fixed", status_code=303
    )


@router.post("/console/corrections/{request_id}/refuse", response_class=HTMLResponse, response_model=None)
def refuse(request: Request, signed: Answerer, request_id: str,
           reason: Annotated[str, Form(max_length=2000)] = "") -> Response:  # fmt: skip
    try:
        request.app.state.runtime.corrections.refuse(
            signed.member.agency_code, request_id, signed.member.id, signed.member.username, reason
        )
    except EcertError as exc:
        return _detail(request, signed, request_id, exc.code.status, problem=exc.code.value, refuse_error=True,
                       refusal=reason[:1000])  # fmt: skip
    return RedirectResponse(
        f"/console/corrections/{request_id}?lang={lang_of(request)}&answered=refused", status_code=303
    )


@router.get("/console/static/console_corrections.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip
