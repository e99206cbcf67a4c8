"""A launcher registered through the ``ganzoo.launchers`` group: the runs of an ablation in
this process, the last one first."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console

from ganzoo.ablation.job import RunJob, execute
from ganzoo.ablation.runner import RunOutcome
from ganzoo.launchers import Launcher


class LastFirstLauncher(Launcher):
    """Runs every job in this process, the last one first, each with ``threads`` torch threads.

    The smallest complete launcher: every job goes through ``execute`` (claim, train, score,
    record) and the outcomes come back in the jobs' order."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        for i in reversed(range(len(jobs))):
            job = dataclasses.replace(jobs[i], threads=self.threads)
            outcomes[i] = execute(job)  # the trainer writes into OUT/logs/<run>.log
            console.print(f"example_last_first: {job.name} {outcomes[i].action}")
        return [outcomes[i] for i in range(len(jobs))]
