"""Anchoring transactions under a trickle of single requests, before adaptive batching (a batch
cut every window) and with the service's defaults (`ECERT_ISSUER_BATCH_MAX_WAIT_S`,
`ECERT_ISSUER_BATCH_MIN_SIZE`). Writes bench-results/batching.json.

    python scripts/bench/batching.py [--count 1000] [--rate 25]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from issuer.benchmark import run_trickle_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="Certificates, one request each.")
    parser.add_argument("--rate", type=float, default=25.0, help="Requests per second.")
    parser.add_argument("--out", type=Path, default=Path("bench-results/batching.json"))
    args = parser.parse_args()
    results = run_trickle_bench(args.count, args.rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
