"""The interface of a logger, and what it is told about a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunInfo:
    """What a logger knows when a run starts.

    ``state`` is what the same logger returned from :meth:`Logger.state` in the previous
    session of this run (empty for a new run): a W&B or MLflow run id, so that a resume
    continues the same remote run.
    """

    run_dir: Path
    name: str
    recipe: dict[str, Any]
    recipe_yaml: str
    environment: dict[str, str]
    step: int = 0
    resumed: bool = False
    state: dict[str, Any] = field(default_factory=dict)


class Logger:
    """Receives a run's records. Every method may raise: the trainer reports the first failure
    of a logger in one line and stops calling it."""

    def start(self, info: RunInfo) -> None:
        """The run (re)starts at ``info.step``; log the recipe and the environment."""

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Losses, learning rates, speed and diagnostics (every ``log_every`` steps), or
        validation metrics (every ``sample_every`` steps)."""

    def log_image(self, step: int, name: str, path: Path) -> None:
        """A sample sheet (PNG file: rows of input | output | target)."""

    def finish(self, final: dict[str, float]) -> None:
        """The run ends (or stops to be resumed) with these final metrics."""

    def state(self) -> dict[str, Any]:
        """What a resume needs to continue this logger's run (stored in the run directory)."""
        return {}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr_g": 1}}`` -> ``{"optim.lr_g": 1}`` (lists become strings)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        elif isinstance(value, (list, tuple)):
            out[name] = str(value)
        else:
            out[name] = value
    return out
