"""The README's table of every `ECERT_*` setting, made from the settings classes themselves (each
room names its own under the entry-point group `ecert.settings`), so the documentation cannot
drift from the code: `scripts/settings_table.py` writes it, a test checks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

BEGIN, END = "<!-- settings:begin (scripts/settings_table.py) -->", "<!-- settings:end -->"
# Read from the environment outside a settings class: the chain runner's switch and the tests' own.
OTHER = [
    (
        "ECERT_ANVIL_TRACING",
        "unset",
        "Set to anything: the local anvil records step traces (`--steps-tracing`) for debugging reverts.",
    ),
    (
        "ECERT_TEST_POSTGRES_URL",
        "set by `scripts/test.sh`",
        "Tests only: the PostgreSQL database the suite also runs on.",
    ),
    (
        "ECERT_FUZZ_EXAMPLES",
        "`0`",
        "Tests only: fuzz this many random examples per property instead of the fixed sample.",
    ),
]


def settings_classes() -> list[type[BaseSettings]]:
    """Every room's settings classes, in the order their entry points are named."""
    found = sorted(entry_points(group="ecert.settings"), key=lambda entry: entry.name)
    return [entry.load() for entry in found]


def _default(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, list) and not value:
        return "`[]`"
    return f"`{value}`"


def rows(classes: Iterable[type[BaseSettings]]) -> list[tuple[str, str, str]]:
    """(variable, default, what it does) for every field of every class, then `OTHER`."""
    out = []
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            out.append(
                ((prefix + name).upper(), _default(info.default), " ".join((info.description or "").split()))
            )
    return out + OTHER


def markdown_table(classes: Iterable[type[BaseSettings]]) -> str:
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    lines += [
        "| `{}` | {} | {} |".format(name, default, text.replace("|", r"\|"))
        for name, default, text in rows(classes)
    ]
    return "\n".join(lines)


def with_table(readme: str, table: str) -> str:
    """`readme` with the text between the markers replaced by `table`."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"The README has no {BEGIN} … {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", readme)
