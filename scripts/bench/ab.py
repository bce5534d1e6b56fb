"""Run a benchmark of this tree and of another git revision interleaved, on this machine now, and
print each metric's medians side by side with the machine-speed baseline of every run.
Writes bench-results/ab-<script>.json.

    python scripts/bench/ab.py --vs 2f694e4 --rounds 3 --metric certs_per_s issue.py --sizes 20000
    python scripts/bench/ab.py --vs 2f694e4 --metric verifications_per_s verify.py --certificates 20000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from registry.bench_ab import run_ab


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vs", required=True, metavar="REV", help="The git revision to compare with.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Runs of each side, alternating which goes first."
    )
    parser.add_argument(
        "--metric", action="append", required=True, help="A figure of the script's JSON, as a dotted path."
    )
    parser.add_argument("script", help="A script of scripts/bench/ that takes --out (issue.py, verify.py).")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="The script's own arguments.")
    args = parser.parse_args()
    results = run_ab(args.script, args.args, vs=args.vs, rounds=args.rounds, metrics=args.metric)
    out = Path(f"bench-results/ab-{Path(args.script).stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
