"""The CLI's start-time benchmark (`scripts/bench/cli_start.py`): each command as a whole process,
timed from outside, runs interleaved with the same commands of another revision when asked, so
an A/B is fair on a machine whose speed drifts."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from registry.bench_ab import checkout
from registry.machine_speed import baseline

COMMANDS = [
    ["--help"],
    ["issuer", "--help"],
    ["verifier", "--help"],
    ["demo", "--help"],
    ["id", "check", "91110000600037341L"],
]
GOAL_S = 0.3


def _time_once(python: str, argv: Sequence[str], pythonpath: str | None, cwd: str) -> float:
    """One run; from a neutral folder, since `python -m` puts the working folder first on the path."""
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    began = time.perf_counter()
    subprocess.run(
        [python, "-m", "registry", *argv], env=env, cwd=cwd, capture_output=True, check=True, timeout=120
    )
    return time.perf_counter() - began


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "min_s": round(min(seconds), 3),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
    }


def run_cli_start_bench(
    commands: Sequence[Sequence[str]], *, runs: int, vs: str | None, python: str
) -> dict[str, Any]:
    """Median, min and max seconds of each command (and of revision `vs`'s, interleaved)."""
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        other = str(stack.enter_context(checkout(vs))) if vs else None
        figures = []
        for argv in commands:
            ours, theirs = [], []
            for run in range(runs + 1):  # the first run warms the disk cache and is not counted
                a = _time_once(python, argv, None, scratch)
                b = _time_once(python, argv, other, scratch) if other else None
                if run:
                    ours.append(a)
                    if b is not None:
                        theirs.append(b)
            entry: dict[str, Any] = {"command": "ecert " + " ".join(argv), **_summary(ours), "goal_s": GOAL_S}
            entry["meets_goal"] = entry["median_s"] < GOAL_S
            if theirs:
                entry["vs"] = {"revision": vs, **_summary(theirs)}
            figures.append(entry)
    return {
        "benchmark": "cli_start",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "arch": platform.machine(), "speed": baseline()},
        "runs": runs,
        "commands": figures,
    }
