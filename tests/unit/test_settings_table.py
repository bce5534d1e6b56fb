"""The README's table of `ECERT_*` settings is the settings classes' own, every `ECERT_*` name the
code reads is in it, and `ecert demo --help` names the demo's settings with their defaults."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from issuer.settings import DemoSettings
from registry.settings_table import BEGIN, END, markdown_table, settings_classes, with_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CODE = ("registry", "issuer", "verifier", "wallet", "scripts", "tests")
NOT_SETTINGS = {
    "ECERT_ERROR",
    "ECERT_WITH_WALLET",
    "ECERT_BENCH_NATIONAL_SEAL",
}  # an error code; a test helper; a benchmark switch


def test_the_readme_table_is_generated_from_the_settings_classes() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme, markdown_table(settings_classes())) == readme, (
        "run .venv/bin/python scripts/settings_table.py"
    )


def test_every_setting_has_a_description() -> None:
    for cls in settings_classes():
        assert [name for name, info in cls.model_fields.items() if not info.description] == [], cls.__name__


def test_every_ecert_variable_the_code_reads_is_in_the_table() -> None:
    table = README.read_text(encoding="utf-8").split(BEGIN)[1].split(END)[0]
    documented = set(re.findall(r"`(ECERT_[A-Z0-9_]+)`", table))
    named = set()
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(re.findall(r"\b(ECERT_[A-Z0-9_]*[A-Z0-9])\b", path.read_text(encoding="utf-8")))
    prefixes = {
        name for name in named if any(other.startswith(name + "_") for other in documented)
    }  # ECERT_DEMO_ in f-strings
    assert named - documented - NOT_SETTINGS - prefixes == set()


def test_demo_help_names_each_demo_setting_with_its_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for name, info in DemoSettings.model_fields.items():
        assert f"ECERT_DEMO_{name.upper()}" in text.replace(" ", "")
        assert f"--{name.replace('_', '-')}" in text
        assert f"(default {info.default})" in text
    for variable in ("ECERT_HOME", "ECERT_CHAIN_PORT", "ECERT_RPC_URL"):
        assert variable in text.replace(" ", "")
