"""Certificates: issue one, read it, its holder package, QR code and printout, change its
status, renew it, and give its holder a claim code. Every route acts on the caller's agency's
certificates only (another agency's → 403 AGENCY_FORBIDDEN)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from qrcode.exceptions import DataOverflowError

from issuer.api.deps import Caller, Grants, IdempotencyKey, Issuing, OwnedCertificate, Runtime, StatusChanging
from issuer.api.jobs import accepted, submit_records
from issuer.api.schemas import (
    PACKAGE_RESPONSE,
    CertificateRequest,
    CertificateResponse,
    ClaimCodeResponse,
    JobResponse,
    RenewalRequest,
    StatusRequest,
    StatusResponse,
)
from issuer.audit import API_KEY_PREFIX
from issuer.runtime import IssuerRuntime
from registry.certificate.links import verify_link
from registry.certificate.presentation import Presentation
from registry.contracts.certificate_registry import Status
from registry.error_codes import ErrorCode
from registry.errors import CertificateError
from registry.qr import qr_png, qr_svg

router = APIRouter(prefix="/v1/certificates", tags=["certificates"])

STATUSES = {"active": Status.ACTIVE, "suspended": Status.SUSPENDED, "revoked": Status.REVOKED}
Fields = Annotated[
    str | None,
    Query(
        description="Comma list of field paths to disclose (e.g. `name,holder.name,holder.codeMasked,identifier`); "
        "default: every field, the full holder.code included.",
        max_length=2000,
    ),
]


@router.post("", status_code=202, response_model=JobResponse, summary="Issue one certificate")
def issue_certificate(
    body: CertificateRequest,
    response: Response,
    caller: Issuing,
    runtime: Runtime,
    grants: Grants,
    key: IdempotencyKey,
) -> JobResponse:
    """Store the certificate and queue it for anchoring. A rejected record is a 422 naming its
    field; the job (its id in `jobId`) keeps the rejection, so the same Idempotency-Key gets it again."""
    job = submit_records(
        runtime, grants, caller, body.type_code, body.type_name, [body.record], key, field="record"
    )
    if job.errors:
        error = job.errors[0]
        raise CertificateError(
            error["message"], code=ErrorCode[error["code"]], field=error["field"], jobId=job.id
        )
    return accepted(response, job)


@router.get(
    "/{identifier}", response_model=CertificateResponse, summary="A certificate's state, status and batch"
)
def describe(identifier: OwnedCertificate, caller: Caller, runtime: Runtime) -> dict[str, Any]:
    return runtime.service.describe(caller.agency_code, identifier)


def _presentation(
    runtime: IssuerRuntime, agency_code: str, identifier: str, fields: str | None = None
) -> Presentation:
    presentation = runtime.service.package(agency_code, identifier)
    if fields:
        presentation = presentation.disclose(p.strip() for p in fields.split(",") if p.strip())
    return presentation


@router.get("/{identifier}/package", responses={200: PACKAGE_RESPONSE}, summary="The holder package (JSON)")
def package(identifier: OwnedCertificate, caller: Caller, runtime: Runtime) -> dict[str, Any]:
    return runtime.service.package(caller.agency_code, identifier).to_json()


@contextmanager
def _one_qr_code() -> Iterator[None]:
    try:
        yield
    except DataOverflowError:
        raise CertificateError(
            "Too many fields for one QR code: choose fewer with `fields`",
            code=ErrorCode.QR_TOO_LARGE,
            field="fields",
        ) from None


def _qr(render: Callable[[str], bytes], runtime: IssuerRuntime, presentation: Presentation) -> bytes:
    """The QR code of a verification link `<verifier node>/v#EC1:…` of `presentation`."""
    with _one_qr_code():
        return render(verify_link(runtime.settings.verifier_url, presentation.to_ec1()))


@router.get(
    "/{identifier}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="QR code as PNG: a verification link, <verifier node>/v#EC1:…",
)
def qr_code_png(
    identifier: OwnedCertificate, caller: Caller, runtime: Runtime, fields: Fields = None
) -> Response:
    presentation = _presentation(runtime, caller.agency_code, identifier, fields)
    return Response(_qr(qr_png, runtime, presentation), media_type="image/png")


@router.get(
    "/{identifier}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="QR code as SVG: a verification link, <verifier node>/v#EC1:…",
)
def qr_code_svg(
    identifier: OwnedCertificate, caller: Caller, runtime: Runtime, fields: Fields = None
) -> Response:
    presentation = _presentation(runtime, caller.agency_code, identifier, fields)
    return Response(_qr(qr_svg, runtime, presentation), media_type="image/svg+xml")


@router.get("/{identifier}/print", response_class=HTMLResponse, summary="Printable face (HTML)")
def print_html(
    identifier: OwnedCertificate,
    caller: Caller,
    runtime: Runtime,
    fields: Fields = None,
    lang: Literal["zh", "en"] = "zh",
) -> HTMLResponse:
    from issuer.printing import render_licence_html

    presentation = _presentation(runtime, caller.agency_code, identifier, fields)
    with _one_qr_code():
        return HTMLResponse(
            render_licence_html(presentation, verifier_url=runtime.settings.verifier_url, lang=lang)
        )


@router.get(
    "/{identifier}/print.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="Printable face (A4 PDF)",
)
def print_pdf(
    identifier: OwnedCertificate,
    caller: Caller,
    runtime: Runtime,
    fields: Fields = None,
    lang: Literal["zh", "en"] = "zh",
) -> Response:
    from issuer.printing import render_licence_pdf

    presentation = _presentation(runtime, caller.agency_code, identifier, fields)
    with _one_qr_code():
        pdf = render_licence_pdf(presentation, verifier_url=runtime.settings.verifier_url, lang=lang)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{identifier}.pdf"'},
    )


@router.get(
    "/{identifier}/licence.ofd",
    response_class=Response,
    responses={200: {"content": {"application/ofd": {}}}},
    summary="Printable face (OFD, GB/T 33190), sealed with the agency's SM2 key",
)
def print_ofd(
    identifier: OwnedCertificate,
    caller: Caller,
    runtime: Runtime,
    fields: Fields = None,
    lang: Literal["zh", "en"] = "zh",
) -> Response:
    """The PDF's face as an OFD file, its parts signed (GB/T 33190 §18, SM2 with SM3) with the
    agency's SM2 key, or unsigned for an agency that has none yet (`X-Ecert-Ofd-Sealed: false`).
    Audited `print` under `api-key:<id>`, as it applies the agency's seal."""
    from issuer.audit import AuditAction, AuditLog
    from issuer.ofd import MEDIA_TYPE, render_licence_ofd

    presentation = _presentation(runtime, caller.agency_code, identifier, fields)
    key = runtime.signers.national_key(caller.agency_code)
    with _one_qr_code():
        ofd = render_licence_ofd(
            presentation, verifier_url=runtime.settings.verifier_url, lang=lang, sm2_private_key=key
        )
    AuditLog(runtime.sessions).append(caller.agency_code, f"{API_KEY_PREFIX}{caller.key_id}", AuditAction.PRINT,
                                      identifier, {"format": "ofd", "lang": lang, "sealed": key is not None})  # fmt: skip
    return Response(
        ofd,
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{identifier}.ofd"',
            "X-Ecert-Ofd-Sealed": "true" if key is not None else "false",
        },
    )


