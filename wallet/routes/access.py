"""The access log (谁访问、谁负责): every verification of the holder's certificates."""

from __future__ import annotations

from fastapi import APIRouter, Response

from registry.errors import EcertError
from wallet.i18n import problem_text
from wallet.sharing import access_log
from wallet.web import HolderDep, http_status

router = APIRouter(tags=["access log"])


@router.get("/access-log", summary="Who verified the holder's certificates")
def access(p: HolderDep) -> Response:
    try:
        entries, own = access_log(p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name)
    except EcertError as exc:
        return p.render("access_log.html", status_code=http_status(exc), entries=[], own=0,
                        error=problem_text(p.lang, exc.code, exc.message))  # fmt: skip
    return p.render("access_log.html", entries=entries, own=own, error=None)
