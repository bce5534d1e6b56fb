"""The access log (谁访问、谁负责): every verification of the holder's certificates, a page at a
time, newest first: "更早的记录 / Older" follows the verifier's cursor to the next page, so entries
pushed back by many later looks are still reached. Opening the log marks every entry shown as
seen; the home screen counts the newer ones (the unread badge)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from registry.errors import EcertError
from wallet.i18n import problem_text
from wallet.sharing import access_log_page
from wallet.web import HolderDep, SignedInPage, http_status

router = APIRouter(tags=["access log"])
PAGE_SIZE = 50  # entries a page of the log shows: short enough for the elder mode's large type


def unread_count(p: SignedInPage) -> int | str | None:
    """How many looks at the holder's certificates are newer than the log they last opened
    (None when the verifier cannot say: no badge rather than a wrong one). More than a page of
    them is "N+": the holder is told there are many, the count not read page by page."""
    try:
        page = access_log_page(p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name)
    except EcertError:
        return None
    seen = p.rt.holders.access_seen_at(p.holder.id)
    unread = sum(1 for e in page.entries if seen is None or e.at > seen)
    if page.older is not None and unread == len(page.entries) and unread:
        return f"{unread}+"  # the whole newest page is unread, and older entries may be too
    return unread


@router.get("/access-log", summary="Who verified the holder's certificates")
def access(
    p: HolderDep,
    before: str | None = Query(
        None, min_length=1, max_length=200, description="The page: the verifier's cursor"
    ),
) -> Response:
    try:
        page = access_log_page(p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name,
                               before=before, limit=PAGE_SIZE)  # fmt: skip
    except EcertError as exc:
        return p.render("access_log.html", status_code=http_status(exc), entries=[], own=0, types={},
                        error=problem_text(p.lang, exc.code, exc.message), older_href=None,
                        newest_href="/access-log" if before else None)  # fmt: skip
    if page.entries:  # never moves back: an older page marks nothing new
        p.rt.holders.mark_access_seen(p.holder.id, max(e.at for e in page.entries))
    types = {c.id: str(c.fields.get("typeCode") or "") for c in p.rt.vault.list(p.holder.id)}
    older_href = f"/access-log?{urlencode({'before': page.older})}" if page.older else None
    return p.render("access_log.html", entries=page.entries, own=page.own, error=None, types=types,
                    older_href=older_href, newest_href="/access-log" if before else None)  # fmt: skip
