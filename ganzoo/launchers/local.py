"""Up to N runs at once on this machine (``ganzoo ablate --jobs N``): each run in a fresh
*spawn* process of its own, on a device of its own.

With CUDA, the process of a run on slot *i* sees only GPU *i* (``CUDA_VISIBLE_DEVICES``); on CPU
each run gets ``cores // N`` torch threads (or ``threads_per_run``). A run's numbers do not
depend on what runs beside it: the same per-run thread count gives the same metrics as the
sequential launcher (``--threads-per-run``).

Stop means stop. SIGINT or SIGTERM to the launcher (alone, or Ctrl-C to the whole terminal
group) starts no other run and sends SIGTERM to the running ones, which save a checkpoint and
stop after their current step; a second signal kills them at once. A worker dies with its
launcher (:mod:`ganzoo.launchers.lifeline`), and a worker that dies fails only its own run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from ganzoo.ablation.job import DEVICE_ENV, RunJob, execute, not_started, record_death
from ganzoo.ablation.progress import ProgressView
from ganzoo.ablation.runner import RunOutcome
from ganzoo.errors import GanzooError, StoppedError
from ganzoo.launchers.base import Launcher
from ganzoo.launchers.lifeline import die_with_parent
from ganzoo.launchers.spawn_guard import check_spawn_safe_main
from ganzoo.registry import register

REFRESH_S = 2.0


class _Armed:
    """In a worker: whether a signal now stops the run by raising (outside the trainer, which
    handles signals itself while it trains)."""

    armed = False
    fired = False


def _stop_here(signum: int, frame: Any) -> None:
    if _Armed.armed and not _Armed.fired:  # once: never again inside the clean-up
        _Armed.fired = True
        name = signal.Signals(signum).name
        raise StoppedError(
            f"stopped by {name} outside training; run the same command again to resume it",
            signum,
        )


def _worker(job: RunJob, device: str, parent_pid: int, conn: Connection) -> None:
    """A worker process: run ``job`` on ``device``, send the outcome, exit."""
    die_with_parent(parent_pid)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_here)
    os.environ[DEVICE_ENV] = device
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    _Armed.armed = True
    try:
        outcome = execute(job)  # the trainer writes into the run's log
    except StoppedError as exc:  # inside execute's clean-up
        outcome = record_death(job, str(exc), job.log, signum=exc.signum)
    finally:
        _Armed.armed = False
    with contextlib.suppress(OSError):  # the launcher is gone
        conn.send(outcome)
    conn.close()


@dataclass
class _Running:
    """A run in its worker process."""

    index: int
    job: RunJob
    device: str
    process: Any
    conn: Connection
    outcome: RunOutcome | None = None
    eof: bool = False

    def collect(self) -> None:
        """Read the outcome when the worker has sent it."""
        while not self.eof and self.outcome is None and self.conn.poll():
            try:
                self.outcome = self.conn.recv()
            except (EOFError, OSError):
                self.eof = True


@dataclass
class _Stop:
    """SIGINT / SIGTERM received by the launcher while it runs (the first one's number)."""

    signum: int | None = None
    count: int = 0
    forwarded: int = 0
    previous: dict[int, Any] = field(default_factory=dict)
    running: list[_Running] = field(default_factory=list)

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        self.count += 1
        self.forward()

    def forward(self) -> None:
        """Pass the stop on to the running workers: SIGTERM (save and stop) for the first
        signal, SIGKILL for a second."""
        if self.count <= self.forwarded:
            return
        sig = signal.SIGTERM if self.count == 1 else signal.SIGKILL
        for r in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(r.process.pid, sig)
        self.forwarded = self.count


@contextlib.contextmanager
def _catch_signals() -> Iterator[_Stop]:
    stop = _Stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            stop.previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: signals stay with the caller
            pass
    try:
        yield stop
    finally:
        for sig, old in stop.previous.items():
            signal.signal(sig, old)


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

    Each run in a process of its own, on a GPU of its own, or on CPU with ``threads_per_run``
    torch threads (default ``cores // jobs``). ``devices``: auto, cpu or cuda. A signal starts
    no other run and stops the running ones after a checkpoint; the runs die with the launcher."""

    def __init__(
        self, jobs: int = 2, threads_per_run: int | None = None, devices: str = "auto"
    ) -> None:
        if jobs < 1:
            raise GanzooError(f"--jobs {jobs}: give at least 1")
        self.jobs, self.devices = jobs, devices
        self.threads_per_run = threads_per_run or max(1, usable_cores() // jobs)

    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        check_spawn_safe_main()
        free = plan_devices(min(self.jobs, max(1, len(jobs))), self.devices)
        ctx = mp.get_context("spawn")
        jobs = [dataclasses.replace(j, threads=self.threads_per_run) for j in jobs]
        max_steps = jobs[0].plan.max_steps if jobs else 0
        outcomes: dict[int, RunOutcome] = {}
        waiting = list(range(len(jobs)))
        with (
            _catch_signals() as stop,
            ProgressView(out, [j.name for j in jobs], max_steps, console) as view,
        ):
            running = stop.running
            while running or (waiting and stop.signum is None):
                while waiting and free and stop.signum is None:
                    i = waiting.pop(0)
                    running.append(_start(ctx, i, jobs[i], free.pop(0)))
                stop.forward()  # a signal that came while a worker was starting
                listening = [r.conn for r in running if not r.eof and r.outcome is None]
                wait(listening + [r.process.sentinel for r in running], REFRESH_S)
                for r in list(running):
                    r.collect()
                    if r.process.is_alive():
                        continue
                    r.process.join()
                    r.collect()
                    r.conn.close()
                    running.remove(r)
                    free.append(r.device)
                    outcomes[r.index] = r.outcome or _death(r, stop.signum)
                view.refresh()
            for i in waiting:  # stop means stop: never started
                outcomes[i] = not_started(jobs[i], stop.signum)
        if stop.signum is not None:  # the launch's signal, whichever a worker saw first
            for i, o in outcomes.items():
                if o.action == "stopped":
                    outcomes[i] = dataclasses.replace(o, signum=stop.signum)
        return [outcomes[i] for i in range(len(jobs))]


def _start(ctx: Any, index: int, job: RunJob, device: str) -> _Running:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_worker, args=(job, device, os.getpid(), child), name=f"ganzoo-{job.name}"
    )
    process.start()
    child.close()  # ours: the worker's end closes when it exits, however it exits
    return _Running(index, job, device, process, parent)


def _death(r: _Running, signum: int | None) -> RunOutcome:
    """The outcome of a worker that died without reporting (killed, out of memory): its run
    fails, or counts as stopped when the launch was being stopped."""
    code = r.process.exitcode
    how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
    return record_death(r.job, f"worker process died ({how})", r.job.log, signum=signum)
