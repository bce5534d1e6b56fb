"""Turn what a verifier is handed (a package file, an `EC1:` string, a verification link
`<node>/v#EC1:…`, a QR photo) into a presentation."""

from __future__ import annotations

import json
from pathlib import Path

from registry.certificate.links import is_link, read_scanned
from registry.certificate.presentation import EC1_PREFIX, Presentation
from registry.error_codes import ErrorCode
from registry.errors import CertificateError
from registry.qr import decode_qr

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def presentation_from_scanned(text: str) -> Presentation:
    """An `EC1:` string, or a link whose fragment is one; a share link is `LINK_INVALID` here: it
    is verified by the node that keeps it (open it, or send it as `shareUrl`)."""
    scanned = read_scanned(text)
    if scanned.ec1 is None:
        raise CertificateError(
            "A share link carries no certificate: open it, or verify it as shareUrl at a node",
            code=ErrorCode.LINK_INVALID,
        )
    return Presentation.from_ec1(scanned.ec1)


def presentation_from_text(text: str) -> Presentation:
    """An `EC1:` string, a verification link, or a holder package as JSON text."""
    text = text.strip()
    if text.startswith(EC1_PREFIX) or is_link(text):
        return presentation_from_scanned(text)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CertificateError(
            "Neither an EC1: code, a verification link nor a JSON holder package",
            code=ErrorCode.CERT_MALFORMED,
        ) from exc
    if not isinstance(data, dict):
        raise CertificateError("A holder package must be a JSON object", code=ErrorCode.CERT_MALFORMED)
    return Presentation.from_json(data)


def load_presentation(source: str) -> Presentation:
    """From a file path (package JSON or QR image), or an `EC1:` string or verification link given inline."""
    if source.strip().startswith(EC1_PREFIX) or is_link(source):
        return presentation_from_scanned(source)
    path = Path(source)
    if not path.is_file():
        raise CertificateError(
            f"{source}: no such file, and not an EC1: code or a link", code=ErrorCode.INPUT_NOT_FOUND
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        codes = decode_qr(path)
        return presentation_from_text(codes[0])
    return presentation_from_text(path.read_text(encoding="utf-8"))
