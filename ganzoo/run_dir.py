"""A run directory: its layout, the lock a training holds on it, its stored recipe, and what a
resume may change.

::

    RUN_DIR/recipe.yaml        the resolved recipe (what a resume starts from)
    RUN_DIR/metrics.jsonl      one JSON object per log / validation step
    RUN_DIR/samples/           grids: input | output | target
    RUN_DIR/checkpoints/       step_XXXXXXXX.pt, the newest ``train.keep_checkpoints``, and
                               best.pt (the ``best_checkpoint`` callback's)
    RUN_DIR/eval/              ``ganzoo eval`` results
    RUN_DIR/export/            ``ganzoo export`` files
    RUN_DIR/environment.json   software and device of the latest training session
    RUN_DIR/loggers.json       what the loggers need to continue their remote runs
    RUN_DIR/.lock              held (flock) by the one process training into the directory

Training into a directory is exclusive: :meth:`RunDir.acquire` takes an advisory lock that the
operating system drops when the process ends, however it ends, so a crash never leaves the
directory locked. A new run refuses a directory that already holds files unless asked to move
the old run aside; a resume accepts only the overrides in :data:`RESUMABLE` and says in one
line why any other key is refused, before anything is built.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError, RecipeError, TrainingError
from ganzoo.recipe import Recipe, from_dict
from ganzoo.recipe_tree import apply_overrides, read_yaml
from ganzoo.run_records import (
    check_eval_record,
    parse_record,
    read_last_record,
    read_records,
    warn_left_out,
)
from ganzoo.safe_io import (
    NOFOLLOW,
    TEMP_MARK,
    UnsafePathError,
    is_inside,
    read_json,
    write_text_atomic,
)

try:  # POSIX; elsewhere the lock is a no-op with a warning
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

RECIPE = "recipe.yaml"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
#: ``checkpoints/best.pt``: the checkpoint the ``best_checkpoint`` callback keeps.
BEST = "best.pt"
EVAL = "eval"
EXPORT = "export"
LOCK = ".lock"
ENVIRONMENT = "environment.json"
LOGGERS = "loggers.json"
#: ``samples/step_<int>.png``: a training sample sheet.
SHEET = re.compile(r"step_(\d{1,18})\.png")

#: Recipe keys (dotted prefixes) a ``--resume`` may override, with what they leave untouched.
RESUMABLE: dict[str, str] = {
    "train.max_steps": "how long the run lasts",
    "train.log_every": "logging cadence",
    "train.sample_every": "sample cadence",
    "train.checkpoint_every": "checkpoint cadence",
    "train.keep_checkpoints": "checkpoints kept",
    "train.val_batches": "validation size",
    "train.calibrate_bn": "the BatchNorm statistics recomputed at the end",
    "train.device": "where the run continues",
    "train.precision": "compute precision (checkpoints hold float32 weights in every one)",
    "train.channels_last": "memory layout",
    "train.small_convs_as_matmuls": "how small convolutions run on the CPU",
    "train.compile": "torch.compile",
    "train.deterministic": "deterministic algorithms",
    "train.loggers": "where metrics are also sent",
    "train.check_every": "NaN-check cadence",
    "train.grad_norm_every": "gradient-norm cadence",
    "train.callbacks": "what runs around each step (a callback's saved state follows its name)",
    "optim.lr_g": "learning rate",
    "optim.lr_d": "learning rate",
    "optim.betas": "Adam betas",
    "optim.weight_decay": "weight decay",
    "optim.d_steps": "D updates per G update",
    "optim.fused": "the Adam kernel",
    "schedule": "the learning-rate schedule",
    "loss": "loss weights and objective",
    "data.root": "where the data lives",
    "data.num_workers": "loader processes",
    "data.cache": "the decoded-image cache",
    "data.skip_corrupt": "corrupt-file handling",
    "data.max_pixels": "the bound on image sizes",
    "data.batch_size": "batch size (the epoch position is kept in samples)",
    "data.val_split": "the validation split",
}

#: Why a key outside RESUMABLE is refused, by its first matching prefix.
_FIXED_BECAUSE: tuple[tuple[str, str], ...] = (
    ("generator", "the generator's architecture is fixed by its weights"),
    ("discriminator", "the discriminator's architecture is fixed by its weights"),
    ("data.in_channels", "the networks' input channels are fixed by their weights"),
    ("data.out_channels", "the networks' output channels are fixed by their weights"),
    ("data.crop_size", "the networks were built for this size"),
    ("seed", "the seed fixes the data order the checkpoint is part-way through"),
    ("optim.pool_size", "the image pool's state is in the checkpoint"),
    ("optim.ema_decay", "the EMA's state is in the checkpoint"),
    ("name", "it names the run"),
    ("data", "the training data would no longer be the one the run is part-way through"),
)


class RunDir:
    """The folder of one training run (see the module docstring for the layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- layout ------------------------------------------------------------------------------
    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        """``checkpoints/best.pt``: the best validation score's checkpoint, when kept."""
        return self.checkpoints / BEST

    @property
    def eval_dir(self) -> Path:
        return self.path / EVAL

    @property
    def export_dir(self) -> Path:
        return self.path / EXPORT

    @property
    def environment_path(self) -> Path:
        return self.path / ENVIRONMENT

    @property
    def loggers_path(self) -> Path:
        return self.path / LOGGERS

    def eval_records(self) -> list[dict[str, Any]]:
        """The ``ganzoo eval`` results in ``eval/``, by file name: each a dict whose ``split``
        and ``mode`` are strings and whose metrics are numbers (see
        :func:`~ganzoo.run_records.check_eval_record`). A file that is not such a record, a
        link, or a file outside the run is left out with a one-line warning."""
        records = []
        for path in sorted(self.eval_dir.glob("*.json")) if self.eval_dir.is_dir() else []:
            try:
                record = check_eval_record(read_json(path, "eval record", root=self.path))
            except GanzooError as exc:
                warn_left_out(f"{exc}; left out")
                continue
            except ValueError as exc:
                warn_left_out(f"{path}: not a ganzoo eval record ({exc}); left out")
                continue
            record.setdefault("split", path.stem)
            records.append(record)
        return records

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (see :func:`read_records`); empty without one."""
        return read_records(self.metrics_path) if self.metrics_path.is_file() else []

    def last_record(self, tail: int = 4096) -> dict[str, Any] | None:
        """The last complete record of ``metrics.jsonl`` (see :func:`read_last_record`)."""
        return read_last_record(self.metrics_path, tail)

    def sample_sheets(self) -> list[tuple[int, Path]]:
        """``samples/step_<int>.png`` files as (step, path), by step; other files are left
        out with a one-line warning."""
        found, others = [], []
        for path in self.samples.glob("*.png") if self.samples.is_dir() else []:
            match = SHEET.fullmatch(path.name)
            if match and path.is_file():
                found.append((int(match[1]), path))
            else:
                others.append(path.name)
        if others:
            warn_left_out(
                f"{self.samples}: left out {len(others)} file(s) not named step_<number>.png "
                f"({', '.join(sorted(others)[:3])}{', ...' if len(others) > 3 else ''})"
            )
        return sorted(found)

    def environment(self) -> dict[str, Any]:
        """``environment.json`` (software and device of the last session) as a flat dict of
        strings; empty, with a one-line warning, when it is unreadable."""
        path = self.environment_path
        if not path.is_file():
            return {}
        try:
            data = read_json(path, "environment record", root=self.path)
        except GanzooError as exc:
            warn_left_out(f"{exc}; left out")
            return {}
        if not isinstance(data, dict):
            warn_left_out(f"{path}: not a JSON object; left out")
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v)[:200] for k, v in data.items()}

    def is_run(self) -> bool:
        """True when the folder holds a stored recipe."""
        return self.recipe_path.is_file()

    def contents(self) -> list[str]:
        """Names in the folder besides the lock file (empty when it does not exist)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK)

    # -- the stored recipe -------------------------------------------------------------------
    def read_tree(self) -> dict[str, Any]:
        """The stored recipe as plain data; a one-line error when there is none."""
        if not self.recipe_path.is_file():
            raise TrainingError(f"{self.path}: not a run directory (no {RECIPE})")
        return read_yaml(self.recipe_path)

    def read_recipe(self, overrides: list[str] | None = None) -> Recipe:
        """The stored recipe with ``overrides`` applied (no policy; see :meth:`resume_recipe`)."""
        tree = apply_overrides(self.read_tree(), list(overrides or []))
        return from_dict(tree, source=str(self.recipe_path))

    def resume_recipe(self, overrides: list[str] | None = None) -> Recipe:
        """The recipe a resume continues with: the stored one, plus ``overrides`` that
        :data:`RESUMABLE` allows; any other change is a one-line RecipeError naming the key
        and why it is fixed. Checked before anything is built."""
        stored_tree = self.read_tree()
        stored = from_dict(stored_tree, source=str(self.recipe_path)).to_dict()
        recipe = self.read_recipe(overrides)
        for key in changed_keys(stored, recipe.to_dict()):
            if not any(key == p or key.startswith(p + ".") for p in RESUMABLE):
                raise RecipeError(
                    f"--set {key}: a resume cannot change it ({fixed_reason(key)}); start a new "
                    f"run with `ganzoo train RECIPE --out NEW_DIR` (it may start from this one's "
                    f"weights with train.init_from={self.path})"
                )
        return recipe

    def write_recipe(self, recipe: Recipe) -> None:
        write_text_atomic(self.recipe_path, recipe.to_yaml())

    # -- creation and exclusivity ------------------------------------------------------------
    def acquire(self) -> None:
        """Take the exclusive training lock (creating the folder); a one-line TrainingError
        naming the holder when another live process has it. Released by :meth:`release` or
        when this process ends."""
        if self._lock_fd is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        try:  # never through a link: the lock file is truncated below
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError:
            if not (self.path / LOCK).is_symlink():
                raise
            raise UnsafePathError(
                f"{self.path / LOCK} is a symbolic link; remove it (ganzoo keeps its lock there)"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise TrainingError(
                    f"{self.path} is in use by another training ({holder}); wait for it to end "
                    "or choose another --out"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        """Drop the lock (a no-op when not held)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    @contextmanager
    def lock(self) -> Iterator[RunDir]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def start_new(self, recipe: Recipe, *, overwrite: bool = False) -> Path | None:
        """Lock the folder for a new run and store ``recipe`` in it.

        A folder that already holds files is refused (one line saying how to continue or
        replace it) unless ``overwrite``, which moves the old contents aside to a sibling
        ``<name>.replaced-<time>`` folder, returned. Call with the lock not yet held.
        """
        self.acquire()
        try:
            moved = None
            existing = self.contents()
            if existing:
                if not overwrite:
                    what = "a run" if self.is_run() else f"{len(existing)} file(s)"
                    advice = (
                        f"continue it with `ganzoo train --resume {self.path}`, "
                        if self.is_run()
                        else ""
                    )
                    raise TrainingError(
                        f"{self.path} already holds {what}; {advice}pass --overwrite to move it "
                        "aside, or choose another --out"
                    )
                moved = self._move_aside(existing)
            self.samples.mkdir(exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
            self.write_recipe(recipe)
            return moved
        except BaseException:
            self.release()
            raise

    def _move_aside(self, names: list[str]) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.replaced-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.replaced-{stamp}-{n}")
        aside.mkdir()
        for name in names:  # the lock file stays: this process holds it
            os.replace(self.path / name, aside / name)
        return aside

    # -- housekeeping ------------------------------------------------------------------------
    def clean_stale_files(self) -> list[Path]:
        """Delete temporary files that a crashed process left (``*.tmp-*``); call with the
        lock held, so no live writer owns them. Returns what was removed."""
        removed = []
        for folder in (self.path, self.checkpoints, self.samples, self.eval_dir):
            if not folder.is_dir() or not is_inside(folder, self.path):
                continue
            for p in folder.iterdir():
                if TEMP_MARK in p.name and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def drop_records_after(self, step: int) -> None:
        """Forget metrics.jsonl records past ``step`` (a resume from that step makes them
        again, so they are not logged twice); a torn last line is dropped too."""
        path = self.metrics_path
        if not path.is_file():
            return
        kept = []
        for line in path.read_bytes().splitlines():
            try:
                record = parse_record(line)
            except ValueError:
                continue
            if record["step"] <= step:
                kept.append(line.decode("utf-8") + "\n")
        write_text_atomic(path, "".join(kept))


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two recipe trees (leaves, or a renamed
    component as a whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if old.get(key) != new.get(key):
                out += changed_keys(old.get(key), new.get(key), path)
        return out
    return [prefix] if old != new else []


def fixed_reason(key: str) -> str:
    for prefix, reason in _FIXED_BECAUSE:
        if key == prefix or key.startswith(prefix + "."):
            return reason
    return "it is part of the state the checkpoint continues"
