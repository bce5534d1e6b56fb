"""GET /s/{token}: the share link. People get a page (Chinese by default, English with
?lang=en, mobile-first, one big verdict); machines get the JSON report by `Accept`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.certificate.canonical import leaf_value
from registry.certificate.labels import is_technical
from registry.errors import EcertError
from verifier.api.deps import OptionalCaller, Runtime
from verifier.api.desk import signed_in_staff, staff_who
from verifier.api.openapi import OPTIONAL_API_KEY, answers
from verifier.api.schemas import ShareLinkOut
from verifier.api.verifications import request_digest
from verifier.checks.share import ShareTerms
from verifier.i18n import LABELS, TEXT, field_label
from verifier.service import ANONYMOUS, Visitor, Who
from verifier.shares import ShareNeedsIdentity

router = APIRouter(tags=["share links"])
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=select_autoescape()
)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _page(status: int, lang: str, **context: Any) -> HTMLResponse:
    html = _templates.get_template("share.html").render(
        t=TEXT[lang],
        lang=lang,
        labels=LABELS[lang],
        field_label=field_label,
        is_technical=is_technical,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def _signin_url(token: str, code: str | None, lang: str) -> str:
    """The front desk's sign-in, which brings the clerk back to this share (its code and language)."""
    back = f"/s/{quote(token, safe='')}?" + urlencode({**({"c": code} if code else {}), "lang": lang})
    return "/desk?" + urlencode({"lang": lang, "next": back})


@router.get(
    "/s/{token}", summary="Open a share link", response_model=None, openapi_extra=OPTIONAL_API_KEY,
    description="People get a page (Chinese, or English with `?lang=en`); send `Accept: application/json` "
    "for the report. With an API key the verification is your organisation's (its receipt is kept for "
    "you); without one it is an anonymous visit, logged for the holder.",
    responses={200: {"model": ShareLinkOut, "description": "The verification of the shared fields (a page, or JSON)",
                     "content": {"text/html": {"schema": {"type": "string"}}}},
               503: {"model": ShareLinkOut, "description": "Could not verify now: the partial report, never valid"},
               **answers(401, 404, 410, 422, 429, s401="The holder allows identified organisations only: send your API key",
                         s404="No such share, or a dynamic share's code has expired")},
)  # fmt: skip
def open_share(
    token: str,
    request: Request,
    rt: Runtime,
    who: OptionalCaller,
    c: str | None = Query(None, description="The dynamic code, for dynamic shares"),
    lang: str = Query("zh", pattern="^(zh|en)$"),
    purpose: str | None = Query(None, max_length=200),
) -> HTMLResponse | JSONResponse:
    # front-desk staff signed in at this node: their organisation and themselves (identified)
    clerk = None if who else signed_in_staff(request, rt)
    try:
        state = rt.shares.open(token, code=c, identified=who is not None or clerk is not None)
    except ShareNeedsIdentity as exc:  # anonymous, and the holder chose identified organisations only
        if _wants_json(request):
            raise
        return _page(
            401, lang, problem=exc.code, verdict=None, signin=True, signin_url=_signin_url(token, c, lang)
        )
    except EcertError as exc:
        if _wants_json(request):
            raise
        return _page(404, lang, problem=exc.code, verdict=None)
    if state.presentation is None:
        if _wants_json(request):
            return JSONResponse(
                {"code": state.problem, "share": state.to_json()},
                status_code=410,
                media_type="application/problem+json",
            )
        return _page(410, lang, problem=state.problem, verdict=None, share=state)
    terms = ShareTerms(state.id, state.fields, state.expires_at, state.single_use, False, state.withdrawn)
    # An organisation (API key) answers for the purpose it gives; an anonymous visitor's typed
    # purpose is only their claim: logged apart, with their network and browser, never as a purpose.
    visitor = (
        None
        if who or clerk
        else Visitor.of(
            request.client.host if request.client else None, request.headers.get("user-agent"), purpose
        )
    )
    result = rt.service.verify(
        state.presentation, who=Who(who.name, who.region, organisation_id=who.organisation_id) if who else staff_who(clerk) if clerk else Who(ANONYMOUS, ""),
        purpose=(purpose if who or clerk else None) or state.purpose, channel="link", request_digest=request_digest(state.presentation),
        share=terms, visitor=visitor,
    )  # fmt: skip
    if _wants_json(request):
        return JSONResponse({**result.to_json(), "share": state.to_json()}, status_code=result.http_status)
    return _page(
        200 if result.http_status == 200 else 503, lang, problem=None, verdict=result.report.verdict.value,
        reason=result.report.reason, values=[(leaf.path, leaf_value(leaf)) for leaf in state.presentation.leaves],
        type_code=str(state.presentation.fields().get("typeCode") or ""),
        checks=result.report.checks, share=state, receipt=result.receipt, source=result.source, block=result.block,
    )  # fmt: skip
