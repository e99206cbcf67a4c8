"""One run after another in this process (the default)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console

from ganzoo.ablation.job import RunJob, execute, not_started
from ganzoo.ablation.runner import RunOutcome
from ganzoo.launchers.base import Launcher
from ganzoo.registry import register


@register("launcher", "sequential")
class SequentialLauncher(Launcher):
    """Every run in this process, one after another (the default).

    The trainer's progress shows on the terminal. ``threads_per_run``: torch threads of each
    run (None: this process's setting), to match the per-run settings of a parallel launch.
    A signal stops the run in training (saved, resumable) and starts no other."""

    def __init__(self, threads_per_run: int | None = None, progress: bool = True) -> None:
        self.threads_per_run = threads_per_run
        self.progress = progress

    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        outcomes = []
        for i, job in enumerate(jobs, 1):
            label = f"[{i}/{len(jobs)}] {job.variant.name}, seed {job.seed}"
            job = dataclasses.replace(job, threads=self.threads_per_run)
            console.print(f"{label}: {job.name}", highlight=False)
            outcome = execute(job, console=console, progress=self.progress)
            detail = f": {outcome.error} (log {outcome.log})" if outcome.log else ""
            if outcome.action == "claimed":
                detail = f": {outcome.error}"
            console.print(f"{label}: {outcome.action}{detail}", highlight=False)
            outcomes.append(outcome)
            if outcome.action == "stopped":  # stop means stop: the rest are not started
                return outcomes + [not_started(j, outcome.signum) for j in jobs[i:]]
        return outcomes
