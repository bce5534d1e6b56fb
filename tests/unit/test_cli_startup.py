"""`ecert --help`, every group's `--help` and `ecert id check` answer at once: importing the CLI
and its rooms' commands must not import web3, eth-account, SQLAlchemy, FastAPI or pydantic
(seconds of imports). Each case runs in a fresh interpreter, since this one has them all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("web3", "eth_account", "fastapi", "sqlalchemy", "pydantic", "uvicorn", "py_ecc")
GROUPS = ("chain", "authority", "agency", "id", "serve", "status", "issuer", "verifier", "trust", "wallet")


def _heavy_modules_after(argv: list[str]) -> tuple[list[str], str]:
    """Run `ecert <argv>` in a fresh interpreter; the heavy modules it imported, and its output."""
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from registry.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main({argv!r})
            except SystemExit:
                pass
        print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules], out.getvalue()]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    heavy, output = json.loads(done.stdout.splitlines()[-1])
    return heavy, output


def test_importing_the_cli_and_its_rooms_imports_nothing_heavy() -> None:
    script = f"import sys; from registry import cli; cli._load_plugins(); print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv", [["--help"], *[[group, "--help"] for group in GROUPS], ["demo", "--help"], ["issue", "--help"]]
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    heavy, output = _heavy_modules_after(argv)
    assert heavy == []
    assert output.startswith("Usage: ") and len(output.splitlines()) > 3, output


def test_id_check_imports_nothing_heavy() -> None:
    heavy, output = _heavy_modules_after(["id", "check", "91110000600037341L"])
    assert (heavy, output.strip()) == ([], "valid uscc: 91110000600037341L")


def test_the_recursion_limit_stays_sane_whenever_web3_is_imported() -> None:
    """py_ecc and py-evm raise the limit to 100,000 when imported (a deep JSON body then crashes
    the process in C): the guard puts it back however late they come, and in either order."""
    for order in (
        "import registry; import web3; import eth",
        "import eth_account; import registry; import eth",
    ):
        script = f"import sys; {order}; print(sys.getrecursionlimit())"
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
        )
        assert done.stdout.strip() == "5000", order
