"""Language and elder mode: per holder once signed in, in a cookie before."""

from __future__ import annotations

from fastapi import APIRouter, Response

from wallet.holders import LANGS
from wallet.web import PREFS_COOKIE, FormDep, HolderDep, PageDep, redirect, safe_next

router = APIRouter(tags=["preferences"])


@router.get("/settings", summary="Settings")
def settings_page(p: HolderDep) -> Response:
    return p.render("settings.html", saved=p.request.query_params.get("saved") == "1")


@router.post("/settings", summary="Save language and elder mode")
def save(p: PageDep, form: FormDep) -> Response:
    asked = form.get("lang")
    lang = asked if isinstance(asked, str) and asked in LANGS else None
    elder = {"1": True, "0": False}.get(str(form.get("elder") or ""))
    back = safe_next(str(form.get("next") or "")) if form.get("next") else "/settings?saved=1"
    response = redirect(back)
    if p.holder:
        p.rt.holders.set_preferences(p.holder.id, lang=lang, elder=elder)
    else:  # before signing in: remembered by this browser only
        lang = lang or p.lang
        elder = p.elder if elder is None else elder
        response.set_cookie(
            PREFS_COOKIE, f"{lang}.{int(elder)}", max_age=365 * 86400, path="/", httponly=True, samesite="lax"
        )
    return response
