"""The state of every run of an ablation, read from the ablation directory alone (status files,
claims, each run's metrics.jsonl), so it works the same for runs in local processes and on a
cluster: a live rich table on a terminal, a plain line per change otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ganzoo import records
from ganzoo.ablation.claims import claim_path, read_status
from ganzoo.run_dir import RunDir

STATES = ("queued", "running", "done", "failed", "stopped")
_STYLE = {"queued": "dim", "running": "cyan", "done": "green", "failed": "red", "stopped": "yellow"}


@dataclass(frozen=True)
class RunProgress:
    """One run as seen on disk: state, last logged step, seconds left (None: unknown)."""

    name: str
    state: str
    step: int
    max_steps: int
    eta_s: float | None
    error: str | None = None


def last_record(run_dir: Path, tail: int = 4096) -> dict[str, Any] | None:
    """The last complete log record of ``run_dir``'s metrics.jsonl, through the one reader
    (:meth:`ganzoo.run_dir.RunDir.last_record`)."""
    return RunDir(run_dir).last_record(tail)


def run_progress(out: Path, name: str, max_steps: int, since: float = 0.0) -> RunProgress:
    """The state of run ``name`` of ``out``; a status older than ``since`` (a previous launch)
    counts only when it is 'done'."""
    status = read_status(out, name) or {}
    state = status.get("state")
    if state != "done" and status.get("finished", math.inf) < since:
        state = None  # a failure of an earlier launch: retried now
    record = last_record(Path(out) / "runs" / name) or {}
    step = int(record.get(records.STEP, 0))
    if state not in STATES:
        state = "running" if claim_path(out, name).exists() else "queued"
    if state == "done":
        step = max_steps
    eta = None
    ms = record.get(records.MS_PER_STEP)
    if state == "running" and isinstance(ms, (int, float)) and math.isfinite(ms):
        eta = max(0, max_steps - step) * ms / 1000
    return RunProgress(name, state, step, max_steps, eta, status.get("error"))


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_table(runs: list[RunProgress], title: str = "") -> Table:
    """One row per run (state, step, ETA), a count per state in the caption."""
    table = Table("run", "state", "step", "ETA", title=title, header_style="bold")
    for r in runs:
        state = f"[{_STYLE[r.state]}]{r.state}[/]"
        detail = f" ({r.error})" if r.error and r.state in ("failed", "stopped") else ""
        table.add_row(r.name, state + detail, f"{r.step}/{r.max_steps}", _eta(r.eta_s))
    counts = {s: sum(r.state == s for r in runs) for s in STATES}
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return table


class ProgressView:
    """Watches the runs ``names`` of ``out``: call :meth:`refresh` while they run."""

    def __init__(self, out: Path, names: list[str], max_steps: int, console: Console) -> None:
        self.out, self.names, self.max_steps, self.console = Path(out), names, max_steps, console
        self.since = time.time()
        self._seen: dict[str, tuple[str, int]] = {}
        self._live: Live | None = None

    def snapshot(self) -> list[RunProgress]:
        return [run_progress(self.out, n, self.max_steps, self.since) for n in self.names]

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        self.refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def refresh(self) -> None:
        """Redraw the table (terminal), or print a line for each run whose state changed."""
        runs = self.snapshot()
        if self._live is not None:
            self._live.update(progress_table(runs, f"ablation {self.out}"), refresh=True)
            return
        for r in runs:
            if self._seen.get(r.name, ("queued", 0))[0] != r.state:
                detail = f": {r.error}" if r.error and r.state != "done" else ""
                self.console.print(
                    f"{r.name}: {r.state} (step {r.step}/{r.max_steps}){detail}", highlight=False
                )
            self._seen[r.name] = (r.state, r.step)
