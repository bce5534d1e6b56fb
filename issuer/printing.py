"""The printable face of an e-licence (like a 营业执照 副本): an HTML page and an A4 PDF.

Both are pure functions of a `Presentation`: one `LicenceFace` (labels, formatted values, what
to hide) is built from the disclosed fields and drawn either by the Jinja2 template
`templates/licence.html` or by reportlab. Personal ID numbers are never printed in full: only
a USCC (codeType 001) holder code is shown as is; any other holder code is shown masked.

The QR code is a verification link `<verifier node>/v#EC1:…` (`registry.certificate.links`) of a
small disclosure (`qr_disclosure`: what the licence is, who holds it, until when), not of the
whole package: a phone opens it, `ecert verify` reads it offline, and its density stays low
enough for a 100 dpi copy of the page to scan (the PDF draws it with modules of `QR_MODULE_MM`).
It never holds a full ID number. The PDF embeds its fonts (a subset of Noto CJK, `registry.pdf_fonts`).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.certificate.labels import FACE_LABELS, TYPE_EXT_LABELS, face_label, field_label
from registry.certificate.links import verify_link
from registry.certificate.model import CODE_TYPE_ID_NUMBER, CODE_TYPE_USCC, mask_code
from registry.certificate.presentation import Presentation
from registry.pdf_fonts import embedded_fonts, font_name
from registry.qr import qr_modules, qr_png

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
TEXT_FONT, TITLE_FONT, MONO_FONT = font_name("text"), font_name("title"), font_name("mono")
# What the printed QR code discloses, besides `BOUND_PATHS` (identifier, type, agency): the holder,
# so that a genuine code pasted on a forged page shows someone else, and the validity period the
# verifier checks. The rest is read from the paper. The whole package would double the code's size.
QR_PATHS = ("holder.name", "validFrom", "validUntil")
QR_MODULE_MM = 0.762  # 3 pixels at 100 dpi: a scan or fax of the page at 100 dpi still decodes
QR_MAX_MM = 105.0  # with the quiet zone; a code this wide (very large batches) gets smaller modules

# The licence's CSS names rows it knows; any other row is styled as "other".
_STYLED = {*FACE_LABELS, "number", "validity", "issuedDate", "identifier", "previousIdentifier"} | {
    f"ext.{key}" for labels in TYPE_EXT_LABELS.values() for key in labels
}
_EXT_ORDER = [key for labels in TYPE_EXT_LABELS.values() for key in labels]  # a type without its own
TEXTS = {
    "subtitle": ("电子证照打印件", "Printed copy of an electronic licence"),
    "permanent": ("长期", "long-term (长期)"),
    "until": ("至", "to"),
    "hidden": ("（未披露）", "(not disclosed)"),
    "partial": (
        "部分披露：仅显示持证人选择出示的信息",
        "Selective disclosure: only the fields the holder chose to show",
    ),
    "note": (
        "本件为电子证照打印件，真伪以扫码核验结果为准。",
        "This is a printout of an electronic licence: scan the QR code to verify it.",
    ),
    "caption": ("扫码核验 / Scan to verify", "扫码核验 / Scan to verify"),
}


@dataclass(frozen=True)
class Row:
    key: str  # a field path, or a FACE_LABELS key
    label: str
    value: str
    label_alt: str | None = None  # the Chinese label under an English one
    hidden: bool = False

    @property
    def css(self) -> str:
        return self.key.replace(".", "-") if self.key in _STYLED else "other"


@dataclass(frozen=True)
class LicenceFace:
    """Everything printed on the licence, already formatted and masked."""

    lang: str
    title: str
    subtitle: str
    header: tuple[Row, ...]
    rows: tuple[Row, ...]
    issuer: Row
    issued: Row
    identifier: Row
    previous: Row | None
    partial_note: str | None
    note: str
    caption: str


def _text(key: str, lang: str) -> str:
    return TEXTS[key][lang == "en"]


def _row(key: str, value: Any, lang: str, type_code: str = "") -> Row:
    """Labels come from the registry's catalogue (`registry.certificate.labels`), so a field reads
    the same on paper as in the wallet; a missing value is '（未披露）'."""
    if key in FACE_LABELS or "." not in key:
        zh, en = face_label(key, "zh"), face_label(key, "en")
    else:
        zh, en = field_label(type_code, key, "zh"), field_label(type_code, key, "en")
    hidden = value is None or value == ""
    text = _text("hidden", lang) if hidden else _format_value(value)
    return Row(key, en if lang == "en" else zh, text, zh if lang == "en" and zh != en else None, hidden)


def _format_value(value: Any) -> str:
    """Lists (and gapped lists, which come back as {index: value}) joined with '；'."""
    if isinstance(value, list):
        return "；".join(_format_value(v) for v in value)
    if isinstance(value, dict):
        if all(isinstance(k, int) for k in value):
            return "；".join(_format_value(value[k]) for k in sorted(value))
        return "；".join(f"{k}：{_format_value(v)}" for k, v in value.items())
    return ("是" if value else "否") if isinstance(value, bool) else str(value)


def _date(value: Any, lang: str) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return value
    return day.isoformat() if lang == "en" else f"{day.year}年{day.month:02d}月{day.day:02d}日"


def _holder_code(holder: dict[str, Any], lang: str) -> Row | None:
    """A USCC in full; anything else (ID numbers above all) masked, never in full."""
    code, masked, code_type = holder.get("code"), holder.get("codeMasked"), holder.get("codeType")
    if code_type == CODE_TYPE_USCC:
        return _row("uscc", code or masked, lang)
    shown = masked or (mask_code(str(code)) if code else None)
    return (
        _row("idNumber" if code_type == CODE_TYPE_ID_NUMBER else "holderCode", shown, lang) if shown else None
    )


def licence_face(presentation: Presentation, lang: str = "zh") -> LicenceFace:
    """The formatted face of a licence (shared by the HTML and the PDF)."""
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    fields = presentation.fields()
    holder, issuer, ext = _section(fields, "holder"), _section(fields, "issuer"), _section(fields, "ext")
    partial = presentation.is_partial

    header = [row for row in (_holder_code(holder, lang), _row("number", fields.get("number"), lang)) if row]

    person = holder.get("codeType") == CODE_TYPE_ID_NUMBER
    rows = [_row("holderPerson" if person else "holderOrg", holder.get("name"), lang)]
    type_code = str(fields.get("typeCode") or "")
    order = list(TYPE_EXT_LABELS.get(type_code) or _EXT_ORDER)
    ordered = sorted(ext, key=lambda k: order.index(k) if k in order else len(order))
    rows.extend(_row(f"ext.{key}", ext[key], lang, type_code) for key in ordered)

    start, end = _date(fields.get("validFrom"), lang), _date(fields.get("validUntil"), lang)
    if end is None:  # null means 长期; absent from a disclosure means the holder hid it
        end = _text("hidden", lang) if partial and "validUntil" not in fields else _text("permanent", lang)
    validity = f"{start} {_text('until', lang)} {end}" if start else end
    rows.append(_row("validity", validity, lang))

    previous = fields.get("previousIdentifier")
    return LicenceFace(
        lang=lang,
        title=str(fields.get("name") or "电子证照"),
        subtitle=_text("subtitle", lang),
        header=tuple(header),
        rows=tuple(rows),
        issuer=_row("issuer", issuer.get("name"), lang),
        issued=_row("issuedDate", _date(fields.get("issuedDate"), lang), lang),
        identifier=_row("identifier", fields.get("identifier"), lang),
        previous=_row("previousIdentifier", previous, lang) if previous else None,
        partial_note=_text("partial", lang) if partial else None,
        note=_text("note", lang),
        caption=_text("caption", lang),
    )


def _section(fields: dict[str, Any], name: str) -> dict[str, Any]:
    value = fields.get(name)
    return value if isinstance(value, dict) else {}


# ─── HTML ─────────────────────────────────────────────────────────────────────────────────


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


def qr_disclosure(presentation: Presentation) -> Presentation:
    """What the printed QR code carries: `QR_PATHS` (and `BOUND_PATHS`) of a holder package; a
    presentation that is a disclosure already, as it is."""
    if presentation.is_partial:
        return presentation
    present = set(presentation.paths())
    return presentation.disclose(path for path in QR_PATHS if path in present)


def licence_link(presentation: Presentation, verifier_url: str) -> str:
    """The printed QR code's content: `<verifier_url>/v#EC1:…` of `qr_disclosure(presentation)`."""
    return verify_link(verifier_url, qr_disclosure(presentation).to_ec1())


