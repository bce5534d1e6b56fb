"""What a long command is doing, shown to the person running it: live bars on a terminal, plain
lines when the output goes to a file or a pipe (a CI log, `| tee`), so nobody waits in silence.

- `StageTally`: counts of one piece of work by stage (stored, sealed, anchored, confirmed).
- `StepClock`: one line per step of a longer story (the demo), with the time it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

PLAIN_EVERY_S = 2.0  # a plain line at most this often while counts move (and always at a stage's end)


class StageTally:
    """Counts by stage. The first stage counts out of everything read so far (`add_total`); each
    later stage out of what the stage before it reached (stored 2/4 when two records were refused,
    then sealed 2/2)."""

    def __init__(
        self, console: Console, stages: Sequence[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._console = console
        self._stages = list(stages)
        self._counts = dict.fromkeys(self._stages, 0)
        self._total = 0
        self._clock = clock
        self._last_plain = float("-inf")
        self._last_line = ""
        self._done: set[str] = set()  # stages complete at the last plain line
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        if console.is_terminal:
            columns = (
                TextColumn("{task.description:>10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._bars = Progress(*columns, console=console, transient=False)
            self._tasks = {stage: self._bars.add_task(stage, total=None) for stage in self._stages}

    def __enter__(self) -> StageTally:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
        elif kind is None:
            self._print_plain(force=True)

    def add_total(self, count: int) -> None:
        self._total += count
        self._show()

    def update(self, counts: dict[str, int]) -> None:
        """Set the counts of some stages (a stage's count includes everything past it)."""
        self._counts.update({stage: n for stage, n in counts.items() if stage in self._counts})
        self._show()

    def _totals(self) -> dict[str, int]:
        before = [self._total] + [self._counts[stage] for stage in self._stages[:-1]]
        return dict(zip(self._stages, before, strict=True))

    @property
    def line(self) -> str:
        """The plain line: `stored 3/3 · sealed 3/3 · anchored 0/3 · confirmed 0/3`."""
        totals = self._totals()
        return " · ".join(f"{stage} {self._counts[stage]}/{totals[stage]}" for stage in self._stages)

    def _show(self) -> None:
        if self._bars is not None:
            totals = self._totals()
            for stage, task in self._tasks.items():
                self._bars.update(task, completed=self._counts[stage], total=totals[stage] or None)
        else:
            self._print_plain()

    def _print_plain(self, *, force: bool = False) -> None:
        line = self.line
        if line == self._last_line:
            return
        done = {stage for stage, total in self._totals().items() if total and self._counts[stage] == total}
        if force or done - self._done or self._clock() - self._last_plain >= PLAIN_EVERY_S:
            print(line, file=self._console.file, flush=True)
            self._last_line, self._last_plain, self._done = line, self._clock(), done


class StepClock:
    """`with clock.step("starting the chain"):` prints `[  0.0 s] starting the chain …` and then
    `[  1.2 s] ✓ starting the chain (1.2 s)`, or `✗ … failed` if the block raised."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._clock = clock
        self._start = clock()

    def _stamp(self) -> str:
        return f"[{self._clock() - self._start:6.1f} s]"

    def say(self, text: str) -> None:
        self._console.print(f"{self._stamp()} {text}", soft_wrap=True, highlight=False, markup=False)

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        began = self._clock()
        self.say(f"{text} …")
        try:
            yield
        except BaseException:
            self.say(f"✗ {text} failed after {self._clock() - began:.1f} s")
            raise
        self.say(f"✓ {text} ({self._clock() - began:.1f} s)")
