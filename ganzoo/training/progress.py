"""Live progress: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in losses.items())


class ProgressReporter:
    """``update(step, epoch, losses)`` after logging steps; ``close()`` at the end."""

    def __init__(self, total: int, start: int, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.total = total
        self.enabled = enabled
        self.tty = enabled and console.is_terminal
        self.t0 = time.perf_counter()
        self.start = start
        self.bar: Progress | None = None
        if self.tty:
            # step, ETA and speed keep their width; the bar is short and the losses take what
            # is left, cut with an ellipsis (at 80 columns the step count and ETA stay)
            fixed = Column(no_wrap=True)
            self.bar = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}", table_column=fixed),
                BarColumn(bar_width=12),
                MofNCompleteColumn(table_column=fixed),
                TextColumn("{task.fields[speed]}", table_column=fixed),
                TimeElapsedColumn(table_column=fixed),
                TextColumn("eta", table_column=fixed),
                TimeRemainingColumn(table_column=fixed),
                TextColumn(
                    "{task.fields[losses]}",
                    table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=0),
                ),
                console=console,
                transient=False,
                expand=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(
                "train", total=total, completed=start, epoch=0, speed="", losses=""
            )

    def speed(self, step: int) -> float:
        elapsed = time.perf_counter() - self.t0
        return (step - self.start) / elapsed if elapsed > 0 else 0.0

    def advance(self, step: int, epoch: int) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task, completed=step, epoch=epoch, speed=f"{self.speed(step):.2f} it/s"
            )

    def log(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=step, epoch=epoch, losses=format_losses(losses))
            return
        rate = self.speed(step)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        self.console.print(
            f"epoch {epoch} step {step}/{self.total} {rate:.2f} it/s eta {eta:.0f}s "
            f"{format_losses(losses)}",
            highlight=False,
        )

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
