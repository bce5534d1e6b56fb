"""/desk: the front desk of a verifier node for bank clerks and provincial officers (issue 11,
points 1–3). A clerk of an organisation registered here signs in (`verifier.staff`: password and
TOTP), then verifies a certificate three ways on one page: the device camera (jsQR, an npm package
served by this node, never a CDN), a photo or a PDF page (zbar here, the PDF's first page drawn
by Ghostscript), or an `EC1:` code or share link typed, pasted or sent by a USB scanner (a focused
field that submits on Enter). Every verification is logged with the organisation and the clerk.
Chinese by default, English with `?lang=en`; 长辈模式 (large text, big targets) with `?mode=elder`,
remembered by a cookie. A share page for identified organisations only sends the clerk here with
`next=/s/<token>`, and back there once signed in (only to such a path: never an open redirect).

The page's script and the camera's decoder are compressed once (gzip, kept in memory) and sent so
to browsers that accept it; their URLs carry the content's hash, so they are cached for a year.
The page itself is never compressed: it carries the CSRF token beside text a visitor chose
(BREACH)."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.certificate.links import read_scanned, share_link_node
from registry.certificate.presentation import Presentation
from registry.chain.runner import PROJECT_ROOT
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, EcertError
from registry.qr import decode_qr
from registry.staff_auth import same_origin
from verifier.api.deps import Runtime
from verifier.api.verifications import request_digest
from verifier.checks.share import ShareTerms
from verifier.desk_text import DESK
from verifier.desk_view import desk_result
from verifier.remote import fetch_shared_presentation
from verifier.runtime import VerifierRuntime
from verifier.service import Who
from verifier.staff import SignedInStaff

router = APIRouter(tags=["front desk"], include_in_schema=False)
SESSION_COOKIE = "desk_session"
PRE_COOKIE = "desk_pre"  # binds the sign-in form's CSRF token before there is a session
MODE_COOKIE = "desk_mode"  # "elder" (长辈模式) or "standard", chosen with ?mode=…
MODES = ("standard", "elder")
JSQR = PROJECT_ROOT / "node_modules" / "jsqr" / "dist" / "jsQR.js"
SCRIPT = Path(__file__).parents[1] / "static" / "desk.js"
MAX_UPLOAD = 10 * 1024 * 1024
PURPOSE = "前台核验 / front desk"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
Mode = Annotated[str | None, Query(pattern="^(standard|elder)$")]
Next = Annotated[str | None, Query(alias="next", max_length=600)]
SHARE_PATH = re.compile(r"/s/[A-Za-z0-9_-]{1,128}")
SHARE_CODE = re.compile(r"[0-9A-Za-z_-]{1,64}")
YEAR = 365 * 24 * 3600
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=select_autoescape()
)


def signed_in_staff(request: Request, rt: VerifierRuntime) -> SignedInStaff | None:
    """The clerk signed in at this browser's desk, if any (the share page logs them too)."""
    token = request.cookies.get(SESSION_COOKIE)
    return rt.staff.resolve(token) if token else None  # an anonymous visitor costs no lookup


def staff_who(signed: SignedInStaff) -> Who:
    m = signed.member
    return Who(m.organisation, m.organisation_region, staff=f"{m.display_name} ({m.username})",
               organisation_id=m.organisation_id, staff_id=m.id)  # fmt: skip


