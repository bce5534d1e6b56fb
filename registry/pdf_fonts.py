"""Fonts of printed documents (the issuer's licence, the verifier's receipt): Noto CJK, embedded in
the PDF so that it prints the same everywhere.

Debian's fonts-noto-cjk (installed by scripts/install.sh) ships OpenType collections with CFF
outlines, which reportlab cannot embed. So, for each document, `embedded_fonts` takes just the
glyphs it prints (and printable ASCII) from the installed font, turns their cubic outlines into
TrueType quadratics (fontTools' cu2qu, within 1/1000 em: invisible at print sizes) and registers
that small TrueType font with reportlab, which subsets and embeds it (`FontFile2`). Nothing is
fetched; any character the font has prints, the rare ones of names (生僻字) too. About 0.1 s per
face and document, plus 0.4 s per face the first time a process opens it.

Faces: `text`, Noto Serif CJK SC (宋体, as licences are set); `title`, its bold; `mono`, Noto Sans
Mono CJK SC for identifiers. The outlines are Noto's, under the SIL Open Font License, which
allows embedding subsets.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.error_codes import ErrorCode
from registry.errors import ConfigError

FONT_DIRS = (  # where Debian (and Fedora, Arch) put Noto CJK
    Path("/usr/share/fonts/opentype/noto"),
    Path("/usr/share/fonts/google-noto-cjk"),
    Path("/usr/share/fonts/noto-cjk"),
)
MAX_ERROR_EM = 1.0  # cu2qu tolerance, in font units (1000 per em)
ASCII = "".join(map(chr, range(0x20, 0x7F)))


@dataclass(frozen=True)
class Face:
    file: str  # a collection of fonts-noto-cjk
    ps_name: str  # the font's PostScript name in it


FACES = {
    "text": Face("NotoSerifCJK-Regular.ttc", "NotoSerifCJKsc-Regular"),
    "title": Face("NotoSerifCJK-Bold.ttc", "NotoSerifCJKsc-Bold"),
    "mono": Face("NotoSansCJK-Regular.ttc", "NotoSansMonoCJKsc-Regular"),
}
# reportlab keeps fonts in process-wide tables: one document at a time registers, draws with and
# forgets its fonts (printing is occasional; a PDF takes well under a second).
_LOCK = threading.Lock()


class _Source:
    """One installed font, opened lazily (outlines are read when a glyph is drawn)."""

    def __init__(self, face: Face) -> None:
        from fontTools.ttLib import TTCollection

        path = next((folder / face.file for folder in FONT_DIRS if (folder / face.file).is_file()), None)
        if path is None:
            raise ConfigError(
                f"The font {face.file} is missing: install Debian's fonts-noto-cjk (scripts/install.sh)",
                code=ErrorCode.FONT_MISSING,
            )
        fonts = TTCollection(str(path), lazy=True).fonts
        font = next((f for f in fonts if f["name"].getDebugName(6) == face.ps_name), None)
        if font is None:
            raise ConfigError(f"{path} has no font {face.ps_name}", code=ErrorCode.FONT_MISSING)
        self.face = face
        self.units_per_em: int = font["head"].unitsPerEm
        self.timestamp: int = font["head"].modified
        self.cmap: dict[int, str] = font.getBestCmap()
        self.glyphs = font.getGlyphSet()
        self.advances = font["hmtx"]
        self.hhea = font["hhea"]
        self.os2 = font["OS/2"]
        self.names = {key: font["name"].getDebugName(key) for key in (1, 2)}

    def truetype(self, text: str) -> bytes:
        """A TrueType font with the glyphs of `text` and of printable ASCII."""
        from fontTools.fontBuilder import FontBuilder
        from fontTools.pens.cu2quPen import Cu2QuPen
        from fontTools.pens.ttGlyphPen import TTGlyphPen

        mapping = {cp: self.cmap[cp] for cp in sorted({ord(ch) for ch in text + ASCII}) if cp in self.cmap}
        order = [".notdef", *sorted(set(mapping.values()) - {".notdef"})]
        outlines = {}
        for name in order:
            pen = TTGlyphPen(None)
            self.glyphs[name].draw(Cu2QuPen(pen, MAX_ERROR_EM, reverse_direction=True))
            outlines[name] = pen.glyph()
        built = FontBuilder(self.units_per_em, isTTF=True)
        built.updateHead(created=self.timestamp, modified=self.timestamp)  # the same text, the same bytes
        built.setupGlyphOrder(order)
        built.setupCharacterMap(mapping)
        built.setupGlyf(outlines)
        glyf = built.font["glyf"]
        built.setupHorizontalMetrics(
            {name: (self.advances[name][0], getattr(glyf[name], "xMin", 0)) for name in order}
        )
        built.setupHorizontalHeader(ascent=self.hhea.ascent, descent=self.hhea.descent)
        built.setupNameTable(
            {"familyName": self.names[1], "styleName": self.names[2], "psName": self.face.ps_name}
        )
        os2 = self.os2
        built.setupOS2(
            sTypoAscender=os2.sTypoAscender, sTypoDescender=os2.sTypoDescender, sTypoLineGap=os2.sTypoLineGap,
            usWinAscent=os2.usWinAscent, usWinDescent=os2.usWinDescent, sxHeight=os2.sxHeight,
            sCapHeight=os2.sCapHeight, usWeightClass=os2.usWeightClass, fsType=0,  # OFL: installable
        )  # fmt: skip
        built.setupPost()
        out = io.BytesIO()
        built.save(out)
        return out.getvalue()


@functools.cache
def _source(face: str) -> _Source:
    return _Source(FACES[face])


@contextmanager
def embedded_fonts(texts: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """For one document: a reportlab font per face (`FACES`) with the glyphs of `texts[face]`;
    yields their names. Draw and save the document inside the block: the fonts are forgotten after."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _LOCK:
        registered: dict[str, Any] = {}
        try:
            for face, text in texts.items():
                font = TTFont(font_name(face), io.BytesIO(_source(face).truetype(text)))
                pdfmetrics.registerFont(font)
                registered[face] = font
            yield {face: font.fontName for face, font in registered.items()}
        finally:
            for font in registered.values():
                _forget(pdfmetrics, font)


def _forget(pdfmetrics: Any, font: Any) -> None:
    """reportlab has no public way to unregister a font: drop it from the two tables
    `registerFont` fills, or the next document's font of the same face would be refused for it."""
    pdfmetrics._fonts.pop(font.fontName, None)
    pdfmetrics._dynFaceNames.pop(font.face.name, None)


def font_name(face: str) -> str:
    """The reportlab name a face is registered under inside `embedded_fonts`."""
    return f"ecert-{face}"


def truetype_subset(face: str, text: str) -> bytes:
    """The TrueType font `embedded_fonts` would register for `face` (the glyphs of `text` and of
    printable ASCII), as a file: the OFD licence (`issuer.ofd`) embeds it as is. Under the lock:
    the source font's glyphs are decompiled lazily and shared, and fontTools is not thread-safe."""
    with _LOCK:
        return _source(face).truetype(text)
