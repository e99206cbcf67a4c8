"""One (variant, seed) of an ablation as a self-contained job: what every launcher runs, in this
process, in a pool worker or in a SLURM job.

:func:`execute` claims the run (``claims.py``), sets the per-run thread count, trains and scores
what is missing, and records how it ended in ``OUT/runs/<run>.status.json``. It never raises for
a failed run: the error (one line) and ``OUT/logs/<run>.log`` (the traceback) are recorded and
returned, so one broken variant does not take the others down.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from pathlib import Path

import torch
from rich.console import Console

from ganzoo.ablation.claims import (
    Claim,
    describe,
    read_status,
    try_claim,
    write_status,
)
from ganzoo.ablation.run_job import RunJob
from ganzoo.ablation.runner import (
    Action,
    RunOutcome,
    StoppedError,
    evaluate,
    read_eval,
    run_state,
    train_run,
)
from ganzoo.device import resolve_device
from ganzoo.errors import first_line
from ganzoo.safe_io import open_append

#: Set by a launcher in a worker's environment: the device the worker is pinned to.
DEVICE_ENV = "GANZOO_ABLATION_DEVICE"


def current_device() -> str:
    """The device this process trains on: as pinned by the launcher, else cuda or cpu."""
    return os.environ.get(DEVICE_ENV) or resolve_device().type


def _needs(job: RunJob) -> Action | str:
    state = run_state(job.run_dir, job.variant, job.seed, job.plan)
    if state == "skipped" and job.inception is not None:
        ev = job.plan.eval
        record = read_eval(job.run_dir, ev.split, job.plan.max_steps, ev.mode) or {}
        if "fid" not in record:
            return "evaluated"
    return state


def execute(job: RunJob, *, console: Console | None = None, progress: bool = False) -> RunOutcome:
    """Run ``job`` to the end (train, resume or only score, as needed) under its claim; the
    outcome's action is 'claimed' when another live process holds the run, 'failed' (with the
    error and the log) when it failed. The trainer prints on ``console``, else into the log."""
    held = try_claim(job.out, job.name, timeout_s=job.claim_timeout_s)
    if not isinstance(held, Claim):
        return RunOutcome(
            job.variant.name, job.seed, job.run_dir, "claimed", f"claimed by {describe(held)}"
        )
    previous = torch.get_num_threads()
    threads = job.threads or previous
    job.log.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": threads,
        "device": current_device(),
        "log": str(job.log),
        "job_id": os.environ.get("SLURM_JOB_ID"),
    }
    try:
        with open_append(job.log) as log:  # never through a link planted in logs/
            out = console or Console(file=log, width=120, force_terminal=False)
            try:
                torch.set_num_threads(threads)
                state = _needs(job)
                if state != "skipped":
                    write_status(job.out, job.name, state="running", started=time.time(), **record)
                if state in ("fresh", "resumed"):
                    train_run(
                        job.run_dir,
                        job.variant,
                        job.seed,
                        job.plan,
                        resume=state == "resumed",
                        console=out,
                        progress=progress,
                    )
                if state != "skipped":
                    scores = evaluate(job.run_dir, job.plan, inception=job.inception)
                    out.print(
                        f"{job.name}: L1 {scores['l1']:.4f}, PSNR {scores['psnr']:.2f} dB, "
                        f"SSIM {scores['ssim']:.4f} on {scores['n']} {job.plan.eval.split} "
                        "images",
                        highlight=False,
                    )
                previous_status = read_status(job.out, job.name)
                if state != "skipped" or previous_status is None:  # keep how it was trained
                    write_status(job.out, job.name, state="done", finished=time.time(), **record)
                action: Action = "trained" if state == "fresh" else state  # type: ignore[assignment]
                return RunOutcome(job.variant.name, job.seed, job.run_dir, action, threads=threads)
            except Exception as exc:  # recorded, reported, retried by the next launch
                traceback.print_exc(file=log)
                error = first_line(exc, with_type=True)
                action = "stopped" if isinstance(exc, StoppedError) else "failed"
                write_status(
                    job.out, job.name, state=action, error=error, finished=time.time(), **record
                )
                signum = exc.signum if isinstance(exc, StoppedError) else None
                return RunOutcome(
                    job.variant.name, job.seed, job.run_dir, action, error, job.log, threads, signum
                )
    finally:
        torch.set_num_threads(previous)
        held.release()


def not_started(job: RunJob, signum: int | None) -> RunOutcome:
    """The outcome of a run a stopped launch never started (its status is left as it was)."""
    by = signal.Signals(signum).name if signum else "a signal"
    error = f"not started: the ablation was stopped by {by}"
    return RunOutcome(job.variant.name, job.seed, job.run_dir, "stopped", error, signum=signum)


def record_death(job: RunJob, error: str, log: Path, *, signum: int | None = None) -> RunOutcome:
    """The outcome of a run whose worker or job died without reporting (killed, out of memory,
    time limit): its status becomes ``failed`` when it was running there (``stopped`` when a
    ``signum`` stopped the launch); a run that had finished counts as finished ('skipped'),
    one that never started keeps its status (the next launch retries what is missing)."""
    action: Action = "stopped" if signum else "failed"
    state = (read_status(job.out, job.name) or {}).get("state")
    if state == "done":  # it finished before its worker died: not a failure
        return RunOutcome(job.variant.name, job.seed, job.run_dir, "skipped")
    if state == "running":
        write_status(
            job.out, job.name, state=action, error=error, log=str(log), finished=time.time()
        )
    return RunOutcome(job.variant.name, job.seed, job.run_dir, action, error, log, signum=signum)
