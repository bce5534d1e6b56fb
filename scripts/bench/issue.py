"""Issuance throughput, end to end: records in → stored, sealed, batched, anchored and confirmed
on a fresh anvil with a SQLite database. Writes bench-results/issue.json.

    python scripts/bench/issue.py [--sizes 10000 100000 1000000] [--out bench-results/issue.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from issuer.benchmark import run_issue_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=Path("bench-results/issue.json"))
    parser.add_argument("--profile", action="store_true", help="Also write a cProfile of the 100,000 run.")
    args = parser.parse_args()
    results = run_issue_bench(args.sizes, profile=args.profile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
