"""Sharing: choose fields, purpose, expiry and single use; the share's link and QR; the dynamic
QR for in-person checks (a new code every 30 s); the offline EC1 QR; list and withdraw."""

from __future__ import annotations

import base64
import datetime as dt

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from qrcode.exceptions import DataOverflowError

from registry.certificate.labels import is_technical
from registry.error_codes import ErrorCode
from registry.errors import EcertError
from registry.qr import qr_png
from wallet.i18n import problem_text
from wallet.presets import PRESET_KEYS, PRESETS, preset_fields
from wallet.sharing import EXPIRY_MINUTES, field_choices, share_hold
from wallet.vault import Card
from wallet.web import FormDep, HolderDep, SignedInPage, http_status, redirect

router = APIRouter(tags=["shares"])
DYNAMIC_WINDOW_S = 30  # the verifier's window (verifier.shares.DYNAMIC_WINDOW_S)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _form_page(
    p: SignedInPage,
    card: Card,
    *,
    error: dict[str, str] | None = None,
    chosen: list[str] | None = None,
    values: dict[str, str] | None = None,
    preset: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    choices = field_choices(card.presentation)
    if chosen is not None:
        picked = set(chosen)
    elif preset in PRESETS:
        picked = preset_fields(preset, [c.path for c in choices]) | {c.path for c in choices if c.always}
    else:
        picked = {c.path for c in choices if c.default}
    purpose = p.t(f"purpose.{preset}") if preset in PRESETS and preset != "custom" else ""
    hold = share_hold(card, p.rt.vault.status(card))
    return p.render("share_form.html", status_code=status_code, card=card, choices=choices, picked=picked,
                    expiries=EXPIRY_MINUTES, presets=PRESET_KEYS, preset=preset, hold=hold, is_technical=is_technical,
                    type_code=str(card.fields.get("typeCode") or ""), error=error,
                    values=values or {"expiry": "60", "purpose": purpose, "mode": "link", "identified_only": ""})  # fmt: skip


@router.get("/certificates/{card_id}/share", summary="Share form (?preset=bank|rent|job|errand|custom)")
def share_form(card_id: str, p: HolderDep, preset: str = "") -> Response:
    return _form_page(p, p.rt.vault.get(p.holder.id, card_id), preset=preset if preset in PRESETS else "")


@router.post("/certificates/{card_id}/share", summary="Create a share")
def create_share(card_id: str, p: HolderDep, form: FormDep) -> Response:
    card = p.rt.vault.get(p.holder.id, card_id)  # ownership before anything else
    chosen = [v for v in form.getlist("fields") if isinstance(v, str)]
    values = {k: str(form.get(k) or "") for k in ("expiry", "purpose", "mode", "identified_only")}
    try:
        try:
            minutes = int(values["expiry"])
        except ValueError:
            raise EcertError(
                "Choose how long the share lasts", code=ErrorCode.SHARE_LIFETIME_INVALID, field="expiry"
            ) from None
        share = p.rt.sharing.create(
            p.holder, card, chosen, purpose=values["purpose"], minutes=minutes,
            single_use=form.get("single_use") == "1", dynamic=values["mode"] == "dynamic",
            identified_only=values["identified_only"] == "1",
        )  # fmt: skip
    except EcertError as exc:
        error = {"code": exc.code, "text": problem_text(p.lang, exc.code, exc.message)}
        return _form_page(p, card, error=error, chosen=chosen, values=values, status_code=http_status(exc))
    return redirect(f"/shares/{share.id}/dynamic" if share.dynamic else f"/shares/{share.id}")


@router.get("/shares", summary="The holder's shares")
def shares(p: HolderDep) -> Response:
    items, live = p.rt.sharing.list(p.holder)
    names = {c.id: str(c.fields.get("name", "")) for c in p.rt.vault.list(p.holder.id)}
    return p.render("shares.html", items=items, live=live, names=names)


@router.get("/shares/{share_id}", summary="A share: its link, QR codes and state")
def share(share_id: str, p: HolderDep) -> Response:
    item = p.rt.sharing.get(p.holder, share_id)
    card = p.rt.vault.get(p.holder.id, item.certificate_id)
    link_qr = data_uri(qr_png(item.url)) if item.active and not item.dynamic else None
    offline_qr = offline_error = None
    if item.active:
        try:
            offline_qr = data_uri(qr_png(p.rt.sharing.offline_code(p.holder, share_id)))
        except DataOverflowError:
            offline_error = problem_text(p.lang, ErrorCode.QR_TOO_LARGE)
    return p.render("share.html", item=item, card=card, link_qr=link_qr, offline_qr=offline_qr, offline_error=offline_error,
                    withdrawn_now=p.request.query_params.get("withdrawn") == "1")  # fmt: skip


@router.get("/shares/{share_id}/dynamic", summary="The dynamic QR for in-person checks")
def dynamic_page(share_id: str, p: HolderDep) -> Response:
    item = p.rt.sharing.get(p.holder, share_id)
    if not item.dynamic:
        return redirect(f"/shares/{share_id}")
    card = p.rt.vault.get(p.holder.id, item.certificate_id)
    now = dt.datetime.now(dt.UTC)
    left_s = DYNAMIC_WINDOW_S - int(now.timestamp()) % DYNAMIC_WINDOW_S
    return p.render("dynamic.html", item=item, card=card, now=now, left_s=left_s, window_s=DYNAMIC_WINDOW_S)


@router.get("/shares/{share_id}/dynamic.png", summary="The current dynamic QR (changes every 30 s)")
def dynamic_png(share_id: str, p: HolderDep) -> Response:
    url, valid_until = p.rt.sharing.dynamic_link(p.holder, share_id)
    return Response(qr_png(url), media_type="image/png",
                    headers={"Cache-Control": "no-store", "X-Valid-Until": valid_until.isoformat()})  # fmt: skip


@router.post("/shares/{share_id}/withdraw", summary="Withdraw a share")
def withdraw(share_id: str, p: HolderDep, form: FormDep) -> Response:
    p.rt.sharing.withdraw(p.holder, share_id)
    back = form.get("back")
    return redirect("/shares" if back == "list" else f"/shares/{share_id}?withdrawn=1")
