"""Up to N runs at once on this machine (``ganzoo ablate --jobs N``): a spawn-context
``ProcessPoolExecutor``, each worker pinned to its own device for its whole life.

With CUDA, worker *i* sees only GPU *i* (``CUDA_VISIBLE_DEVICES``); on CPU each run gets
``cores // N`` torch threads (or ``threads_per_run``). A run's numbers do not depend on what
runs beside it: the same per-run thread count gives the same metrics as the sequential
launcher (``--threads-per-run``).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from ganzoo.ablation.job import DEVICE_ENV, RunJob, execute, record_death
from ganzoo.ablation.progress import ProgressView
from ganzoo.ablation.runner import RunOutcome
from ganzoo.errors import GanzooError, first_line
from ganzoo.launchers.base import Launcher
from ganzoo.launchers.spawn_guard import check_spawn_safe_main
from ganzoo.registry import register

REFRESH_S = 2.0


def _pin(devices: Any) -> None:
    """Pool initializer: take a device for this worker's life."""
    device = devices.get()
    os.environ[DEVICE_ENV] = device
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]


def _run(job: RunJob) -> RunOutcome:
    return execute(job)  # the trainer writes into the run's log


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a SLURM or cgroup cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def plan_devices(jobs: int, devices: str = "auto") -> list[str]:
    """One device per worker: 'cuda:0'..'cuda:N-1' with CUDA ('auto' or 'cuda'), else 'cpu'."""
    if devices not in ("auto", "cpu", "cuda"):
        raise GanzooError(f"launcher local: devices '{devices}': use auto, cpu or cuda")
    gpus = torch.cuda.device_count() if devices != "cpu" else 0
    if devices == "cuda" and gpus == 0:
        raise GanzooError("launcher local: devices 'cuda' but no CUDA device is visible")
    if gpus == 0:
        return ["cpu"] * jobs
    if jobs > gpus:
        raise GanzooError(
            f"--jobs {jobs}: only {gpus} GPU(s) here, one run per GPU; use --jobs {gpus}"
        )
    return [f"cuda:{i}" for i in range(jobs)]


@register("launcher", "local")
class LocalLauncher(Launcher):
    """Up to ``jobs`` runs at once on this machine (``ganzoo ablate --jobs N``).

    Each run in a worker process pinned to its own GPU, or on CPU with ``threads_per_run``
    torch threads (default ``cores // jobs``). ``devices``: auto, cpu or cuda."""

    def __init__(
        self, jobs: int = 2, threads_per_run: int | None = None, devices: str = "auto"
    ) -> None:
        if jobs < 1:
            raise GanzooError(f"--jobs {jobs}: give at least 1")
        self.jobs, self.devices = jobs, devices
        self.threads_per_run = threads_per_run or max(1, usable_cores() // jobs)

    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        check_spawn_safe_main()
        devices = plan_devices(min(self.jobs, max(1, len(jobs))), self.devices)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        for device in devices:
            queue.put(device)
        jobs = [dataclasses.replace(j, threads=self.threads_per_run) for j in jobs]
        max_steps = jobs[0].plan.max_steps if jobs else 0
        outcomes: dict[int, RunOutcome] = {}
        with (
            cf.ProcessPoolExecutor(
                len(devices), mp_context=ctx, initializer=_pin, initargs=(queue,)
            ) as pool,
            ProgressView(out, [j.name for j in jobs], max_steps, console) as view,
        ):
            futures = {pool.submit(_run, job): i for i, job in enumerate(jobs)}
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, REFRESH_S, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    i = futures[future]
                    outcomes[i] = _outcome(future, jobs[i])
                view.refresh()
        return [outcomes[i] for i in range(len(jobs))]


def _outcome(future: cf.Future, job: RunJob) -> RunOutcome:
    """The worker's outcome, or a failure when the worker itself died (killed, out of memory)."""
    try:
        return future.result()
    except Exception as exc:
        return record_death(job, f"worker process died: {first_line(exc, with_type=True)}", job.log)