def qr_size_mm(modules: int) -> float:
    """The printed width of a code of `modules` (quiet zone included)."""
    return min(modules * QR_MODULE_MM, QR_MAX_MM)


def render_licence_html(
    presentation: Presentation, *, verifier_url: str, qr_payload: str | None = None, lang: str = "zh"
) -> str:
    """A self-contained HTML page (inline CSS, QR as a data: PNG) for screen and A4 print; the QR
    code links to `verifier_url` unless `qr_payload` says what it holds."""
    face = licence_face(presentation, lang)
    payload = licence_link(presentation, verifier_url) if qr_payload is None else qr_payload
    qr_uri = "data:image/png;base64," + base64.b64encode(qr_png(payload)).decode("ascii")
    qr_mm = round(qr_size_mm(len(qr_modules(payload))), 1)
    return _environment().get_template("licence.html").render(face=face, qr_uri=qr_uri, qr_mm=qr_mm)


# ─── PDF ──────────────────────────────────────────────────────────────────────────────────

_NO_LINE_START = set("，。、；：？！）》」』】,.;:?!)%")


def _font(mono: bool = False) -> str:
    return MONO_FONT if mono else TEXT_FONT


def _width(text: str, size: float, mono: bool = False) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return stringWidth(text, _font(mono), size)


def _draw(
    pdf: Any, x: float, y: float, text: str, size: float, *, align: str = "left", mono: bool = False
) -> None:
    x -= {"left": 0, "centre": _width(text, size, mono) / 2, "right": _width(text, size, mono)}[align]
    pdf.setFont(_font(mono), size)
    pdf.drawString(x, y, text)


def _spaced(
    pdf: Any, x: float, y: float, text: str, size: float, spacing: float, *, bold: bool = False
) -> None:
    """Chinese text with extra space between characters; `bold` in the title's face."""
    obj = pdf.beginText(x, y)
    obj.setFont(TITLE_FONT if bold else TEXT_FONT, size)
    obj.setCharSpace(spacing)
    obj.textOut(text)
    obj.setCharSpace(0)  # Tc outlives the text object: reset it
    pdf.drawText(obj)


def wrap_lines(
    text: str, size: float, width: float, measure: Callable[[str, float], float] | None = None
) -> list[str]:
    """Greedy wrap by character (Chinese has no spaces); Latin words and closing punctuation stay put.
    `measure(text, size)` is the width of a run, in `width`'s unit (the PDF's fonts by default; the
    OFD licence, `issuer.ofd`, measures with the font it embeds)."""
    measure = measure or _width
    tokens: list[str] = []
    for ch in text:
        if tokens and ch.isascii() and ch.isalnum() and tokens[-1][-1].isascii() and tokens[-1][-1].isalnum():
            tokens[-1] += ch
        else:
            tokens.append(ch)
    lines, line, used = [], "", 0.0
    for token in tokens:
        extra = measure(token, size)
        if line and used + extra > width and token not in _NO_LINE_START:
            lines.append(line.rstrip())
            line, used = token.lstrip(), measure(token.lstrip(), size)
        else:
            line, used = line + token, used + extra
    return [*lines, line] if line else lines or [""]


def _draw_qr(pdf: Any, modules: list[list[bool]], x: float, y: float, module: float) -> None:
    """Dark modules as filled squares (a row's runs merged into one): sharp at any resolution."""
    path = pdf.beginPath()
    for r, row in enumerate(modules):
        bottom, start = y + (len(modules) - 1 - r) * module, None
        for c, dark in enumerate([*row, False]):
            if dark and start is None:
                start = c
            elif not dark and start is not None:
                path.rect(x + start * module, bottom, (c - start) * module, module)
                start = None
    pdf.drawPath(path, stroke=0, fill=1)


def face_text(face: LicenceFace) -> str:
    """Every character the page prints in the text face (its font is a subset of these)."""
    rows = (*face.header, *face.rows, face.issuer, face.issued, face.identifier, face.previous)
    parts = [face.subtitle, face.partial_note or "", face.note, face.caption, "……"]
    return "".join(parts) + "".join(f"{row.label}{row.value}" for row in rows if row is not None)


def render_licence_pdf(
    presentation: Presentation, *, verifier_url: str, qr_payload: str | None = None, lang: str = "zh"
) -> bytes:
    """The same face as one A4 page, with its fonts embedded (a Noto CJK subset) and the QR code
    (`licence_link` unless `qr_payload` is given) drawn as vector squares."""
    face = licence_face(presentation, lang)
    payload = licence_link(presentation, verifier_url) if qr_payload is None else qr_payload
    identifiers = "".join(row.value for row in (face.identifier, face.previous) if row)
    with embedded_fonts({"text": face_text(face), "title": face.title, "mono": identifiers}):
        return _licence_pdf(face, qr_modules(payload), lang)


