"""A kept receipt as one printable A4 page (`GET /v1/receipts/{id}.pdf`, the front desk's print
button): the verdict, what was checked and the values the receipt covers, then the signed receipt
itself (its JSON and signature), which is what proves it. Fonts are a Noto CJK subset embedded in
the file (`registry.pdf_fonts`), so it prints the same anywhere; the same receipt gives the same bytes.
"""

from __future__ import annotations

import io
import json

from registry.pdf_fonts import embedded_fonts, font_name
from verifier.i18n import field_label
from verifier.receipt_store import KeptReceipt

__all__ = ["receipt_pdf"]

TEXT, MONO = font_name("text"), font_name("mono")
VERDICTS = {"VALID": "有效 VALID", "INVALID": "无效 INVALID", "ERROR": "无法核验 ERROR"}


def _lines(kept: KeptReceipt) -> list[tuple[str, str, bool]]:
    """(label, value, mono) rows, in reading order."""
    receipt = kept.document["receipt"]
    rows: list[tuple[str, str, bool]] = [
        ("回执编号 Receipt id", kept.id, True),
        ("核验时间 Checked at", receipt["checkedAt"], True),
        ("结论 Verdict", VERDICTS.get(kept.verdict, kept.verdict), False),
        ("原因 Reason", kept.reason or "—", True),
        ("用途 Purpose", kept.purpose, False),
    ]
    if "identifier" not in kept.disclosed.get("values", {}):
        rows.append(("电子证照标识 Identifier", kept.identifier or "—", True))
    for path, value in kept.disclosed.get("values", {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((f"{field_label('zh', path)} {path}", text, False))
    node = receipt["node"]
    rows += [
        ("核验节点 Node", f"{node.get('region', '')} key {node.get('keyId', '')}", True),
        ("链上依据 Chain", f"{receipt['source']} chain {receipt['chainId']} block {receipt['block']}", True),
        ("请求摘要 Request digest", receipt["requestDigest"], True),
    ]
    return rows


def _wrap(text: str, size: float, width: float, font: str) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for ch in text:
        if line and stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line]


def receipt_pdf(kept: KeptReceipt) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    rows = _lines(kept)
    signed = json.dumps(kept.document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    disclosed = json.dumps(kept.disclosed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    title = "核验回执 Verification receipt"
    text_chars = title + "".join(label + value for label, value, _ in rows) + "签名回执披露值"
    mono_chars = "".join(value for _, value, mono in rows if mono) + signed + disclosed
    width, height = A4
    buffer = io.BytesIO()
    with embedded_fonts({"text": text_chars, "mono": mono_chars}):
        pdf = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1, initialFontName=TEXT)  # type: ignore[arg-type]
        pdf.setTitle(f"{title} {kept.id}")
        left, right, y = 18 * mm, width - 18 * mm, height - 24 * mm
        pdf.setFont(TEXT, 18)
        pdf.drawString(left, y, title)
        y -= 12 * mm
        label_w = 62 * mm
        for label, value, mono in rows:
            font = MONO if mono else TEXT
            size = 9.5 if mono else 10.5
            pdf.setFont(TEXT, 9.5)
            pdf.drawString(left, y, label)
            for line in _wrap(value, size, right - left - label_w, font):
                pdf.setFont(font, size)
                pdf.drawString(left + label_w, y, line)
                y -= size * 1.5
            y -= 2
        for caption, blob in (("签名回执 Signed receipt (RFC 8785 JSON, Ed25519)", signed),
                              ("披露值 Disclosed values (disclosedDigest = sha256 of this JSON, RFC 8785)", disclosed)):  # fmt: skip
            y -= 4 * mm
            pdf.setFont(TEXT, 9.5)
            pdf.drawString(left, y, caption)
            y -= 5 * mm
            for line in _wrap(blob, 6.5, right - left, MONO):
                if y < 14 * mm:
                    pdf.showPage()
                    y = height - 20 * mm
                pdf.setFont(MONO, 6.5)
                pdf.drawString(left, y, line)
                y -= 6.5 * 1.4
        pdf.showPage()
        pdf.save()
    return buffer.getvalue()
