"""The wallet's words in Chinese (default) and English: `zh.json` and `en.json` hold the same
keys (a unit test keeps them in step). `translator(lang)` returns `t(key, **values)`."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from registry.certificate.labels import field_label as catalogue_label

LANGS = ("zh", "en")
_HERE = Path(__file__).parent


@cache
def messages(lang: str) -> dict[str, str]:
    words: dict[str, str] = json.loads(
        (_HERE / f"{lang if lang in LANGS else 'zh'}.json").read_text(encoding="utf-8")
    )
    return words


@cache
def translator(lang: str) -> Callable[..., str]:
    table, fallback = messages(lang), messages("zh")

    def t(key: str, **values: object) -> str:
        text = table.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def field_label(lang: str, path: str, type_code: str = "") -> str:
    """`ext.scope[1]` → 经营范围 / Business scope, from the registry's one catalogue per certificate
    type (`registry.certificate.labels`); an unknown ext key gets a humanised label, never `ext.*`."""
    return catalogue_label(type_code, path, lang)


def problem_text(lang: str, code: str | None, fallback: str = "") -> str:
    """What to tell a holder about an error code; the raw message only if there is no text for it."""
    table = messages(lang)
    return table.get(f"error.{code}") or fallback or table["error.GENERIC"]


def reason_text(lang: str, code: str | None) -> str:
    """Why a verification failed, in words (`CERT_SUSPENDED` → 证照已暂扣); the code if unknown."""
    return messages(lang).get(f"reason.{code}") or (code or "")
