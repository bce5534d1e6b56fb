"""Registry scale: fill a fresh registry with --certificates certificates (log-uniform batches of
1..--max-batch by --agencies agencies under 31 provincial authorities), index it on PostgreSQL,
and measure verification latency at each checkpoint (10k, 1M, 10M: those up to the size), index
size and rows per certificate, a fresh indexer's catch-up from block 0, and the issuer end to
end on PostgreSQL (--issue certificates, its time extrapolated to 1,000,000, and its storage per
certificate after a plain VACUUM). Writes bench-results/scale.json.

    python scripts/bench/scale.py [--certificates 10000000] [--issue 100000] [--out bench-results/scale.json]

Out of the default run (runnable, slow on 2 cores): --issue 1000000 (the full end-to-end figure,
several GB of issuer database), --max-batch 100 (hundreds of thousands of anchoring transactions).
Needs PostgreSQL: --database-url, else $ECERT_TEST_POSTGRES_URL, else scripts/postgres.sh starts
the local test cluster (installed by scripts/install.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from scale_harness import CHECKPOINTS, run_scale_bench  # beside this script: it drives every room

ROOT = Path(__file__).resolve().parents[2]


def _database_url(given: str | None) -> str:
    if given or os.environ.get("ECERT_TEST_POSTGRES_URL"):
        return given or os.environ["ECERT_TEST_POSTGRES_URL"]
    started = subprocess.run(
        [str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True
    )
    return started.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--certificates",
        type=int,
        default=10_000_000,
        help="Certificates in the registry (default 10,000,000).",
    )
    parser.add_argument("--agencies", type=int, default=2_000, help="Issuing agencies (default 2,000).")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=100_000,
        help="Largest batch; sizes are log-uniform from 1 (default 100,000).",
    )
    parser.add_argument(
        "--checkpoints", type=int, nargs="+", default=list(CHECKPOINTS),
        help="Registry sizes at which verification is measured (default 10000 1000000 10000000; the final size always).",
    )  # fmt: skip
    parser.add_argument(
        "--samples",
        type=int,
        default=300,
        help="Real certificates verified at each checkpoint (default 300).",
    )
    parser.add_argument(
        "--issue",
        type=int,
        default=100_000,
        help="Certificates issued end to end, 0 to skip (default 100,000).",
    )
    parser.add_argument(
        "--issue-rounds", type=int, default=2, help="Issuance rounds, each followed by VACUUM (default 2)."
    )
    parser.add_argument(
        "--database-url", help="A PostgreSQL URL whose role may create databases (default: the test cluster)."
    )
    parser.add_argument(
        "--keep-databases", action="store_true", help="Leave the ecert_scale_* databases for inspection."
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path("bench-results/scale.json"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = run_scale_bench(
        database_url=_database_url(args.database_url), certificates=args.certificates, agencies=args.agencies,
        issue_count=args.issue, issue_rounds=args.issue_rounds, samples=args.samples, max_batch=args.max_batch,
        checkpoints=args.checkpoints, seed=args.seed, keep_databases=args.keep_databases,
    )  # fmt: skip
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    summary: dict[str, Any] = {
        key: results[key] for key in ("fill", "latency", "catch_up", "machine") if key in results
    }
    summary["index"] = {k: v for k, v in results["index"].items() if k != "tables"}
    if "issuance" in results:
        summary["issuance"] = {k: v for k, v in results["issuance"].items() if k != "rounds"}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
