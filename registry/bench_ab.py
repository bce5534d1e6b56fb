"""A/B runs of a benchmark script against another git revision, on the same machine in the same
session: our machines' speed drifts by 2x between days, so a figure only means something beside
the other revision's, measured interleaved (A B B A …), with the machine-speed baseline of each run.

    python scripts/bench/ab.py --vs 2f694e4 --rounds 3 --metric certs_per_s issue.py --sizes 20000
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from registry.machine_speed import baseline

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A detached worktree of `revision` sharing this checkout's node_modules, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ecert-ab-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
        try:
            if (ROOT / "node_modules").is_dir():
                (tree / "node_modules").symlink_to(ROOT / "node_modules")
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def metric(results: dict[str, Any], path: str) -> float:
    """`results["a"]["b"]` for the path "a.b"."""
    value: Any = results
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return float(value)


def _change(now: list[float], then: list[float]) -> float | None:
    """The change of the medians, in percent."""
    a, b = statistics.median(now), statistics.median(then)
    return round(100 * (a - b) / b, 1) if b else None


def _run(tree: Path, script: str, args: Sequence[str], out: Path) -> dict[str, Any]:
    """One run of `tree`'s scripts/bench/`script`, its packages first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, str(tree / "scripts" / "bench" / script), *args, "--out", str(out)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def run_ab(
    script: str, args: Sequence[str], *, vs: str, rounds: int, metrics: Sequence[str]
) -> dict[str, Any]:
    """Each metric of `rounds` runs of this tree and of `vs`, alternating which goes first."""
    samples: dict[str, dict[str, list[float]]] = {m: {"now": [], "vs": []} for m in metrics}
    loops: dict[str, list[float]] = {"now": [], "vs": []}  # the Python-loop speed before each run
    speeds: list[dict[str, float]] = []
    with checkout(vs) as other, tempfile.TemporaryDirectory() as scratch:
        sides = {"now": ROOT, "vs": other}
        for n in range(rounds):
            for side in ("now", "vs") if n % 2 == 0 else ("vs", "now"):
                speeds.append(baseline())
                loops[side].append(speeds[-1]["python_loop_per_s"])
                print(f"round {n + 1}/{rounds}: {side} …", file=sys.stderr, flush=True)
                results = _run(sides[side], script, args, Path(scratch) / f"{side}-{n}.json")
                for m in metrics:
                    samples[m][side].append(metric(results, m))
    figures = {}
    for m, by_side in samples.items():
        figures[m] = {
            "now": by_side["now"],
            "vs": by_side["vs"],
            "median_now": statistics.median(by_side["now"]),
            "median_vs": statistics.median(by_side["vs"]),
            "change_pct": _change(by_side["now"], by_side["vs"]),
            # each run's figure over the machine's speed just before it: a drift-corrected change
            "change_pct_per_machine_speed": _change(
                [v / s for v, s in zip(by_side["now"], loops["now"], strict=True)],
                [v / s for v, s in zip(by_side["vs"], loops["vs"], strict=True)],
            ),
        }
    return {
        "benchmark": f"ab:{script}",
        "args": list(args),
        "vs": vs,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "arch": platform.machine(), "speed_per_run": speeds},
        "rounds": rounds,
        "metrics": figures,
    }
