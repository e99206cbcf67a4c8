"""Where a run's records go: ``RUN_DIR/metrics.jsonl`` (always, the source of truth for plots,
reports and ablations) and the loggers of ``train.loggers`` (TensorBoard, W&B, MLflow, plugins).

Only rank 0 writes. Each logger's calls run on a thread of its own with a deadline each
(:mod:`ganzoo.training.logger_thread`): a logger that raises — not installed, no network, a
server down, even ``sys.exit`` — or does not answer in time is reported once in one line and
dropped; the run goes on. What a logger needs to continue its remote run after a resume (a run
id) is kept in ``RUN_DIR/loggers.json``.
"""

from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path
from typing import Any

import torch

from ganzoo import registry
from ganzoo.errors import GanzooError, first_line
from ganzoo.loggers.base import Logger, RunInfo
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir
from ganzoo.run_records import is_number
from ganzoo.safe_io import open_append, read_json, write_text_atomic
from ganzoo.training.logger_thread import LoggerFailure, ThreadedLogger
from ganzoo.version import __version__


class LoggerWarning(UserWarning):
    """A logger that failed and was dropped."""


class MetricsLog:
    """Appends records to a JSONL file; ``enabled=False`` (non-zero ranks) drops them."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open_append(self.path) as f:  # a link planted in its place is refused
                f.write(json.dumps(record) + "\n")


def environment(device: torch.device, precision: str | None = None) -> dict[str, str]:
    """ganzoo, torch, CUDA and Python versions, the device and the precision the run used
    (after ``auto`` / the fp16-on-CPU fallback), as strings."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    env = {
        "ganzoo": __version__,
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda or "none"),
        "python": platform.python_version(),
        "device": f"{device.type}: {name or platform.machine()}",
    }
    if precision is not None:
        env["precision"] = precision
    return env


class RunLogs:
    """The JSONL log plus the recipe's loggers, with failures isolated (see the module
    docstring)."""

    def __init__(self, recipe: Recipe, run_dir: Path, *, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run = RunDir(run_dir)
        self.metrics = MetricsLog(self.run.metrics_path, enabled=enabled)
        self.loggers: dict[str, Logger] = {}
        self.recipe = recipe
        self.enabled = enabled
        if not enabled:
            return
        for section in recipe.train.loggers:
            label = section.name
            try:
                logger = registry.create("logger", section.name, self.run_dir, **section.params)
            except (Exception, SystemExit) as exc:  # a broken plugin's constructor
                self._drop(label, exc, "could not be built")
                continue
            self.loggers[label] = ThreadedLogger(logger, label)

    def start(
        self, device: torch.device, step: int, resumed: bool, precision: str | None = None
    ) -> None:
        if not self.enabled:
            return
        env = environment(device, precision)
        write_text_atomic(self.run.environment_path, json.dumps(env, indent=2) + "\n")
        states = self._read_states()
        for label in list(self.loggers):
            info = RunInfo(
                run_dir=self.run_dir,
                name=self.recipe.name,
                recipe=self.recipe.to_dict(),
                recipe_yaml=self.recipe.to_yaml(),
                environment=env,
                step=step,
                resumed=resumed,
                state=states.get(label, {}),
            )
            self._call(label, "start", info)
        self._write_states()

    def write(self, record: dict[str, Any]) -> None:
        """A record: into the JSONL log, and its numbers to every logger at its step."""
        self.metrics.write(record)
        values = {
            k: float(v) for k, v in record.items() if k not in ("step", "epoch") and is_number(v)
        }
        for label in list(self.loggers):
            self._call(label, "log_scalars", int(record["step"]), values)

    def image(self, step: int, name: str, path: Path) -> None:
        for label in list(self.loggers):
            self._call(label, "log_image", step, name, path)

    def finish(self, final: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in final.items() if k != "step" and is_number(v)}
        for label in list(self.loggers):
            self._call(label, "finish", numbers)
        self._write_states()
        self.loggers.clear()

    # -- failure isolation and resume state -------------------------------------------------------
    def _call(self, label: str, method: str, *args: Any) -> None:
        logger = self.loggers.get(label)
        if logger is None:
            return
        try:
            getattr(logger, method)(*args)
        except LoggerFailure as exc:  # on its thread: the call that failed or hung
            self._drop(label, exc.cause, exc.what)
        except Exception as exc:
            self._drop(label, exc, f"failed in {method}")

    def _drop(self, label: str, exc: BaseException | None, what: str) -> None:
        self.loggers.pop(label, None)
        reason = f" ({first_line(exc, with_type=True)})" if exc else ""
        hint = " (pip install 'ganzoo[" + label + "]')" if isinstance(exc, ImportError) else ""
        warnings.warn(
            f"logger {label} {what}{reason}{hint}; training goes on without it",
            LoggerWarning,
            stacklevel=3,
        )

    def _read_states(self) -> dict[str, dict[str, Any]]:
        path = self.run.loggers_path
        if not path.is_file():
            return {}
        try:
            data = read_json(path, "logger state")
        except GanzooError as exc:  # the loggers start new remote runs
            if not getattr(self, "_states_unreadable", False):
                warnings.warn(f"{exc}; loggers start new runs", LoggerWarning, stacklevel=3)
            self._states_unreadable = True
            return {}
        return data if isinstance(data, dict) else {}

    def _write_states(self) -> None:
        states = self._read_states()
        for label, logger in self.loggers.items():
            try:
                state = logger.state()
                json.dumps(state, allow_nan=False)
            except Exception as exc:  # a plugin's state that JSON cannot hold
                warnings.warn(
                    f"logger {label}: its resume state is not saved ({first_line(exc)}); a "
                    "resume starts it afresh",
                    LoggerWarning,
                    stacklevel=3,
                )
                continue
            if state:
                states[label] = state
        if states:
            write_text_atomic(self.run.loggers_path, json.dumps(states, indent=2) + "\n")
