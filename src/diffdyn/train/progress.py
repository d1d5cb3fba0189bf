"""The one progress bar of diffdyn: Rich, on stderr (stdout is for results).

`progress_bar(label, total=steps, budget=seconds)` shows steps done, loss and validation loss,
steps/s and the time left; a run that ends by its budget shows its progress in time. The
compare grid uses the same bar over cells (`total=cells`, fields naming the cell).
"""

from __future__ import annotations

import math
import time


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, completed, seconds=None, **fields):
        pass

    def describe(self, text: str) -> None:
        pass


class _RichBar:
    def __init__(self, label: str, total: int | None, budget: float | None, completed: int,
                 unit: str):  # fmt: skip
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.by_time = total is None and budget is not None
        self.total, self.budget, self.unit = total, budget, unit
        columns = [TextColumn(label), BarColumn()]
        if not self.by_time:
            columns.append(MofNCompleteColumn())
        if unit == "steps":
            columns += [
                TextColumn("step {task.fields[step]}" if self.by_time else ""),
                TextColumn("loss {task.fields[loss]:.3g}  val {task.fields[val]:.3g}"),
                TextColumn("{task.fields[rate]:.1f} steps/s"),
            ]
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("{task.description}")]  # fmt: skip
        self.progress = Progress(*columns, console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task(
            "",
            total=budget if self.by_time else total,
            completed=0 if self.by_time else completed,
            loss=math.nan,
            val=math.nan,
            rate=0.0,
            step=completed,
        )
        self.first, self.started = completed, time.perf_counter()

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            # A failed or interrupted run: the bar goes, so that its error is the one line.
            self.progress.live.transient = True
        return self.progress.__exit__(*exc)

    def update(self, completed: int, seconds: float | None = None, **fields) -> None:
        rate = (completed - self.first) / max(time.perf_counter() - self.started, 1e-9)
        fields = {k: v for k, v in fields.items() if v is not None}
        if self.by_time:
            done = min(time.perf_counter() - self.started, self.budget or 0.0)
            self.progress.update(self.task, completed=done, rate=rate, step=completed, **fields)
        else:
            self.progress.update(self.task, completed=completed, rate=rate, **fields)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)


def progress_bar(
    enabled: bool | str,
    *,
    total: int | None,
    budget: float | None = None,
    completed: int = 0,
    unit: str = "steps",
):
    """A context manager with `update(completed, seconds, **fields)` and `describe(text)`;
    a no-op when `enabled` is false. A string `enabled` is the bar's label."""
    if not enabled:
        return _NoBar()
    label = enabled if isinstance(enabled, str) else "training"
    return _RichBar(label, total, budget, completed, unit)
