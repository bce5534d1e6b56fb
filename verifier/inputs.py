"""Turn what a verifier is handed (a package file, an `EC1:` string, a QR photo) into a presentation."""

from __future__ import annotations

import json
from pathlib import Path

from registry.certificate.presentation import EC1_PREFIX, Presentation
from registry.errors import CertificateError
from registry.qr import decode_qr

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def presentation_from_text(text: str) -> Presentation:
    """An `EC1:` string or a holder package as JSON text."""
    text = text.strip()
    if text.startswith(EC1_PREFIX):
        return Presentation.from_ec1(text)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CertificateError(
            "Neither an EC1: code nor a JSON holder package", code="CERT_MALFORMED"
        ) from exc
    if not isinstance(data, dict):
        raise CertificateError("A holder package must be a JSON object", code="CERT_MALFORMED")
    return Presentation.from_json(data)


def load_presentation(source: str) -> Presentation:
    """From a file path (package JSON or QR image) or an `EC1:` string given inline."""
    if source.strip().startswith(EC1_PREFIX):
        return Presentation.from_ec1(source)
    path = Path(source)
    if not path.is_file():
        raise CertificateError(f"{source}: no such file, and not an EC1: code", code="INPUT_NOT_FOUND")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        codes = decode_qr(path)
        return presentation_from_text(codes[0])
    return presentation_from_text(path.read_text(encoding="utf-8"))
