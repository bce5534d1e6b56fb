"""The console's status changes (issue 12, point 5): a clerk proposes to suspend, reinstate or
revoke one certificate, a pasted list or an uploaded CSV (up to 100,000 identifiers) and gets the
refused rows back, downloadable as CSV; an approver — someone else — approves or rejects; every
role sees each proposal's state and, once sent, its transactions; a certificate's page of changes
links each on-chain change to the proposal and the approval behind it. The rules and the outbox
are `issuer.proposals`; pages are rendered like the rest of `/console` (`issuer.api.console`).

* GET  /console/status                       — proposals: pending ones first (every role)
* GET  /console/status/new, POST             — the proposal form (clerk)
* GET  /console/status/errors/{token}.csv    — the refused rows of a submission (its clerk)
* GET  /console/status/{id}                  — one proposal, its transactions (every role)
* POST /console/status/{id}/approve|reject   — the decision (approver, not the proposer)
* GET  /console/status/certificate?identifier=… — a certificate's changes, each with its proposal
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from issuer.api.console import SignedIn, beijing_time, console_router, lang_of, render, require_role
from issuer.audit import AuditLog
from issuer.proposals import (
    ACTIONS,
    MAX_ITEMS,
    RowError,
    StatusProposals,
    decode_upload,
    parse_identifiers,
)
from issuer.staff import Role, SignedInStaff
from issuer.status import REASONS
from registry.error_codes import ErrorCode
from registry.errors import EcertError

__all__ = ["install", "router"]

STYLESHEET = Path(__file__).parents[1] / "static" / "console_proposals.css"
MAX_UPLOAD = 16 * 1024 * 1024  # bytes of CSV: 100,000 identifiers with room to spare
SHOWN_ERRORS = 200  # rows of errors shown on the page; the CSV has them all
REASON_CODES = sorted({code for codes in REASONS.values() for code in codes})
ACTION_REASONS = {action: sorted(REASONS[status]) for action, status in ACTIONS.items()}

router = console_router(tags=["console"])
Clerk = Annotated[SignedInStaff, Depends(require_role(Role.CLERK))]
Approver = Annotated[SignedInStaff, Depends(require_role(Role.APPROVER))]


def install(app: FastAPI) -> None:
    app.include_router(router)


def proposals(request: Request) -> StatusProposals:
    """The runtime's proposals (one made here for a runtime without them, e.g. in tests)."""
    state = request.app.state
    if getattr(state, "console_proposals", None) is None:
        runtime = state.runtime
        made = getattr(runtime, "proposals", None)
        state.console_proposals = made or StatusProposals(runtime.sessions, AuditLog(runtime.sessions))
    found: StatusProposals = state.console_proposals
    return found


