"""Crash-safe checkpoint files: atomic writes, safe loads, the last K kept.

A checkpoint is written to a temporary sibling (``.step_X.pt.tmp-PID``), fsynced and renamed
over its final name, so a crash, a kill or a full disk leaves the previous set intact; a
failed write removes its temporary file and says so in one line. What a checkpoint holds is
:mod:`ganzoo.artifacts.schema`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import GanzooError, StorageError, TrainingError
from ganzoo.safe_io import atomic_writer, load_weights

PATTERN = "step_*.pt"


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.pt"


def save_checkpoint(state: dict[str, Any], directory: Path, step: int, keep: int) -> Path:
    """Write ``state`` to ``directory/step_<step>.pt`` atomically and keep the newest ``keep``.

    The bytes go to a temporary file that is fsynced and then renamed over the final name, so
    a crash leaves either the old set of checkpoints or the new one, never a torn file.
    """
    directory = Path(directory)

    def kept() -> str:
        previous = latest_checkpoint(directory)
        return f"{previous} is intact" if previous else "no earlier checkpoint exists"

    path = _write(state, checkpoint_path(directory, step), kept)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def write_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` to ``path`` (e.g. ``checkpoints/best.pt``) atomically: the previous
    file stays whole until the new one is complete; a failure is one line."""
    path = Path(path)

    def kept() -> str:
        return f"the previous {path.name} is intact" if path.is_file() else "nothing was written"

    return _write(state, path, kept)


def _write(state: dict[str, Any], path: Path, kept: Callable[[], str]) -> Path:
    """``state`` to ``path`` atomically, the folder fsynced; an OSError is one line that says
    what ``kept()`` still holds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(state, path)
    except OSError as exc:
        raise StorageError(
            f"could not write checkpoint {path} ({exc.strerror or exc}); {kept()}; free space "
            "(or fix the folder) and continue with --resume"
        ) from None
    _fsync_dir(path.parent)
    return path


def _save(state: dict[str, Any], path: Path) -> None:
    with atomic_writer(path) as f:  # removes its temporary file on any failure
        writer = _Writer(f)
        try:
            torch.save(state, writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None  # torch's zip writer hides the OSError


class _Writer:
    """A file for ``torch.save`` that remembers the OSError of a failed write (a full disk),
    which torch's zip writer would otherwise turn into an opaque RuntimeError."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in ``directory``, oldest first."""
    return sorted(Path(directory).glob(PATTERN)) if Path(directory).is_dir() else []


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (never unpickles code)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such checkpoint")
    try:
        state = load_weights(path, "ganzoo checkpoint")
    except GanzooError as exc:
        raise TrainingError(
            f"{exc}; delete it to resume from the one before"
            if "refused" not in str(exc)
            else str(exc)
        ) from None
    if not isinstance(state, dict) or "generator" not in state:
        raise TrainingError(f"{path}: not a ganzoo checkpoint (no generator weights)")
    return state
