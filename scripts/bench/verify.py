"""Verification throughput over HTTP: `ecert serve verifier --workers 2` answering from its index
over a registry of ≥100,000 certificates, loaded by `wrk` at 32 connections with a rotating set of
distinct holder packages. Writes bench-results/verify.json (and verify-profile.txt with --profile).

    python scripts/bench/verify.py [--certificates 100000] [--duration 20] [--profile 10] [--out bench-results/verify.json]

Needs `wrk` (Debian package) and, for --profile, py-spy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from verify_harness import run_verify_bench  # beside this script: it drives the issuer and the verifier


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--certificates", type=int, default=100_000, help="Certificates in the registry (issued first)."
    )
    parser.add_argument(
        "--distinct", type=int, default=400, help="Distinct holder packages wrk cycles through."
    )
    parser.add_argument("--duration", type=int, default=20, help="Seconds of wrk.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="HTTP worker processes of the node.")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="SECONDS", help="Also sample one worker with py-spy."
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/verify.json"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = run_verify_bench(
        certificates=args.certificates, distinct=args.distinct, duration_s=args.duration, connections=args.connections,
        workers=args.workers, profile_s=args.profile, results=args.out.parent,
    )  # fmt: skip
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(
        json.dumps(
            {k: v for k, v in results.items() if k not in ("wrk", "profile")}, indent=2, ensure_ascii=False
        )
    )
    if results.get("profile"):
        print(json.dumps(results["profile"], indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