def _page(
    request: Request, template: str, signed: SignedInStaff, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(request, template, signed, status, when=beijing_time, reason_codes=REASON_CODES,
                  action_reasons=ACTION_REASONS, actions=list(ACTIONS), max_items=MAX_ITEMS, **context)  # fmt: skip


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ─── the list ────────────────────────────────────────────────────────────────────────────


@router.get("/console/status", response_class=HTMLResponse)
def proposals_page(request: Request, signed: SignedIn) -> HTMLResponse:
    service = proposals(request)
    agency = signed.member.agency_code
    pending = service.recent(agency, states=["proposed"], limit=500)
    everything = service.recent(agency, limit=200)
    return _page(request, "console_proposals.html", signed, pending=pending, proposals=everything)


# ─── proposing ───────────────────────────────────────────────────────────────────────────


@router.get("/console/status/new", response_class=HTMLResponse)
def new_form(request: Request, signed: Clerk) -> HTMLResponse:
    return _page(request, "console_proposals_new.html", signed, form={"action": "revoke", "reason": 3})


def _rows_of(
    identifier: str, identifiers: str, upload: bytes | None
) -> tuple[list[tuple[int, str]], list[RowError], str]:
    """The rows of whichever input was filled (exactly one), their parse errors, and its kind."""
    given = [kind for kind, filled in (("one", identifier.strip()), ("list", identifiers.strip()),
                                       ("file", upload)) if filled]  # fmt: skip
    if len(given) != 1:
        raise EcertError(
            "Give one identifier, a list, or a CSV file: exactly one of them",
            code=ErrorCode.PROPOSAL_EMPTY if not given else ErrorCode.FIELD_INVALID, field="identifiers",
        )  # fmt: skip
    kind = given[0]
    if kind == "one":
        rows, errors = parse_identifiers(identifier.strip())
    elif kind == "list":
        rows, errors = parse_identifiers(identifiers)
    else:
        assert upload is not None
        rows, errors = parse_identifiers(decode_upload(upload))
    return rows, errors, kind


async def _read_upload(file: UploadFile | None) -> bytes | None:
    if file is None or not file.filename:
        return None
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise EcertError(f"The file is larger than {MAX_UPLOAD // 1024 // 1024} MB", code=ErrorCode.UPLOAD_TOO_LARGE,
                         field="file")  # fmt: skip
    return data or None


@router.post("/console/status/new", response_class=HTMLResponse, response_model=None)
async def propose(
    request: Request,
    signed: Clerk,
    action: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=4)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    identifier: Annotated[str, Form(max_length=200)] = "",
    identifiers: Annotated[str, Form()] = "",
    skip_invalid: Annotated[str, Form(max_length=8)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    form = {"action": action, "reason": int(reason) if reason.isdigit() else None, "note": note,
            "identifier": identifier, "identifiers": identifiers if len(identifiers) <= 200_000 else "",
            "skip_invalid": bool(skip_invalid)}  # fmt: skip
    service = proposals(request)
    try:
        upload = await _read_upload(file)
        rows, parse_errors, kind = await run_in_threadpool(_rows_of, identifier, identifiers, upload)
        if not reason.isdigit():
            raise EcertError("Choose a reason", code=ErrorCode.REASON_INVALID, field="reason")
        done = await run_in_threadpool(
            partial(service.propose, skip_invalid=bool(skip_invalid), refused_rows=parse_errors),
            signed.member, action, int(reason), rows, note,
        )  # fmt: skip
    except EcertError as exc:
        status = exc.code.status if 400 <= exc.code.status < 600 else 422
        return _page(request, "console_proposals_new.html", signed, status, problem=exc.code.value, form=form)
    errors = done.errors
    if done.proposal_id is not None and not errors:
        return _see_other(f"/console/status/{done.proposal_id}?lang={lang_of(request)}")
    token = await run_in_threadpool(service.keep_report, signed.member.id, errors) if errors else None
    return _page(
        request, "console_proposals_new.html", signed, 200 if done.proposal_id else 422,
        problem=None if done.proposal_id else ErrorCode.PROPOSAL_INVALID_ROWS.value, form=form, kind=kind,
        errors=errors[:SHOWN_ERRORS], error_count=len(errors), report=token, proposed=done,
    )  # fmt: skip


@router.get("/console/status/errors/{token}.csv", response_model=None)
def error_report(token: str, request: Request, signed: Clerk) -> Response:
    try:
        body = proposals(request).report(signed.member.id, token[:64])
    except EcertError as exc:
        return _page(request, "console_refused.html", signed, exc.code.status, problem=exc.code.value)
    return Response("\ufeff" + body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="proposal-errors.csv"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})  # fmt: skip


# ─── a certificate's changes ─────────────────────────────────────────────────────────────


@router.get("/console/status/certificate", response_class=HTMLResponse)
def certificate_changes(
    request: Request, signed: SignedIn, identifier: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    identifier = identifier.strip()
    try:
        history = proposals(request).certificate_history(signed.member.agency_code, identifier)
    except EcertError as exc:
        return _page(request, "console_proposals_certificate.html", signed, exc.code.status, problem=exc.code.value,
                     identifier=identifier, history=None)  # fmt: skip
    return _page(
        request, "console_proposals_certificate.html", signed, identifier=identifier, history=history
    )


# ─── one proposal, and its decision ──────────────────────────────────────────────────────


def _detail(request: Request, signed: SignedInStaff, proposal_id: int, status: int = 200,
            problem: str | None = None) -> HTMLResponse:  # fmt: skip
    service = proposals(request)
    try:
        proposal = service.get(signed.member.agency_code, proposal_id)
    except EcertError as exc:
        return _page(request, "console_refused.html", signed, exc.code.status, problem=exc.code.value)
    shown = service.identifiers(signed.member.agency_code, proposal_id, limit=100)
    may_decide = (signed.member.role is Role.APPROVER and proposal.state == "proposed"
                  and proposal.proposer_id != signed.member.id)  # fmt: skip
    return _page(request, "console_proposals_detail.html", signed, status, problem=problem, proposal=proposal,
                 identifiers=shown, may_decide=may_decide)  # fmt: skip


@router.get("/console/status/{proposal_id:int}", response_class=HTMLResponse)
def proposal_page(proposal_id: int, request: Request, signed: SignedIn) -> HTMLResponse:
    return _detail(request, signed, proposal_id)


@router.post("/console/status/{proposal_id:int}/approve", response_model=None)
def approve(proposal_id: int, request: Request, signed: Approver) -> Response:
    try:
        proposals(request).approve(signed.member, proposal_id)
    except EcertError as exc:
        return _detail(request, signed, proposal_id, exc.code.status, exc.code.value)
    return _see_other(f"/console/status/{proposal_id}?lang={lang_of(request)}")


@router.post("/console/status/{proposal_id:int}/reject", response_model=None)
def reject(
    proposal_id: int, request: Request, signed: Approver, reason: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    try:
        proposals(request).reject(signed.member, proposal_id, reason)
    except EcertError as exc:
        return _detail(request, signed, proposal_id, exc.code.status, exc.code.value)
    return _see_other(f"/console/status/{proposal_id}?lang={lang_of(request)}")


@router.get("/console/static/console_proposals.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip
