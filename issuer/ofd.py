"""The printable licence as an OFD file (GB/T 33190-2016), sealed with the agency's SM2 key.

OFD is the format Chinese government systems archive and print (the PDF's national counterpart).
No maintained Python library writes it with signatures (easyofd converts PDFs and images but its
own writer and reader disagree, and nothing writes `Signatures.xml`), so the package is written
here, to the standard, from the same `LicenceFace` and QR link as the PDF (`issuer.printing`):

    OFD.xml                               entry: DocInfo (DocID, Creator "ecert"), DocRoot, Signatures
    Doc_0/Document.xml                    CommonData: A4 PageArea, PublicRes, DocumentRes; the page
    Doc_0/PublicRes.xml                   fonts: Noto Serif CJK SC (宋体 family), its bold, Noto Sans
                                          Mono CJK SC, each an embedded TrueType subset (SIL OFL)
    Doc_0/DocumentRes.xml                 the QR code as a MultiMedia image
    Doc_0/Res/*.ttf, Doc_0/Res/qr.png     the font subsets and the QR PNG
    Doc_0/Pages/Page_0/Content.xml        frames (PathObject), text (TextObject with DeltaX), QR (ImageObject)
    Doc_0/Signs/Signatures.xml            one signature, Type="Sign" (§18)
    Doc_0/Signs/Sign_0/Signature.xml      SignedInfo: SM2-with-SM3, the time, an SM3 reference per file
    Doc_0/Signs/Sign_0/SignedValue.dat    SM2 signature of Signature.xml, DER SEQUENCE{r, s} (GB/T 35276)

The signature is a plain digital signature (Type="Sign"): an electronic seal in the sense of
GB/T 38540 (Type="Seal", an SES_Signature holding an SES_Seal issued by a seal authority) needs
that authority's seal and is not made here. Every part but the three signature parts is
referenced, so a changed byte anywhere in the content breaks the seal (`verify_ofd`).

Text is embedded, not just named: a reader without Noto CJK (or any 宋体) still prints the page
as it was laid out, and the characters stay extractable. 40 to 50 KB per licence.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import posixpath
import re
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from issuer.printing import face_text, licence_face, licence_link, qr_size_mm, wrap_lines
from registry.certificate.presentation import Presentation
from registry.pdf_fonts import truetype_subset
from registry.qr import qr_modules, qr_png

if TYPE_CHECKING:
    from issuer.printing import LicenceFace

__all__ = ["MEDIA_TYPE", "OfdCheck", "ofd_parts", "part_sizes", "render_licence_ofd", "verify_ofd"]

MEDIA_TYPE = "application/ofd"
NS = "http://www.ofdspec.org/2016"
SM2_WITH_SM3 = "1.2.156.10197.1.501"  # GM/T 0006: SM2 signature with SM3
SM3 = "1.2.156.10197.1.401"
SIGNS = "Doc_0/Signs/"
SIGNATURES = SIGNS + "Signatures.xml"
SIGNATURE = SIGNS + "Sign_0/Signature.xml"
SIGNED_VALUE = SIGNS + "Sign_0/SignedValue.dat"
PAGE_W, PAGE_H = 210.0, 297.0  # A4, mm (OFD's unit; y grows downwards)
PT = 25.4 / 72  # one point in mm: sizes are the PDF's, in points
MAX_PARTS = 200  # verify_ofd reads untrusted files: a licence has 13 parts
MAX_BYTES = 20_000_000
FACES = {"text": "宋体", "title": "宋体", "mono": "黑体"}  # OFD FamilyName of each embedded face
INK, RED = "26 26 26", "140 26 26"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # no XML 1.0 document may hold them


def _text(value: str) -> str:
    """Character data for an element: escaped, and what XML cannot hold (control characters a
    record may carry) shown as U+FFFD rather than making the whole file unreadable."""
    return escape(_NOT_XML.sub("\ufffd", value))


# ─── fonts ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _Font:
    """An embedded TrueType subset and its advances, to lay text out as a reader will draw it."""

    id: int
    face: str
    data: bytes
    name: str
    advances: dict[str, float]  # per character, in em
    missing: float

    @classmethod
    def subset(cls, font_id: int, face: str, text: str) -> _Font:
        from fontTools.ttLib import TTFont

        data = truetype_subset(face, text)
        font = TTFont(io.BytesIO(data))
        per_em = float(font["head"].unitsPerEm)
        hmtx = font["hmtx"]
        advances = {chr(cp): hmtx[glyph][0] / per_em for cp, glyph in font.getBestCmap().items()}
        name = str(font["name"].getDebugName(6))
        return cls(font_id, face, data, name, advances, hmtx[".notdef"][0] / per_em)

    def width(self, text: str, size: float) -> float:
        return sum(self.advances.get(ch, self.missing) for ch in text) * size


# ─── the page ─────────────────────────────────────────────────────────────────────────────


@dataclass
class _Page:
    """Content.xml's objects, in mm from the page's top left."""

    fonts: dict[str, _Font]
    objects: list[str] = field(default_factory=list)
    next_id: int = 100

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def text(
        self,
        x: float,
        baseline: float,
        text: str,
        size_pt: float,
        *,
        face: str = "text",
        align: str = "left",
        spacing: float = 0.0,
    ) -> None:
        """One line; `spacing` (mm) is added after every character but the last, as the PDF's
        character spacing; each character's advance is written (DeltaX) so readers need no metrics."""
        if not text:
            return
        font, size = self.fonts[face], size_pt * PT
        steps = [font.width(ch, size) + spacing for ch in text[:-1]]
        width = sum(steps) + font.width(text[-1], size)
        x -= {"left": 0.0, "centre": width / 2, "right": width}[align]
        delta = " ".join(f"{step:.3f}" for step in steps)
        top = baseline - size
        self.objects.append(
            f'<ofd:TextObject ID="{self._id()}" Boundary="{x:.3f} {top:.3f} {width + 1:.3f} {size * 1.4:.3f}" '
            f'Font="{font.id}" Size="{size:.3f}"><ofd:FillColor Value="{INK}"/>'
            f'<ofd:TextCode X="0" Y="{size:.3f}"' + (f' DeltaX="{delta}"' if delta else "") + ">"
            f"{_text(text)}</ofd:TextCode></ofd:TextObject>"
        )

    def frame(self, x: float, y: float, w: float, h: float, line_pt: float) -> None:
        self.objects.append(
            f'<ofd:PathObject ID="{self._id()}" Boundary="{x} {y} {w} {h}" LineWidth="{line_pt * PT:.3f}">'
            f'<ofd:StrokeColor Value="{RED}"/>'
            f"<ofd:AbbreviatedData>M 0 0 L {w} 0 L {w} {h} L 0 {h} C</ofd:AbbreviatedData></ofd:PathObject>"
        )

    def image(self, resource: int, x: float, y: float, side: float) -> None:
        self.objects.append(
            f'<ofd:ImageObject ID="{self._id()}" Boundary="{x:.3f} {y:.3f} {side:.3f} {side:.3f}" '
            f'CTM="{side:.3f} 0 0 {side:.3f} 0 0" ResourceID="{resource}"/>'
        )

    def xml(self) -> str:
        return _xml(
            f'<ofd:Page xmlns:ofd="{NS}"><ofd:Content><ofd:Layer ID="{self._id()}">'
            + "".join(self.objects)
            + "</ofd:Layer></ofd:Content></ofd:Page>"
        )


