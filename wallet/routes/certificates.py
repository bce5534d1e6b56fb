"""The holder's certificates: the list with live status, one certificate's face, and claiming."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.problems import RateLimited
from registry.qr import decode_qr
from wallet.faces import face_rows
from wallet.i18n import problem_text
from wallet.vault import Card, StatusView
from wallet.web import FormDep, HolderDep, http_status, redirect

router = APIRouter(tags=["certificates"])
MAX_PHOTO_BYTES = 5 * 1024 * 1024


@router.get("/certificates", summary="The holder's certificates")
def certificates(p: HolderDep) -> Response:
    items: list[tuple[Card, StatusView]] = []
    for card in p.rt.vault.list(p.holder.id):
        # Once the verifier did not answer, do not make the holder wait for it once per certificate.
        down = items and items[-1][1].verdict == "UNAVAILABLE"
        items.append((card, items[-1][1] if down else p.rt.vault.status(card)))
    return p.render("certificates.html", items=items)


@router.get("/certificates/{card_id}", summary="A certificate's face and verification state")
def certificate(card_id: str, p: HolderDep) -> Response:
    card = p.rt.vault.get(p.holder.id, card_id)
    status = p.rt.vault.status(card, fresh=True)
    return p.render("certificate.html", card=card, face=face_rows(card.presentation, p.lang), status=status,
                    claimed=p.request.query_params.get("claimed") == "1")  # fmt: skip


@router.get("/claim", summary="Claim form")
def claim_form(p: HolderDep) -> Response:
    return p.render("claim.html", error=None, code="", welcome=p.request.query_params.get("welcome") == "1")


@router.post("/claim", summary="Claim a certificate with a one-time code")
async def claim(p: HolderDep, form: FormDep) -> Response:
    code = form.get("code")
    typed = code if isinstance(code, str) else ""
    photo = form.get("photo")
    try:
        text = typed
        if isinstance(photo, UploadFile) and photo.filename:
            raw = await photo.read(MAX_PHOTO_BYTES + 1)
            if len(raw) > MAX_PHOTO_BYTES:
                raise EcertError(
                    "The photo is larger than 5 MB", code=ErrorCode.UPLOAD_TOO_LARGE, field="photo"
                )
            text = decode_qr(raw)[0]
        card = await run_in_threadpool(p.rt.vault.claim, p.holder, text)
    except EcertError as exc:
        headers = (
            {"Retry-After": str(exc.details.get("retryAfter", 60))} if isinstance(exc, RateLimited) else None
        )
        error = {"code": exc.code, "text": problem_text(p.lang, exc.code, exc.message)}
        return p.render(
            "claim.html",
            status_code=http_status(exc),
            headers=headers,
            error=error,
            code=typed,
            welcome=False,
        )
    return redirect(f"/certificates/{card.id}?claimed=1")
