"""GET/POST /v: the page a verification link `<node>/v#EC1:…` opens (a printed licence's QR code,
a wallet's offline QR code). The certificate is in the link's fragment, which browsers never send:
the page's script (`/static/verify.js`, served here, no CDN) reads it, drops it from the address
bar and history, and posts it with the page's form; the answer is the verdict page. Without
scripts, or with a code read some other way, the visitor pastes it into the same form.

A visitor needs no API key: like a share link's, the verification is logged as an anonymous visit
(their network and browser, the purpose they typed as their claim) with channel `qr`, and is
rate-limited per network (IPv4 /24, IPv6 /48). Chinese by default, English with `?lang=en`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.certificate.canonical import leaf_value
from registry.errors import EcertError
from registry.rate_limit import KeyedTokenBucket
from verifier.api.deps import Runtime
from verifier.api.openapi import answers
from verifier.api.verifications import request_digest
from verifier.i18n import LABELS, TEXT, field_label
from verifier.inputs import presentation_from_scanned
from verifier.service import ANONYMOUS, Visitor, Who, ip_prefix

router = APIRouter(tags=["verification links"])
SCRIPT = Path(__file__).parents[1] / "static" / "verify.js"
# The page runs its own script and posts its own form; nothing else (no framing, no referrer).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PURPOSE = "扫码核验 / verification link"  # what the access log says the visit was for
VISITS_PER_MIN = 60  # per network: a front desk scans a few a minute; a script hammering the node, more
MAX_CODE = 50_000  # an EC1 code may be 16,384 characters; its link percent-encodes some of them
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=select_autoescape()
)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]


def _page(status: int, lang: str, **context: Any) -> HTMLResponse:
    html = _templates.get_template("scan.html").render(
        t=TEXT[lang], lang=lang, labels=LABELS[lang], field_label=field_label, **context
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": PAGE_CSP})


def _in_label_order(values: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The fields in the order of the label catalogue (what a person reads first), not the proof's."""
    order = {path: i for i, path in enumerate(LABELS["zh"])}
    return sorted(values, key=lambda item: (order.get(item[0].split("[", 1)[0], len(order)), item[0]))


def _visits(request: Request) -> KeyedTokenBucket:
    state = request.app.state
    if not hasattr(state, "scan_visits"):
        state.scan_visits = KeyedTokenBucket(VISITS_PER_MIN)
    bucket: KeyedTokenBucket = state.scan_visits
    return bucket


@router.get(
    "/v", response_class=HTMLResponse, summary="The page of a verification link <node>/v#EC1:…",
    openapi_extra={"security": []}, responses={200: {"description": "The page (its script reads the link's fragment)"}, **answers(422)},
)  # fmt: skip
def scan_page(lang: Lang = "zh") -> HTMLResponse:
    return _page(200, lang, verdict=None, problem=None)


@router.post(
    "/v", response_class=HTMLResponse, summary="Verify the code the page read (or the visitor pasted)",
    openapi_extra={"security": []},
    responses={200: {"description": "The verdict page"}, 503: {"description": "The page: could not verify now"},
               **answers(400, 422, 429, s429="Too many verifications from your network: wait a minute")},
)  # fmt: skip
def verify_scanned(
    request: Request,
    rt: Runtime,
    code: Annotated[
        str, Form(min_length=1, max_length=MAX_CODE, description="EC1:… or a link <node>/v#EC1:…")
    ],
    purpose: Annotated[str, Form(max_length=200)] = "",
    lang: Annotated[str, Form(pattern="^(zh|en)$")] = "zh",
) -> HTMLResponse:
    host = request.client.host if request.client else None
    _visits(request).take(ip_prefix(host) or "unknown", what="verifications from your network")
    try:
        presentation = presentation_from_scanned(code)
        digest = request_digest(presentation)
    except EcertError as exc:
        return _page(exc.code.status, lang, verdict=None, problem=exc.code, code=code)
    result = rt.service.verify(
        presentation, who=Who(ANONYMOUS, ""), purpose=PURPOSE, channel="qr", request_digest=digest,
        visitor=Visitor.of(host, request.headers.get("user-agent"), purpose),
    )  # fmt: skip
    return _page(
        200 if result.http_status == 200 else 503, lang, problem=None, verdict=result.report.verdict.value,
        reason=result.report.reason, values=_in_label_order([(leaf.path, leaf_value(leaf)) for leaf in presentation.leaves]),
        checks=result.report.checks, receipt=result.receipt, source=result.source, block=result.block,
    )  # fmt: skip


@router.get("/static/verify.js", include_in_schema=False)
def script() -> Response:
    return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8")
