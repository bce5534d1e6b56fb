"""The machine-speed baseline printed beside benchmark figures measures fixed work."""

from __future__ import annotations

from registry.certificate.merkle import keccak
from registry.machine_speed import KIB, _pure_python_loop, baseline


def test_the_baseline_measures_fixed_work_and_reports_rates() -> None:
    assert _pure_python_loop() == _pure_python_loop() == sum(i * i % 7 for i in range(1_000_000))
    assert len(KIB) == 1024 and keccak(KIB) == keccak(bytes(range(256)) * 4)
    speed = baseline(rounds=1)
    assert set(speed) == {"keccak256_1kib_per_s", "python_loop_per_s"}
    assert all(isinstance(v, int) and v > 0 for v in speed.values())
