"""The built-in callbacks: the cadence of a run (``train.callbacks``, all of them by default).

Each owns the ``metrics.jsonl`` keys it writes (:mod:`ganzoo.records`):

* ``progress``: the bar or plain lines, and the validation line;
* ``losses``: every ``every`` steps (default ``train.log_every``) and at the last step, the
  interval's mean losses, diagnostics, learning rates and speed;
* ``monitor``: the "is my training working?" warnings (:mod:`~ganzoo.training.diagnostics`);
* ``validation``: every ``every`` steps (default ``train.sample_every``) and at the last
  step, val L1/PSNR and a sample sheet (rank 0);
* ``checkpoint``: a checkpoint every ``every`` steps (default ``train.checkpoint_every``; the
  last step's checkpoint is the trainer's own);
* ``schedule``: steps the learning-rate schedules at each epoch end, ``plateau`` with the
  latest val L1 (scored now when this session has none).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any

from ganzoo import records
from ganzoo.errors import RecipeError
from ganzoo.registry import register
from ganzoo.training.callbacks import Callback, Trainer
from ganzoo.training.diagnostics import TrainingMonitor
from ganzoo.training.progress import ProgressReporter

if TYPE_CHECKING:  # a registry lookup of a callback imports no torch
    import torch


class TrainingWarning(UserWarning):
    """A pattern in the logged records that usually means training is not working."""


def _every(every: int | None, name: str) -> int | None:
    if every is not None and every < 1:
        raise RecipeError(f"train.callbacks {name}: every {every} must be 1 or more (or unset)")
    return every


def _due(trainer: Trainer, every: int) -> bool:
    return trainer.step % every == 0 or trainer.step == trainer.total_steps


@register("callback", "progress")
class Progress(Callback):
    """The progress bar on a terminal (plain lines otherwise) and the validation line.

    Silent with ``progress=False`` and on ranks > 0."""

    def __init__(self) -> None:
        self.reporter: ProgressReporter | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.reporter = ProgressReporter(
            trainer.total_steps, trainer.step, trainer.console, enabled=trainer.show_progress
        )

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        if self.reporter is not None:
            self.reporter.advance(trainer.step, trainer.epoch)

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.reporter is not None:
            n = len(records.LOSS_PREFIX)
            losses = {k[n:]: v for k, v in record.items() if records.is_loss(k)}
            self.reporter.log(record[records.STEP], record[records.EPOCH], losses)

    def on_validation_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.reporter is not None:
            self.reporter.message(
                f"step {record[records.STEP]}: val L1 {record[records.VAL_L1]:.4f}, "
                f"PSNR {record[records.VAL_PSNR]:.2f} dB"
            )

    def _close(self) -> None:
        if self.reporter is not None:
            self.reporter.close()
            self.reporter = None

    def on_fit_end(self, trainer: Trainer, final: dict[str, Any]) -> None:
        self._close()

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        self._close()


@register("callback", "losses")
class LossLog(Callback):
    """The loss record every ``every`` steps (``train.log_every`` by default) and at the end.

    Each loss and diagnostic averaged over the interval, G's and D's learning rates, ms per
    step and images per second (keys: :mod:`ganzoo.records`)."""

    def __init__(self, every: int | None = None) -> None:
        self.every = _every(every, "losses")
        self.running: dict[str, tuple[Any, int]] = {}
        self.t0, self.steps = 0.0, 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.interval = self.every or trainer.recipe.train.log_every
        self.running = {}
        self.t0, self.steps = time.perf_counter(), 0

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for k, v in losses.items():
            total, count = self.running.get(k, (0.0, 0))
            self.running[k] = (total + v, count + 1)
        if _due(trainer, self.interval):
            trainer.log_record(self._record(trainer), "on_log")
            self.t0, self.steps = time.perf_counter(), 0

    def _record(self, trainer: Trainer) -> dict[str, Any]:
        values = {k: float(total) / max(n, 1) for k, (total, n) in self.running.items()}
        self.running = {}
        ms = 1000 * (time.perf_counter() - self.t0) / max(self.steps, 1)
        s = trainer.state
        return {
            records.STEP: trainer.step,
            records.EPOCH: trainer.epoch,
            **{records.loss_key(k): v for k, v in values.items() if k not in records.DIAGNOSTICS},
            **{k: v for k, v in values.items() if k in records.DIAGNOSTICS},
            records.LR_G: s.opt_g.param_groups[0]["lr"],
            records.LR_D: s.opt_d.param_groups[0]["lr"],
            records.MS_PER_STEP: ms,
            records.IMAGES_PER_S: 1000 * trainer.train_batches.samples_per_batch / max(ms, 1e-9),
        }


@register("callback", "monitor")
class Monitor(Callback):
    """Warns when the loss records show D winning outright or a loss diverging.

    A :class:`TrainingWarning`, once each, on rank 0."""

    def __init__(self) -> None:
        self.monitor = TrainingMonitor()

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.dist.is_main:
            for message in self.monitor.observe(record):
                warnings.warn(message, TrainingWarning, stacklevel=2)


@register("callback", "validation")
class Validation(Callback):
    """Val L1/PSNR and a sample sheet every ``every`` steps (``train.sample_every`` default).

    The eval generator scored on ``train.val_batches`` val batches (``val_l1``, ``val_psnr``)
    and the first batch drawn to ``samples/step_<step>.png``, on rank 0."""

    def __init__(self, every: int | None = None) -> None:
        self.every = _every(every, "validation")

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        if not _due(trainer, self.every or trainer.recipe.train.sample_every):
            return
        if not trainer.dist.is_main:
            return
        values = trainer.validate()
        record = {records.STEP: trainer.step, records.EPOCH: trainer.epoch, **values}
        trainer.log_record(record)
        grid = trainer.run.samples / f"step_{trainer.step:08d}.png"
        if grid.is_file():
            trainer.logs.image(trainer.step, "samples", grid)
        trainer.callbacks.emit("on_validation_end", trainer, record)


@register("callback", "checkpoint")
class Checkpoint(Callback):
    """A checkpoint every ``every`` steps (``train.checkpoint_every`` by default)."""

    def __init__(self, every: int | None = None) -> None:
        self.every = _every(every, "checkpoint")

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        every = self.every or trainer.recipe.train.checkpoint_every
        if trainer.step % every == 0 and trainer.step != trainer.total_steps:
            trainer.save()


@register("callback", "schedule")
class Schedule(Callback):
    """Steps G's and D's learning-rate schedules at every epoch end.

    ``plateau`` steps on the latest val L1 of this session, scored then (rank 0, then shared)
    when there is none."""

    def __init__(self) -> None:
        self.val_l1: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.val_l1 = None

    def on_validation_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.val_l1 = record.get(records.VAL_L1)

    def on_epoch_end(self, trainer: Trainer) -> None:
        s = trainer.state
        args: tuple[float, ...] = ()
        if trainer.recipe.schedule.name == "plateau":
            from ganzoo.training.distributed import broadcast_float

            metric = self.val_l1
            if metric is None or math.isnan(metric):
                metric = trainer.validate()[records.VAL_L1] if trainer.dist.is_main else 0.0
            args = (broadcast_float(metric, trainer.device),)
        with warnings.catch_warnings():  # a network frozen by optim.train_only never stepped
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step")
            s.sched_g.step(*args)
            s.sched_d.step(*args)
