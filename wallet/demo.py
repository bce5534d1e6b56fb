"""Demo holders for `ecert demo`: one wallet account per person (ID-number holder) among the
demo's holder packages, with their certificates already in the wallet and a fresh password."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.certificate.model import CODE_TYPE_ID_NUMBER
from registry.certificate.presentation import Presentation
from registry.errors import Conflict
from wallet.runtime import WalletRuntime

LOCAL = "demo"  # the "IP address" registrations from the demo are counted under


@dataclass(frozen=True)
class DemoHolder:
    name: str
    id_number: str
    password: str
    certificates: int


def _packages(items: Iterable[Path | dict[str, Any]]) -> list[Presentation]:
    out = []
    for item in items:
        data = json.loads(item.read_text(encoding="utf-8")) if isinstance(item, Path) else item
        out.append(Presentation.from_json(data))
    return out


def seed_demo_holders(
    packages: Iterable[Path | dict[str, Any]], runtime: WalletRuntime | None = None
) -> list[DemoHolder]:
    """Register (or reset the password of) a holder per person in `packages` and put their
    certificates in their wallet. Idempotent: run it again and the same holders get new passwords."""
    rt = runtime or WalletRuntime.open()
    try:
        people: dict[str, tuple[str, list[Presentation]]] = {}
        for presentation in _packages(packages):
            holder = presentation.fields().get("holder") or {}
            if holder.get("codeType") == CODE_TYPE_ID_NUMBER and holder.get("code"):
                people.setdefault(holder["code"], (holder.get("name", ""), []))[1].append(presentation)
        made = []
        for id_number, (name, presentations) in people.items():
            password = "demo-" + secrets.token_urlsafe(6)
            try:
                view = rt.holders.register(name, id_number, password, ip=LOCAL)
            except Conflict:
                view = rt.holders.reset_password(id_number, password)
            for presentation in presentations:
                rt.vault.add(view, presentation)
            made.append(DemoHolder(name, id_number, password, len(presentations)))
        return made
    finally:
        if runtime is None:
            rt.close()
