"""A machine-speed baseline printed beside every benchmark figure. Our machines' speed drifts by
2x between days, so a figure alone proves little: with these two yardsticks measured in the same
run, figures from different days or machines can be compared (divide by the yardstick)."""

from __future__ import annotations

import time
from typing import Any

from registry.certificate.merkle import keccak

LOOP_N = 1_000_000
KIB = bytes(range(256)) * 4


def _pure_python_loop() -> int:
    total = 0
    for i in range(LOOP_N):
        total += i * i % 7
    return total


def _best_rate(work: Any, per_call: int, rounds: int) -> float:
    """Operations per second of the fastest of `rounds` calls (the least disturbed one)."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return per_call / best


def baseline(rounds: int = 5) -> dict[str, float]:
    """`keccak256_1kib_per_s`: keccak-256 of 1 KiB (C code, memory); `python_loop_per_s`: a fixed
    pure-Python loop's iterations (the interpreter), each the best of `rounds`."""
    hashes = 20_000
    return {
        "keccak256_1kib_per_s": round(
            _best_rate(lambda: [keccak(KIB) for _ in range(hashes)], hashes, rounds)
        ),
        "python_loop_per_s": round(_best_rate(_pure_python_loop, LOOP_N, rounds)),
    }