def _licence_pdf(face: LicenceFace, modules: list[list[bool]], lang: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    width, height = A4
    buffer = io.BytesIO()
    pdf = Canvas(
        buffer,
        pagesize=A4,
        invariant=1,
        pageCompression=1,
        initialFontName=TEXT_FONT,  # type: ignore[arg-type]  # types-reportlab 5.0 says float: it is a name
    )  # invariant: same input, same bytes; the initial font: no unembedded Helvetica
    pdf.setTitle(f"{face.title} - {face.rows[0].value}")
    pdf.setAuthor(face.issuer.value)

    pdf.setStrokeColorRGB(0.55, 0.1, 0.1)  # certificate border: heavy outer frame, thin inner one
    pdf.setLineWidth(3)
    pdf.rect(10 * mm, 10 * mm, width - 20 * mm, height - 20 * mm)
    pdf.setLineWidth(0.6)
    pdf.rect(12.5 * mm, 12.5 * mm, width - 25 * mm, height - 25 * mm)
    pdf.setStrokeColorRGB(0.1, 0.1, 0.1)
    pdf.setFillColorRGB(0.1, 0.1, 0.1)

    left, right = 22 * mm, width - 22 * mm
    for i, row in enumerate(face.header):  # holder code and licence number, top left
        _draw(pdf, left, height - (24 + 6 * i) * mm, f"{row.label}  {row.value}", 10.5)

    size, spacing = 34.0, 8 * mm  # the title, shrunk if long
    while size > 16 and _width(face.title, size) + spacing * (len(face.title) - 1) > right - left:
        size, spacing = size - 2, spacing * 0.8
    title_w = _width(face.title, size) + spacing * (len(face.title) - 1)
    _spaced(pdf, (width - title_w) / 2, height - 50 * mm, face.title, size, spacing, bold=True)
    _draw(pdf, width / 2, height - 59 * mm, face.subtitle, 11, align="centre")
    if face.partial_note:
        _draw(pdf, width / 2, height - 65 * mm, face.partial_note, 9.5, align="centre")

    # The QR code bottom left, its quiet zone included, the symbol aligned with the text's left edge.
    qr_side = qr_size_mm(len(modules)) * mm
    module = qr_side / len(modules)
    qr_x, qr_y = left - 4 * module, 30 * mm
    _draw_qr(pdf, modules, qr_x, qr_y, module)
    _draw(pdf, qr_x + qr_side / 2, qr_y - 3.5 * mm, face.caption, 9, align="centre")

    # Fields: labels spread over a fixed column, values wrapped; long values shrink until all fit.
    top, bottom, base, gap = height - 76 * mm, max(92 * mm, qr_y + qr_side + 4 * mm), 12.5, 11.0
    label_w = (46 if lang == "en" else 30) * mm
    value_x, value_w = left + label_w + 4 * mm, right - left - label_w - 4 * mm
    for small in (base, 11.5, 10.5, 9.5, 8.5, 7.5, 6.5):
        blocks = []
        for row in face.rows:
            lines = wrap_lines(row.value, base, value_w)
            size = base if len(lines) == 1 else small
            blocks.append((row, size, lines if size == base else wrap_lines(row.value, size, value_w)))
        if sum(len(lines) * size * 1.55 + gap for _, size, lines in blocks) <= top - bottom:
            break
    y = top
    for row, size, lines in blocks:
        if y - base * 1.55 < bottom:  # too long even at the smallest size: cut
            break
        natural = _width(row.label, base)
        if lang == "en" or len(row.label) < 2 or row.label.isascii() or natural >= label_w * 0.9:
            _draw(pdf, left, y, row.label, base)
        else:
            _spaced(pdf, left, y, row.label, base, (label_w * 0.9 - natural) / (len(row.label) - 1))
        for j, line in enumerate(lines):
            cut = j < len(lines) - 1 and y - 2 * size * 1.55 < bottom  # no room for the next line
            _draw(pdf, value_x, y, line[:-1] + "……" if cut else line, size)
            y -= size * 1.55
            if cut:
                break
        y -= gap

    # Authority, date and note right of the QR code, right-aligned; a label and its value that do
    # not fit on one line there go on two, a long value or note wrapped.
    column_w, y = right - (qr_x + qr_side + 4 * mm), qr_y + min(qr_side, 44 * mm)
    for label, value, size, after in (
        (face.issuer.label, face.issuer.value, 12.0, 8 * mm),
        (face.issued.label, face.issued.value, 12.0, 16 * mm),
        ("", face.note, 8.5, 0.0),
    ):
        joined = f"{label}  {value}" if label else value
        lines = [joined] if _width(joined, size) <= column_w else [label] if label else []
        lines += [] if lines == [joined] else wrap_lines(value, size, column_w)
        for line in lines:
            _draw(pdf, right, y, line, size, align="right")
            y -= size * 1.5
        y -= after

    for i, row in enumerate(r for r in (face.identifier, face.previous) if r):  # identifiers, small monospace
        _draw(pdf, left, (22 - 4 * i) * mm, row.label, 8)
        _draw(pdf, left + (34 if lang == "en" else 22) * mm, (22 - 4 * i) * mm, row.value, 7.5, mono=True)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