def safe_next(value: str | None) -> str | None:
    """Where a clerk goes once signed in: a share page of this node, `/s/<token>` with its dynamic
    code `c` and `lang` (rebuilt from those parts), or nothing. Never another origin: no scheme,
    host, `//`, backslash, control character, encoded or non-ASCII character in the path."""
    if not value or len(value) > 600 or not value.startswith("/s/"):
        return None
    if "\\" in value or any(ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment or not SHARE_PATH.fullmatch(parts.path):
        return None
    query = parse_qs(parts.query)
    kept: dict[str, str] = {}
    if "c" in query:
        if not SHARE_CODE.fullmatch(query["c"][0]):
            return None
        kept["c"] = query["c"][0]
    if query.get("lang", [""])[0] in ("zh", "en"):
        kept["lang"] = query["lang"][0]
    return parts.path + (f"?{urlencode(kept)}" if kept else "")


def _elder(request: Request) -> bool:
    asked = request.query_params.get("mode")
    return (asked if asked in MODES else request.cookies.get(MODE_COOKIE)) == "elder"


def _desk_url(lang: str, follow: str | None, mode: str | None = None) -> str:
    query = {"lang": lang, **({"mode": mode} if mode else {}), **({"next": follow} if follow else {})}
    return f"/desk?{urlencode(query)}"


def _binding(request: Request, signed: SignedInStaff | None) -> str | None:
    if signed:
        return f"session:{signed.token_hash}"
    pre = getattr(request.state, "desk_pre", None) or request.cookies.get(PRE_COOKIE)
    return f"pre:{pre}" if pre else None


def _same_origin(request: Request) -> bool:
    return same_origin(request.headers.get("origin"), request.headers.get("host", ""))


def _page(request: Request, rt: VerifierRuntime, lang: str, signed: SignedInStaff | None, status: int = 200,
          **context: Any) -> HTMLResponse:  # fmt: skip
    new_pre = None
    if signed is None and not request.cookies.get(PRE_COOKIE):
        new_pre = request.state.desk_pre = secrets.token_urlsafe(24)
    binding = _binding(request, signed)
    elder = _elder(request)
    follow = safe_next(context.pop("follow", None))
    html = _templates.get_template("desk.html").render(
        t=DESK[lang], lang=lang, staff=signed.member if signed else None,
        csrf=rt.staff.csrf_token(binding or ""), camera=JSQR.is_file(), elder=elder, follow=follow,
        other_lang_url=_desk_url("en" if lang == "zh" else "zh", follow),
        mode_url=_desk_url(lang, follow, "standard" if elder else "elder"),
        script_url=f"/static/desk.js?v={_asset(SCRIPT).version}",
        decoder_url=f"/desk/jsqr.js?v={_asset(JSQR).version}" if JSQR.is_file() else "", **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": PAGE_CSP, "Permissions-Policy": "camera=(self)", "Cache-Control": "no-store",
        "Referrer-Policy": "same-origin"})  # fmt: skip
    if new_pre:
        response.set_cookie(
            PRE_COOKIE, new_pre, path="/desk", httponly=True, samesite="strict", secure=_secure(request)
        )
    asked = request.query_params.get("mode")
    if asked in MODES and asked != request.cookies.get(MODE_COOKIE):
        response.set_cookie(MODE_COOKIE, asked, path="/desk", max_age=YEAR, httponly=True, samesite="lax",
                            secure=_secure(request))  # fmt: skip
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _problem(exc: EcertError) -> int:
    return exc.code.status if 400 <= exc.code.status < 600 else 400


@router.get("/desk", response_model=None, summary="The front desk (sign-in, then verify)")
def desk(
    request: Request, rt: Runtime, lang: Lang = "zh", mode: Mode = None, follow: Next = None
) -> Response:
    signed = signed_in_staff(request, rt)
    target = safe_next(follow)
    if signed and target:  # signed in already (another tab): straight back to the share
        return RedirectResponse(target, status_code=303)
    return _page(request, rt, lang, signed, follow=target)


