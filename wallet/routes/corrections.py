"""Correction requests: from a certificate's page, flag a wrong field or ask for renewal with a
message (elder mode: the field on one screen, the message on the next); the holder's requests
with their deadline and the agency's answer, asked again when the list is opened."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from registry.errors import EcertError
from registry.problems import RateLimited
from wallet.corrections import MAX_MESSAGE, CorrectionView, correctable, version_of, versions
from wallet.i18n import messages, problem_text
from wallet.services import ServiceRefused, ServiceUnavailable
from wallet.vault import Card
from wallet.web import FormDep, HolderDep, SignedInPage, http_status, redirect

router = APIRouter(tags=["corrections"])
RENEWAL = "renewal"  # the form's choice for "renew the certificate" beside the field paths


def _form_page(p: SignedInPage, card: Card, *, target: str = "", message: str = "", nonce: str = "",
               error: dict[str, str] | None = None, unavailable: bool = False, existing: str | None = None,
               status_code: int = 200) -> HTMLResponse:  # fmt: skip
    cards = p.rt.vault.list(p.holder.id)
    return p.render("correction_form.html", status_code=status_code, card=card, choices=correctable(card.presentation),
                    type_code=card.type_code, target=target, message=message, nonce=nonce or secrets.token_urlsafe(18),
                    error=error, unavailable=unavailable, existing=existing, max_message=MAX_MESSAGE,
                    versions=versions(card, cards))  # fmt: skip


@router.get("/certificates/{card_id}/correction", summary="Ask the agency to correct or renew a certificate")
def correction_form(card_id: str, p: HolderDep, target: str = Query("", max_length=120)) -> Response:
    card = p.rt.vault.get(p.holder.id, card_id)
    known = {c.path for c in correctable(card.presentation)} | {RENEWAL}
    return _form_page(p, card, target=target if target in known else "")


@router.post("/certificates/{card_id}/correction", summary="Send a correction request to the agency")
async def send_correction(card_id: str, p: HolderDep, form: FormDep) -> Response:
    card = p.rt.vault.get(p.holder.id, card_id)  # ownership before anything else
    target, message, nonce = (str(form.get(k) or "") for k in ("target", "message", "nonce"))
    kind = RENEWAL if target == RENEWAL else "field"
    try:
        made = await run_in_threadpool(p.rt.corrections.request, p.holder, card, kind,
                                       None if kind == RENEWAL else target, message, nonce)  # fmt: skip
    except ServiceUnavailable as exc:  # nothing lost: the draft stays in the form, same nonce for the retry
        error = {"code": exc.code, "text": p.t("correction.unavailable")}
        return _form_page(p, card, target=target, message=message, nonce=nonce, error=error, unavailable=True,
                          status_code=503)  # fmt: skip
    except ServiceRefused as exc:
        # The issuer's own code, even one this wallet does not list.
        code = str(exc.problem.get("code") or exc.code)
        existing = exc.problem.get("existingId") or exc.problem.get("id")
        text = messages(p.lang).get(f"correction.error.{code}") or problem_text(p.lang, code, exc.message)
        return _form_page(p, card, target=target, message=message, error={"code": code, "text": text},
                          existing=str(existing) if isinstance(existing, str) else None,
                          status_code=exc.status if 400 <= exc.status < 500 else 502)  # fmt: skip
    except EcertError as exc:
        headers = (
            {"Retry-After": str(exc.details.get("retryAfter", 60))} if isinstance(exc, RateLimited) else None
        )
        field = exc.details.get("field")
        text = p.t(f"correction.invalid_{field}") if field in ("target", "message") else ""
        error = {
            "code": exc.code,
            "field": str(field or ""),
            "text": text or problem_text(p.lang, exc.code, exc.message),
        }
        response = _form_page(p, card, target=target, message=message, nonce=nonce, error=error,
                              status_code=http_status(exc))  # fmt: skip
        response.headers.update(headers or {})
        return response
    return redirect(f"/corrections/{made.id}?sent=1")


def _cards(p: SignedInPage) -> dict[str, Card]:
    return {c.id: c for c in p.rt.vault.list(p.holder.id)}


@router.get("/corrections", summary="The holder's correction requests (asks the issuer about the open ones)")
async def corrections(p: HolderDep) -> Response:
    refreshed = await run_in_threadpool(p.rt.corrections.refresh, p.holder)
    return p.render("corrections.html", items=refreshed.items, unavailable=refreshed.unavailable,
                    now=p.rt.corrections.now(), cards=_cards(p), version_of=version_of)  # fmt: skip


@router.get(
    "/corrections/{request_id}", summary="One correction request: its deadline and the agency's answer"
)
async def correction(request_id: str, p: HolderDep) -> Response:
    item: CorrectionView = p.rt.corrections.get(p.holder.id, request_id)  # ownership first
    refreshed = await run_in_threadpool(p.rt.corrections.refresh, p.holder, only=item.id)
    item = p.rt.corrections.get(p.holder.id, request_id)
    return p.render("correction.html", item=item, unavailable=refreshed.unavailable, now=p.rt.corrections.now(),
                    cards=_cards(p), version_of=version_of, sent=p.request.query_params.get("sent") == "1")  # fmt: skip
