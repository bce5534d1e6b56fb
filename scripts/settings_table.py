"""Write the README's table of `ECERT_*` settings from the settings classes (`--check`: only say
whether it is current; exit 1 if not)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from registry.settings_table import markdown_table, settings_classes, with_table

README = Path(__file__).resolve().parent.parent / "README.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="Do not write: exit 1 if the README's table is stale."
    )
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    wanted = with_table(current, markdown_table(settings_classes()))
    if wanted == current:
        print("README settings table is current")
        return 0
    if args.check:
        print(
            "README settings table is stale: run .venv/bin/python scripts/settings_table.py", file=sys.stderr
        )
        return 1
    README.write_text(wanted, encoding="utf-8")
    print(f"README settings table written ({README})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