@router.post("/{identifier}/status", response_model=StatusResponse, summary="Suspend, reinstate or revoke")
def change_status(
    identifier: OwnedCertificate, body: StatusRequest, caller: StatusChanging, runtime: Runtime
) -> dict[str, Any]:
    """Written on chain with the agency's key before it answers; revoked is final. Recorded in the
    agency's audit log under `api-key:<id>`; staff use the console, where a second person approves."""
    return runtime.status.change(
        caller.agency_code, identifier, STATUSES[body.status], body.reason, body.note,
        actor=f"{API_KEY_PREFIX}{caller.key_id}",
    )  # fmt: skip


@router.post(
    "/{identifier}/renewals",
    status_code=202,
    response_model=JobResponse,
    summary="Renew or amend (new version)",
)
def renew(
    identifier: OwnedCertificate,
    body: RenewalRequest,
    response: Response,
    caller: Issuing,
    runtime: Runtime,
    key: IdempotencyKey,
) -> JobResponse:
    """A new version (same serial, version + 1, previousIdentifier set); the old one is revoked
    (04 注销) on chain once the new one is confirmed."""
    return accepted(
        response, runtime.service.reissue(caller.agency_code, identifier, body.changes, idempotency_key=key)
    )


@router.post(
    "/{identifier}/claim-code",
    status_code=201,
    response_model=ClaimCodeResponse,
    summary="A one-time claim code for the holder",
)
def claim_code(identifier: OwnedCertificate, caller: Issuing, runtime: Runtime) -> ClaimCodeResponse:
    """Replaces any earlier code of this certificate; the holder's wallet redeems it at POST /v1/claims (the code in the body)."""
    code, expires = runtime.service.create_claim_code(caller.agency_code, identifier)
    return ClaimCodeResponse(code=code, expires_at=expires)
