"""The access log (谁访问、谁负责): every verification of the holder's certificates. Opening it
marks every entry shown as seen; the home screen counts the newer ones (the unread badge)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from registry.errors import EcertError
from wallet.i18n import problem_text
from wallet.sharing import access_log
from wallet.web import HolderDep, SignedInPage, http_status

router = APIRouter(tags=["access log"])


def unread_count(p: SignedInPage) -> int | None:
    """How many looks at the holder's certificates are newer than the log they last opened
    (None when the verifier cannot say: no badge rather than a wrong one)."""
    try:
        entries, _own = access_log(p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name)
    except EcertError:
        return None
    seen = p.rt.holders.access_seen_at(p.holder.id)
    return sum(1 for e in entries if seen is None or e.at > seen)


@router.get("/access-log", summary="Who verified the holder's certificates")
def access(p: HolderDep) -> Response:
    try:
        entries, own = access_log(p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name)
    except EcertError as exc:
        return p.render("access_log.html", status_code=http_status(exc), entries=[], own=0, types={},
                        error=problem_text(p.lang, exc.code, exc.message))  # fmt: skip
    if entries:
        p.rt.holders.mark_access_seen(p.holder.id, max(e.at for e in entries))
    types = {c.id: str(c.fields.get("typeCode") or "") for c in p.rt.vault.list(p.holder.id)}
    return p.render("access_log.html", entries=entries, own=own, error=None, types=types)
