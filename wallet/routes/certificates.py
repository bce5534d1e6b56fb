"""The holder's certificates: the list with live status, one certificate's face, and claiming."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.problems import RateLimited
from registry.qr import decode_qr
from wallet.corrections import versions
from wallet.faces import face_rows
from wallet.i18n import problem_text
from wallet.routes.access import unread_count
from wallet.sharing import ShareHold, share_hold
from wallet.vault import Card, StatusView
from wallet.web import FormDep, HolderDep, SignedInPage, http_status, redirect

router = APIRouter(tags=["certificates"])
MAX_PHOTO_BYTES = 5 * 1024 * 1024


def cards_with_status(p: SignedInPage) -> list[tuple[Card, StatusView, ShareHold | None]]:
    """The holder's certificates, each with its status and, if suspended or revoked, why."""
    items: list[tuple[Card, StatusView, ShareHold | None]] = []
    for card in p.rt.vault.list(p.holder.id):
        # Once the verifier did not answer, do not make the holder wait for it once per certificate.
        down = items and items[-1][1].verdict == "UNAVAILABLE"
        status = items[-1][1] if down else p.rt.vault.status(card)
        items.append((card, status, share_hold(card, status)))
    return items


@router.get("/certificates", summary="The holder's certificates (the standard home screen)")
def certificates(p: HolderDep) -> Response:
    return p.render("certificates.html", items=cards_with_status(p), unread=unread_count(p))


@router.get("/certificates/{card_id}", summary="A certificate's face and verification state")
def certificate(card_id: str, p: HolderDep) -> Response:
    card = p.rt.vault.get(p.holder.id, card_id)
    status = p.rt.vault.status(card, fresh=True)
    return p.render("certificate.html", card=card, face=face_rows(card.presentation, p.lang), status=status,
                    hold=share_hold(card, status), claimed=p.request.query_params.get("claimed") == "1",
                    versions=versions(card, p.rt.vault.list(p.holder.id)))  # fmt: skip


@router.post("/certificates/{card_id}/show", summary="One tap: the full-screen dynamic code of a certificate")
def show(card_id: str, p: HolderDep, _form: FormDep) -> Response:
    """Reuses the holder's live in-person share of this certificate, or makes one (1 hour, the
    purpose's default fields), and opens its dynamic code."""
    card = p.rt.vault.get(p.holder.id, card_id)
    share = p.rt.sharing.in_person(p.holder, card)
    return redirect(f"/shares/{share.id}/dynamic")


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
