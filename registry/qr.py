"""QR codes: render a payload to PNG/SVG (qrcode) and read payloads back from an image (zbar).

Rendering costs ~25 ms per code, so it is done on request, never while issuing in bulk.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

from registry.error_codes import ErrorCode
from registry.errors import CertificateError, ConfigError

if TYPE_CHECKING:
    from qrcode.image.pil import PilImage
    from qrcode.image.pure import PyPNGImage

MAX_PIXELS = 40_000_000  # a phone photo is ~12 MP; bigger is a bomb or a mistake


def _code(payload: str) -> qrcode.QRCode[PilImage | PyPNGImage]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=4, border=4)
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_png(payload: str) -> bytes:
    from qrcode.image.pil import PilImage  # what make_image() picks when Pillow is there, as it is

    buffer = io.BytesIO()
    _code(payload).make_image(image_factory=PilImage).save(buffer, format="PNG")
    return buffer.getvalue()


def qr_modules(payload: str) -> list[list[bool]]:
    """The code's modules, dark = True, rows top to bottom, the 4-module quiet zone included:
    for drawing it as vector squares (a PDF), sharp at any resolution."""
    return [list(row) for row in _code(payload).get_matrix()]


def qr_svg(payload: str) -> bytes:
    buffer = io.BytesIO()
    _code(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def decode_qr(image: bytes | Path) -> list[str]:
    """Every QR payload zbar finds in a PNG/JPEG; `QR_UNREADABLE` if none or not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        from pyzbar import pyzbar
    except ImportError as exc:
        raise ConfigError(
            "The zbar library is missing: install Debian's libzbar0", code=ErrorCode.ZBAR_MISSING
        ) from exc

    raw = image.read_bytes() if isinstance(image, Path) else image
    try:
        with warnings.catch_warnings():  # PIL warns before it raises on huge images: we refuse them anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(raw))
        if picture.width * picture.height > MAX_PIXELS:
            raise ValueError("image too large")
        picture.load()
    # PIL raises SyntaxError for broken PNGs and DecompressionBombError for bombs: all mean "unreadable".
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CertificateError(
            "Not a readable image: upload a PNG or JPEG of the QR code", code=ErrorCode.QR_UNREADABLE
        ) from exc
    found = [
        symbol.data.decode("utf-8", "replace")
        for symbol in pyzbar.decode(picture.convert("L"), symbols=[pyzbar.ZBarSymbol.QRCODE])
    ]
    if not found:
        raise CertificateError(
            "No QR code found in the image: retake it closer and in focus", code=ErrorCode.QR_UNREADABLE
        )
    return found