@router.post("/desk/login", response_model=None)
def sign_in(
    request: Request, rt: Runtime,
    username: Annotated[str, Form(max_length=64)] = "", password: Annotated[str, Form(max_length=128)] = "",
    code: Annotated[str, Form(max_length=12)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
    lang: Annotated[str, Form(pattern="^(zh|en)$")] = "zh",
    follow: Annotated[str, Form(alias="next", max_length=600)] = "",
) -> Response:  # fmt: skip
    target = safe_next(follow)
    if not _same_origin(request) or not rt.staff.csrf_ok(_binding(request, None), csrf_token):
        return _page(request, rt, lang, None, 403, problem=ErrorCode.CSRF_INVALID.value, follow=target)
    host = request.client.host if request.client else "unknown"
    try:
        token = rt.staff.sign_in(username, password, code, network=host)
    except EcertError as exc:
        response = _page(request, rt, lang, None, _problem(exc), problem=exc.code.value, username=username,
                         follow=target)  # fmt: skip
        if exc.code is ErrorCode.RATE_LIMITED and "retryAfter" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retryAfter"])
        return response
    done = RedirectResponse(target or f"/desk?lang={lang}", status_code=303)
    done.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="lax", secure=_secure(request))
    done.delete_cookie(PRE_COOKIE, path="/desk")
    return done


@router.post("/desk/logout", response_model=None)
def sign_out(
    request: Request, rt: Runtime, csrf_token: Annotated[str, Form(max_length=100)] = "",
    lang: Annotated[str, Form(pattern="^(zh|en)$")] = "zh",
) -> Response:  # fmt: skip
    signed = signed_in_staff(request, rt)
    if (
        signed is None
        or not _same_origin(request)
        or not rt.staff.csrf_ok(_binding(request, signed), csrf_token)
    ):
        return _page(request, rt, lang, signed, 403, problem=ErrorCode.CSRF_INVALID.value)
    rt.staff.sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"/desk?lang={lang}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/desk/verify", response_class=HTMLResponse)