def _lay_out(page: _Page, face: LicenceFace, qr_resource: int, modules: int, lang: str) -> str:
    """The PDF's layout (`issuer.printing._licence_pdf`) in OFD's coordinates: frames, header,
    title, fields, the QR code bottom left, authority and date right of it, identifiers last.
    Returns where the seal sits (the signature's StampAnnot): over the authority and the date,
    as a paper licence's red seal."""
    text = page.fonts["text"]

    def measure(run: str, size: float) -> float:
        return text.width(run, size * PT)

    page.frame(10, 10, PAGE_W - 20, PAGE_H - 20, 3)
    page.frame(12.5, 12.5, PAGE_W - 25, PAGE_H - 25, 0.6)
    left, right = 22.0, PAGE_W - 22
    for i, row in enumerate(face.header):
        page.text(left, 24 + 6 * i, f"{row.label}  {row.value}", 10.5)

    size, spacing, title = 34.0, 8.0, face.title  # the title, shrunk if long
    while (
        size > 16 and page.fonts["title"].width(title, size * PT) + spacing * (len(title) - 1) > right - left
    ):
        size, spacing = size - 2, spacing * 0.8
    page.text(PAGE_W / 2, 50, title, size, face="title", align="centre", spacing=spacing)
    page.text(PAGE_W / 2, 59, face.subtitle, 11, align="centre")
    if face.partial_note:
        page.text(PAGE_W / 2, 65, face.partial_note, 9.5, align="centre")

    qr_side = qr_size_mm(modules)
    qr_x, qr_bottom = left - 4 * qr_side / modules, PAGE_H - 30
    page.image(qr_resource, qr_x, qr_bottom - qr_side, qr_side)
    page.text(qr_x + qr_side / 2, qr_bottom + 3.5, face.caption, 9, align="centre")

    # Fields: labels spread over a column, values wrapped; long values shrink until all fit.
    y, limit, base, gap = 76.0, PAGE_H - max(92, 34 + qr_side), 12.5, 11 * PT
    label_w = 46.0 if lang == "en" else 30.0
    value_x, value_w = left + label_w + 4, right - left - label_w - 4
    blocks: list[tuple[str, float, list[str]]] = []
    for small in (base, 11.5, 10.5, 9.5, 8.5, 7.5, 6.5):
        blocks = []
        for row in face.rows:
            lines = wrap_lines(row.value, base, value_w, measure)
            row_size = base if len(lines) == 1 else small
            blocks.append(
                (
                    row.label,
                    row_size,
                    lines if row_size == base else wrap_lines(row.value, row_size, value_w, measure),
                )
            )
        if sum(len(lines) * row_size * PT * 1.55 + gap for _, row_size, lines in blocks) <= limit - y:
            break
    for label, row_size, lines in blocks:
        if y + base * PT * 1.55 > limit:  # too long even at the smallest size: cut
            break
        natural = measure(label, base)
        spread = lang != "en" and len(label) >= 2 and not label.isascii() and natural < label_w * 0.9
        page.text(left, y, label, base, spacing=(label_w * 0.9 - natural) / (len(label) - 1) if spread else 0)
        for j, line in enumerate(lines):
            cut = j < len(lines) - 1 and y + 2 * row_size * PT * 1.55 > limit
            page.text(value_x, y, line[:-1] + "……" if cut else line, row_size)
            y += row_size * PT * 1.55
            if cut:
                break
        y += gap

    column_w, y = right - (qr_x + qr_side + 4), qr_bottom - min(qr_side, 44)
    seal = f"{right - 42:.3f} {y - 14:.3f} 42 42"
    for label, value, row_size, after in (
        (face.issuer.label, face.issuer.value, 12.0, 8.0),
        (face.issued.label, face.issued.value, 12.0, 16.0),
        ("", face.note, 8.5, 0.0),
    ):
        joined = f"{label}  {value}" if label else value
        lines = [joined] if measure(joined, row_size) <= column_w else [label] if label else []
        lines += [] if lines == [joined] else wrap_lines(value, row_size, column_w, measure)
        for line in lines:
            page.text(right, y, line, row_size, align="right")
            y += row_size * PT * 1.5
        y += after

    for i, row in enumerate(r for r in (face.identifier, face.previous) if r):
        page.text(left, PAGE_H - 22 + 4 * i, row.label, 8)
        page.text(left + (34 if lang == "en" else 22), PAGE_H - 22 + 4 * i, row.value, 7.5, face="mono")
    return seal


