"""What long commands show: plain lines off a terminal, bars on one, a timed line per step."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from registry.progress import StageTally, StepClock

STAGES = ("stored", "sealed", "anchored", "confirmed")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_each_stage_reached_is_one_plain_line() -> None:
    out, clock = io.StringIO(), FakeClock()
    with StageTally(Console(file=out, force_terminal=False), STAGES, clock=clock) as tally:
        tally.add_total(4)
        tally.update({"stored": 2})  # two records refused: within the throttle, no stage complete, no line
        clock.now += 0.1
        tally.update({"sealed": 1})  # nor here
        tally.update({"sealed": 2, "anchored": 2})
        clock.now += 0.1
        tally.update({"confirmed": 2})
    assert out.getvalue().splitlines() == [
        "stored 0/4 · sealed 0/0 · anchored 0/0 · confirmed 0/0",
        "stored 2/4 · sealed 2/2 · anchored 2/2 · confirmed 0/2",
        "stored 2/4 · sealed 2/2 · anchored 2/2 · confirmed 2/2",
    ]


def test_off_a_terminal_slow_progress_still_shows_every_two_seconds() -> None:
    out, clock = io.StringIO(), FakeClock()
    with StageTally(Console(file=out, force_terminal=False), STAGES, clock=clock) as tally:
        tally.add_total(1_000)
        for stored in range(100, 1_000, 100):
            clock.now += 1.0
            tally.update({"stored": stored})
    lines = out.getvalue().splitlines()
    assert lines[1:-1] == [
        f"stored {n}/1000 · sealed 0/{n} · anchored 0/0 · confirmed 0/0" for n in (200, 400, 600, 800)
    ]
    assert (
        lines[-1] == "stored 900/1000 · sealed 0/900 · anchored 0/0 · confirmed 0/0"
    )  # the last word on leaving


def test_on_a_terminal_the_stages_are_bars() -> None:
    out = io.StringIO()
    with StageTally(Console(file=out, force_terminal=True, width=100), STAGES) as tally:
        tally.add_total(3)
        tally.update({"stored": 3, "sealed": 3, "anchored": 3, "confirmed": 3})
    screen = out.getvalue()
    for stage in STAGES:
        assert stage in screen
    assert "3/3" in screen and "━" in screen


def test_a_step_says_when_it_began_how_long_it_took_and_if_it_failed() -> None:
    out, clock = io.StringIO(), FakeClock()
    steps = StepClock(Console(file=out, force_terminal=False, width=20), clock=clock)
    with steps.step("chain: anvil on 127.0.0.1:8545, a line longer than the console"):
        clock.now += 1.25
    with pytest.raises(RuntimeError), steps.step("deploy"):
        clock.now += 0.5
        raise RuntimeError("reverted")
    assert out.getvalue().splitlines() == [
        "[   0.0 s] chain: anvil on 127.0.0.1:8545, a line longer than the console …",
        "[   1.2 s] ✓ chain: anvil on 127.0.0.1:8545, a line longer than the console (1.2 s)",
        "[   1.2 s] deploy …",
        "[   1.8 s] ✗ deploy failed after 0.5 s",
    ]
