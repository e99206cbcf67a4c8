"""One cluster job per run through submitit (``--launcher submitit``): SLURM on a cluster,
its local executor (``cluster='local'``) anywhere, which is how the tests run it.

The ablation directory must be on storage every node shares: the jobs write their runs, status
and claims there, and this process (which may be stopped and launched again: finished runs are
skipped, claimed ones left alone) watches them there.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ganzoo.ablation.job import RunJob, execute, record_death
from ganzoo.ablation.progress import ProgressView
from ganzoo.ablation.runner import RunOutcome
from ganzoo.errors import GanzooError, first_line
from ganzoo.launchers.base import Launcher
from ganzoo.registry import register

INSTALL = "pip install 'ganzoo[slurm]' (or pip install submitit)"


def require_submitit() -> Any:
    """The submitit module, or a one-line error saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise GanzooError(f"the submitit launcher needs the submitit package: {INSTALL}") from None
    return submitit


@register("launcher", "submitit", paper="submitit (https://github.com/facebookincubator/submitit)")
class SubmititLauncher(Launcher):
    """Every run as its own SLURM job (one job array), through submitit.

    ``cluster``: None detects SLURM, 'local' runs the jobs as local processes, 'debug' in
    this process. Resources per run:
    ``partition``, ``gpus_per_node``, ``cpus_per_task`` (also the run's torch threads),
    ``time`` (minutes), ``mem_gb``; ``array_parallelism`` caps the runs in flight; ``folder``
    holds submitit's logs (default OUT/submitit)."""

    def __init__(
        self,
        partition: str | None = None,
        gpus_per_node: int = 1,
        cpus_per_task: int = 4,
        time: int = 240,
        mem_gb: float | None = None,
        array_parallelism: int = 64,
        cluster: str | None = None,
        folder: str | None = None,
        poll_s: float = 10.0,
    ) -> None:
        self.submitit = require_submitit()
        self.partition, self.gpus, self.cpus = partition, gpus_per_node, cpus_per_task
        self.time_min, self.mem_gb, self.parallel = time, mem_gb, array_parallelism
        self.cluster, self.folder, self.poll_s = cluster, folder, poll_s

    def executor(self, out: Path, name: str) -> Any:
        """The submitit executor with the per-run resources."""
        ex = self.submitit.AutoExecutor(
            folder=self.folder or Path(out) / "submitit", cluster=self.cluster
        )
        params: dict[str, Any] = {
            "name": f"ablate-{name}",
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus,
            "gpus_per_node": self.gpus,
            "tasks_per_node": 1,
            "slurm_array_parallelism": self.parallel,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        ex.update_parameters(**params)
        return ex

    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        if not jobs:
            return []
        jobs = [dataclasses.replace(j, threads=self.cpus) for j in jobs]
        ex = self.executor(out, jobs[0].plan.name)
        with ex.batch():
            handles = [ex.submit(execute, job) for job in jobs]
        ids = ", ".join(sorted({str(h.job_id).split("_")[0] for h in handles}))
        console.print(f"submitted {len(handles)} job(s) ({ids}); logs in {ex.folder}")
        with ProgressView(out, [j.name for j in jobs], jobs[0].plan.max_steps, console) as view:
            while not all(h.done() for h in handles):
                view.refresh()
                time.sleep(self.poll_s)
        return [_outcome(h, job) for h, job in zip(handles, jobs)]


def _outcome(handle: Any, job: RunJob) -> RunOutcome:
    """The job's outcome, or a failure when the job itself died (time limit, node failure,
    cancelled): recorded with submitit's stderr as the log."""
    try:
        return handle.result()
    except Exception as exc:
        error = f"job {handle.job_id} died: {first_line(exc, with_type=True)}"
        return record_death(job, error, Path(handle.paths.stderr))