# ─── the package ──────────────────────────────────────────────────────────────────────────


def _xml(body: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _sm3_b64(data: bytes) -> str:
    from registry.national import sm3

    return base64.b64encode(sm3(data)).decode("ascii")


def render_licence_ofd(
    presentation: Presentation,
    *,
    verifier_url: str,
    lang: str = "zh",
    sm2_private_key: bytes | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """The licence as one OFD page, the same face and QR link as `render_licence_pdf`; sealed with
    `sm2_private_key` (the agency's SM2 key, 32 bytes) unless it is None (then unsigned)."""
    face = licence_face(presentation, lang)
    payload = licence_link(presentation, verifier_url)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    identifiers = "".join(row.value for row in (face.identifier, face.previous) if row)
    fonts = {
        "text": _Font.subset(2, "text", face_text(face) + face.title),  # a reader that draws all in 宋体
        "title": _Font.subset(3, "title", face.title),
        "mono": _Font.subset(4, "mono", identifiers),
    }
    qr_id = 5
    page = _Page(fonts)
    seal = _lay_out(page, face, qr_id, len(qr_modules(payload)), lang)
    content = page.xml().encode()  # first: it numbers the layer, and MaxUnitID is the last number

    font_xml = "".join(
        f'<ofd:Font ID="{font.id}" FontName={quoteattr(font.name)} FamilyName="{FACES[key]}"'
        + (' Bold="true"' if key == "title" else "")
        + f"><ofd:FontFile>font_{key}.ttf</ofd:FontFile></ofd:Font>"
        for key, font in fonts.items()
    )
    title = f"{face.title} - {face.rows[0].value}"
    signed = sm2_private_key is not None
    parts: dict[str, bytes] = {
        "OFD.xml": _xml(
            f'<ofd:OFD xmlns:ofd="{NS}" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo>'
            f"<ofd:DocID>{uuid.uuid4().hex}</ofd:DocID><ofd:Title>{_text(title)}</ofd:Title>"
            f"<ofd:Author>{_text(face.issuer.value)}</ofd:Author>"
            f"<ofd:CreationDate>{now.date().isoformat()}</ofd:CreationDate>"
            "<ofd:Creator>ecert</ofd:Creator></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>"
            + (f"<ofd:Signatures>{SIGNATURES}</ofd:Signatures>" if signed else "")
            + "</ofd:DocBody></ofd:OFD>"
        ).encode(),
        "Doc_0/Document.xml": _xml(
            f'<ofd:Document xmlns:ofd="{NS}"><ofd:CommonData><ofd:MaxUnitID>{page.next_id}</ofd:MaxUnitID>'
            f"<ofd:PageArea><ofd:PhysicalBox>0 0 {PAGE_W:g} {PAGE_H:g}</ofd:PhysicalBox></ofd:PageArea>"
            "<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>"
            '</ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>'
            "</ofd:Document>"
        ).encode(),
        "Doc_0/PublicRes.xml": _xml(
            f'<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:Fonts>{font_xml}</ofd:Fonts></ofd:Res>'
        ).encode(),
        "Doc_0/DocumentRes.xml": _xml(
            f'<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:MultiMedias>'
            f'<ofd:MultiMedia ID="{qr_id}" Type="Image" Format="PNG"><ofd:MediaFile>qr.png</ofd:MediaFile>'
            "</ofd:MultiMedia></ofd:MultiMedias></ofd:Res>"
        ).encode(),
        **{f"Doc_0/Res/font_{key}.ttf": font.data for key, font in fonts.items()},
        "Doc_0/Res/qr.png": qr_png(payload),
        "Doc_0/Pages/Page_0/Content.xml": content,
    }
    if sm2_private_key is not None:
        parts.update(_seal(parts, sm2_private_key, now, seal))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts.items():
            package.writestr(zipfile.ZipInfo(name, date_time=now.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _seal(parts: dict[str, bytes], private_key: bytes, now: dt.datetime, box: str) -> dict[str, bytes]:
    """§18 of GB/T 33190: Signatures.xml → Signature.xml (an SM3 digest of every other part, and
    the StampAnnot: where on page 1 the seal sits) and SignedValue.dat, the SM2 signature of
    Signature.xml's bytes. (Readers such as easyofd expect a StampAnnot in every signature.)"""
    from registry.national import sm2_sign

    references = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{_sm3_b64(data)}</ofd:CheckValue></ofd:Reference>'
        for name, data in parts.items()
    )
    signature = _xml(
        f'<ofd:Signature xmlns:ofd="{NS}"><ofd:SignedInfo>'
        '<ofd:Provider ProviderName="ecert" Version="1"/>'
        f"<ofd:SignatureMethod>{SM2_WITH_SM3}</ofd:SignatureMethod>"
        f"<ofd:SignatureDateTime>{now.strftime('%Y%m%d%H%M%SZ')}</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{SM3}">{references}</ofd:References>'
        f'<ofd:StampAnnot ID="1" PageRef="1" Boundary="{box}"/>'
        f"</ofd:SignedInfo><ofd:SignedValue>/{SIGNED_VALUE}</ofd:SignedValue></ofd:Signature>"
    ).encode()
    raw = sm2_sign(private_key, signature)
    return {
        SIGNATURES: _xml(
            f'<ofd:Signatures xmlns:ofd="{NS}"><ofd:MaxSignId>1</ofd:MaxSignId>'
            f'<ofd:Signature ID="1" Type="Sign" BaseLoc="/{SIGNATURE}"/></ofd:Signatures>'
        ).encode(),
        SIGNATURE: signature,
        SIGNED_VALUE: encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
    }


# ─── checking a sealed file ───────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class OfdCheck:
    """`verify_ofd`'s answer: `code` is OFD_SEAL_OK, or why not (`part` names the culprit)."""

    valid: bool
    code: str
    part: str | None = None
    references: int = 0


def ofd_parts(data: bytes) -> dict[str, bytes]:
    """The package's parts by name; ValueError for what is not a zip of reasonable size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
            if len(infos) > MAX_PARTS or sum(info.file_size for info in infos) > MAX_BYTES:
                raise ValueError("too many or too large parts")
            return {info.filename: package.read(info) for info in infos if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not an OFD package: {exc}") from exc


def _parse(data: bytes) -> ElementTree.Element:
    # expat (2.4+) bounds entity expansion and resolves no external entities: no defusedxml needed
    return ElementTree.fromstring(data)  # noqa: S314


def _child_text(element: ElementTree.Element, path: str) -> str:
    found = element.find(path, {"ofd": NS})
    return (found.text or "").strip() if found is not None else ""


def _resolve(base: str, location: str) -> str:
    """A path in the package: absolute ("/Doc_0/…") or relative to the part that names it."""
    joined = (
        location.lstrip("/")
        if location.startswith("/")
        else posixpath.join(posixpath.dirname(base), location)
    )
    return posixpath.normpath(joined)


def verify_ofd(data: bytes, public_key: bytes) -> OfdCheck:
    """Check an OFD licence's seal: every Signature's SM3 references match their parts, every part
    outside Doc_0/Signs/ is referenced, and SignedValue.dat is the SM2 signature of Signature.xml
    under `public_key` (64 bytes X ‖ Y)."""
    from registry.national import sm2_verify, sm3

    try:
        parts = ofd_parts(data)
        entry = parts.get("OFD.xml")
        if entry is None:
            return OfdCheck(False, "OFD_MALFORMED", "OFD.xml")
        signatures_at = _child_text(_parse(entry), "ofd:DocBody/ofd:Signatures")
        if not signatures_at:
            return OfdCheck(False, "OFD_UNSIGNED")
        signatures_at = _resolve("OFD.xml", signatures_at)
        listed = _parse(parts.get(signatures_at, b"")).findall("ofd:Signature", {"ofd": NS})
        if not listed:
            return OfdCheck(False, "OFD_UNSIGNED", signatures_at)
        covered: set[str] = set()
        for item in listed:
            where = _resolve(signatures_at, item.get("BaseLoc", ""))
            signature_xml = parts.get(where)
            if signature_xml is None:
                return OfdCheck(False, "OFD_MALFORMED", where)
            root = _parse(signature_xml)
            if _child_text(root, "ofd:SignedInfo/ofd:SignatureMethod") != SM2_WITH_SM3:
                return OfdCheck(False, "OFD_ALGORITHM_UNSUPPORTED", where)
            refs = root.find("ofd:SignedInfo/ofd:References", {"ofd": NS})
            if refs is None or refs.get("CheckMethod") != SM3:
                return OfdCheck(False, "OFD_ALGORITHM_UNSUPPORTED", where)
            for ref in refs.findall("ofd:Reference", {"ofd": NS}):
                name = _resolve(where, ref.get("FileRef", ""))
                value = _child_text(ref, "ofd:CheckValue")
                if name not in parts or base64.b64decode(value, validate=True) != sm3(parts[name]):
                    return OfdCheck(False, "OFD_DIGEST_MISMATCH", name)
                covered.add(name)
            value_at = _resolve(where, _child_text(root, "ofd:SignedValue"))
            if not _signature_ok(public_key, signature_xml, parts.get(value_at, b""), sm2_verify):
                return OfdCheck(False, "OFD_SIGNATURE_INVALID", value_at)
        loose = sorted(name for name in parts if name not in covered and not name.startswith(SIGNS))
        if loose:
            return OfdCheck(False, "OFD_PART_UNSIGNED", loose[0])
        return OfdCheck(True, "OFD_SEAL_OK", references=len(covered))
    except (ValueError, ElementTree.ParseError) as exc:  # binascii.Error is a ValueError
        return OfdCheck(False, "OFD_MALFORMED", str(exc)[:200])


def _signature_ok(
    public_key: bytes, message: bytes, der: bytes, sm2_verify: Callable[[bytes, bytes, bytes], bool]
) -> bool:
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return False
    if not (0 < r < 2**256 and 0 < s < 2**256):
        return False
    return sm2_verify(public_key, message, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def part_sizes(data: bytes) -> list[tuple[str, int, int]]:
    """(name, size, compressed size) of each part, for reports and tests."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return [(info.filename, info.file_size, info.compress_size) for info in package.infolist()]