def verify_at_desk(
    request: Request, rt: Runtime,
    code: Annotated[str, Form(max_length=50_000)] = "", file: Annotated[UploadFile | None, File()] = None,
    purpose: Annotated[str, Form(max_length=200)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
    lang: Annotated[str, Form(pattern="^(zh|en)$")] = "zh",
) -> HTMLResponse:  # fmt: skip
    signed = signed_in_staff(request, rt)
    if signed is None:
        return _page(request, rt, lang, None, 401, problem=ErrorCode.LOGIN_REQUIRED.value)
    if not _same_origin(request) or not rt.staff.csrf_ok(_binding(request, signed), csrf_token):
        return _page(request, rt, lang, signed, 403, problem=ErrorCode.CSRF_INVALID.value)
    try:
        text = code.strip() or _read_upload(file)
        presentation, verified = _verify(rt, text, staff_who(signed), purpose.strip() or PURPOSE)
    except EcertError as exc:
        return _page(request, rt, lang, signed, _problem(exc), problem=exc.code.value)
    history = rt.history

    def agency_name(agency: str) -> str | None:
        found = history.agency(agency)
        return found.name if found else None

    view = desk_result(verified, presentation, lang, agency_name)
    return _page(request, rt, lang, signed, verified.http_status, result=view)


def _read_upload(file: UploadFile | None) -> str:
    """The QR code's text in an uploaded photo (PNG, JPEG…) or the first page of a PDF."""
    if file is None:
        raise CertificateError("Scan, upload or enter a code", code=ErrorCode.QR_UNREADABLE, field="code")
    raw = file.file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise CertificateError("The file is larger than 10 MB", code=ErrorCode.UPLOAD_TOO_LARGE, field="file")
    if raw.startswith(b"%PDF-"):
        raw = _first_page_png(raw)
    codes = decode_qr(raw)
    return next((c for c in codes if c.startswith(("EC1:", "http://", "https://"))), codes[0])


def _first_page_png(pdf: bytes) -> bytes:
    """The PDF's first page drawn at 150 dpi in grey by Ghostscript (-dSAFER: no file access)."""
    gs = shutil.which("gs")
    if gs is None:
        raise CertificateError(
            "Ghostscript is not installed: PDFs cannot be read", code=ErrorCode.INPUT_FORMAT
        )
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.pdf"), Path(folder, "page.png")
        source.write_bytes(pdf)
        done = subprocess.run(
            [gs, "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pnggray", "-r150", "-dFirstPage=1",
             "-dLastPage=1", f"-sOutputFile={target}", str(source)],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not target.is_file():
            raise CertificateError("The PDF could not be drawn", code=ErrorCode.QR_UNREADABLE, field="file")
        return target.read_bytes()


def _verify(rt: VerifierRuntime, text: str, who: Who, purpose: str) -> tuple[Presentation, Any]:
    scanned = read_scanned(text)
    if scanned.ec1 is not None:
        presentation = Presentation.from_ec1(scanned.ec1)
        return presentation, rt.service.verify(
            presentation, who=who, purpose=purpose, channel="qr", request_digest=request_digest(presentation)
        )
    assert scanned.share_url is not None  # read_scanned gives one of the two
    if share_link_node(scanned.share_url).rstrip("/") != rt.settings.public_url.rstrip("/"):
        remote = fetch_shared_presentation(scanned.share_url, rt.settings.trusted_nodes, rt.settings.node_key)
        presentation = remote.presentation
        return presentation, rt.service.verify(presentation, who=who, purpose=purpose, channel="link",
                                               request_digest=request_digest(presentation), remote=remote)  # fmt: skip
    parts = urlsplit(scanned.share_url)
    token = parts.path.rstrip("/").rsplit("/s/", 1)[1]
    state = rt.shares.open(token, code=next(iter(parse_qs(parts.query).get("c", [])), None))
    if state.presentation is None:
        raise CertificateError(
            "The share no longer shows its fields",
            code=ErrorCode.of(state.problem, ErrorCode.SHARE_NOT_FOUND),
        )
    terms = ShareTerms(state.id, state.fields, state.expires_at, state.single_use, False, state.withdrawn)
    return state.presentation, rt.service.verify(
        state.presentation, who=who, purpose=purpose, channel="link",
        request_digest=request_digest(state.presentation), share=terms,
    )  # fmt: skip


@dataclass(frozen=True)
class _Asset:
    stamp: tuple[int, int]  # the file's mtime and size when read
    raw: bytes
    gzipped: bytes
    version: str  # the content's hash: the `?v=` of its URL


_assets: dict[Path, _Asset] = {}


def _asset(path: Path) -> _Asset:
    """The file and its gzip, made once and kept in memory (again only if the file changed)."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    kept = _assets.get(path)
    if kept is None or kept.stamp != stamp:
        raw = path.read_bytes()
        kept = _Asset(stamp, raw, gzip.compress(raw, compresslevel=9, mtime=0),
                      hashlib.sha256(raw).hexdigest()[:12])  # fmt: skip
        _assets[path] = kept
    return kept


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `Accept-Encoding` allows gzip (named, or `*`, with a q above 0)."""
    allowed: dict[str, bool] = {}
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name.strip():
            allowed[name.strip().lower()] = q > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


def _serve_asset(request: Request, path: Path, unversioned_cache: str) -> Response:
    """A script, gzipped if the browser takes it; cached for a year when asked for by its hash."""
    asset = _asset(path)
    zipped = accepts_gzip(request.headers.get("accept-encoding"))
    versioned = request.query_params.get("v") == asset.version
    etag = f'"{asset.version}{"-gz" if zipped else ""}"'
    headers = {"Cache-Control": f"public, max-age={YEAR}, immutable" if versioned else unversioned_cache,
               "Vary": "Accept-Encoding", "ETag": etag, "X-Content-Type-Options": "nosniff"}  # fmt: skip
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return Response(asset.gzipped if zipped else asset.raw, media_type="text/javascript; charset=utf-8",
                    headers=headers)  # fmt: skip


@router.get("/desk/jsqr.js")
def jsqr(request: Request) -> Response:
    """jsQR 1.4.0 (npm, package.json), the camera's QR decoder: loaded only when the camera starts."""
    if not JSQR.is_file():
        return Response(status_code=404)
    return _serve_asset(request, JSQR, "public, max-age=86400")


@router.get("/static/desk.js")
def script(request: Request) -> Response:
    return _serve_asset(request, SCRIPT, "no-cache")
