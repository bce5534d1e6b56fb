"""How long `ecert` takes to answer the commands a newcomer types first (`--help`, a group's
`--help`, `id check`), as whole processes, with the machine-speed baseline beside the figures.
With `--vs REV`, the same commands from a checkout of REV run interleaved, for an A/B in one run.
Writes bench-results/cli_start.json.

    python scripts/bench/cli_start.py [--runs 15] [--vs HEAD~1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from registry.cli_bench import COMMANDS, run_cli_start_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=15, help="Timed runs of each command (after one warm-up)."
    )
    parser.add_argument(
        "--vs", metavar="REV", help="Also time the commands of this git revision, interleaved."
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/cli_start.json"))
    args = parser.parse_args()
    results = run_cli_start_bench(COMMANDS, runs=args.runs, vs=args.vs, python=sys.executable)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
