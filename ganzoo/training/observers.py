"""The built-in callbacks: the cadence of a run (``train.callbacks``, all of them by default).

Each owns the ``metrics.jsonl`` keys it writes (:mod:`ganzoo.records`):

* ``progress``: the bar or plain lines, and the validation line;
* ``losses``: every ``every`` steps (default ``train.log_every``) and at the last step, the
  interval's mean losses, diagnostics, learning rates and speed;
* ``monitor``: the "is my training working?" warnings (:mod:`~ganzoo.training.diagnostics`);
* ``validation``: every ``every`` steps (default ``train.sample_every``) and at the last
  step, ``val_<metric>`` for each of its ``metrics`` (L1 and PSNR by default; SSIM, LPIPS,
  DISTS, FID/KID where their weights exist) and a sample sheet (rank 0);
* ``best_checkpoint`` (not on by default): keeps ``checkpoints/best.pt``, the checkpoint of the
  best validation score of its ``metric`` so far;
* ``checkpoint``: a checkpoint every ``every`` steps (default ``train.checkpoint_every``; the
  last step's checkpoint is the trainer's own);
* ``schedule``: steps the learning-rate schedules at each epoch end, ``plateau`` with the
  latest val L1 (scored now when this session has none).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal

from ganzoo import records
from ganzoo.errors import GanzooError, RecipeError
from ganzoo.registry import register
from ganzoo.training.callbacks import CHECKPOINT_KEY, Callback, Trainer
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


#: How the progress line names each validation metric.
_LABELS = {
    "l1": "L1",
    "ssim": "SSIM",
    "lpips_alex": "LPIPS-alex",
    "lpips_vgg": "LPIPS-vgg",
    "dists": "DISTS",
    "fid": "FID",
    "kid": "KID",
    "kid_std": "KID std",
}


def _note(trainer: Trainer, line: str) -> None:
    """A one-line note: on the console when the run shows progress, else a warning."""
    if trainer.show_progress:
        trainer.console.print(line, highlight=False)
    else:
        warnings.warn(line, TrainingWarning, stacklevel=3)


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
            n = len(records.VAL_PREFIX)
            parts = [
                f"PSNR {v:.2f} dB" if k == records.VAL_PSNR else f"{_LABELS.get(k[n:], k)} {v:.4f}"
                for k, v in record.items()
                if k.startswith(records.VAL_PREFIX)
            ]
            self.reporter.message(f"step {record[records.STEP]}: val {', '.join(parts)}")

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

    def state_dict(self) -> dict[str, Any]:
        return self.monitor.state_dict() if self.monitor.seen else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitor.load_state_dict(state)


@register("callback", "validation")
class Validation(Callback):
    """Validation metrics and a sample sheet every ``every`` steps (``train.sample_every``).

    At the last step too. The eval generator scored on ``train.val_batches`` val batches,
    ``val_<metric>`` for each of ``metrics`` (``l1``, ``psnr``, ``ssim``, ``lpips_alex``,
    ``lpips_vgg``, ``dists``, ``fid``, ``kid``; default L1 and PSNR), logged to metrics.jsonl
    and every logger, and the first batch drawn to ``samples/step_<step>.png``, on rank 0. A
    metric whose weights are absent (nothing is downloaded) is left out with one line saying
    which file to put where."""

    def __init__(self, every: int | None = None, metrics: list[str] | None = None) -> None:
        self.every = _every(every, "validation")
        self.metrics = records.metric_names(
            list(metrics) if metrics is not None else ["l1", "psnr"], "train.callbacks validation"
        )
        self.metric_set: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main or self.metrics == ("l1", "psnr"):
            return  # the trainer's default set
        from ganzoo.scoring.metric_set import build_metric_set

        self.metric_set = build_metric_set(self.metrics, device=trainer.device)
        for line in self.metric_set.notes:
            _note(trainer, f"validation: {line}")
        self.metric_set.notes.clear()

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        if not _due(trainer, self.every or trainer.recipe.train.sample_every):
            return
        if not trainer.dist.is_main:
            return
        values = trainer.validate(self.metric_set)
        if self.metric_set is not None:
            for line in self.metric_set.notes:  # e.g. images too small for a network, once
                _note(trainer, f"validation: {line}")
            self.metric_set.notes.clear()
        record = {records.STEP: trainer.step, records.EPOCH: trainer.epoch, **values}
        trainer.log_record(record)
        grid = trainer.run.samples / f"step_{trainer.step:08d}.png"
        if grid.is_file():
            trainer.logs.image(trainer.step, "samples", grid)
        trainer.callbacks.emit("on_validation_end", trainer, record)


@register("callback", "best_checkpoint")
class BestCheckpoint(Callback):
    """Keeps ``checkpoints/best.pt``, the checkpoint of the best ``val_<metric>`` so far.

    As mmagic's ``CheckpointHook(save_best=...)``: replaced atomically whenever a validation
    beats it. ``rule``: ``less`` or ``greater`` is better (``auto``: greater for psnr and
    ssim, less for the others). The best value and its step are saved in every checkpoint,
    so a resume continues them. ``ganzoo eval/translate --checkpoint best`` and
    ``ganzoo.load(..., checkpoint="best")`` use it. The ``validation`` callback must score
    ``metric``."""

    def __init__(
        self, metric: str = "l1", rule: Literal["auto", "less", "greater"] = "auto"
    ) -> None:
        self.metric = records.metric_names([metric], "train.callbacks best_checkpoint")[0]
        self.key = records.VAL_PREFIX + self.metric
        self.less = records.LOWER_IS_BETTER[self.metric] if rule == "auto" else rule == "less"
        self.best: float | None = None
        self.best_step: int | None = None
        self.missing_noted = False

    def on_fit_start(self, trainer: Trainer) -> None:
        validations = [c for c in trainer.callbacks if isinstance(c, Validation)]
        if not any(self.metric in v.metrics for v in validations):
            raise RecipeError(
                f"train.callbacks best_checkpoint: metric {self.metric} is not scored; add "
                f"{{name: validation, metrics: [l1, psnr, {self.metric}]}} to train.callbacks"
            )
        if trainer.dist.is_main and trainer.run.best_checkpoint.is_file():
            self._keep_the_kept(trainer)

    def _keep_the_kept(self, trainer: Trainer) -> None:
        """On a resume, the best value ``best.pt`` holds when it beats the one the resumed
        checkpoint restored: a run that stopped after writing ``best.pt`` and before its next
        checkpoint resumes from an older best, and a resumed run that does not replay the
        same steps (another device, precision or learning rate) would then replace
        ``best.pt`` with a worse model. An unreadable ``best.pt`` is replaced at the next
        validation."""
        from ganzoo.safe_io import load_weights

        path = trainer.run.best_checkpoint
        try:
            kept = load_weights(path, "best checkpoint")
        except GanzooError as exc:  # its model is lost: the next validation writes one
            _note(trainer, f"best_checkpoint: {exc}; the next validation writes a new one")
            self.best = self.best_step = None
            return
        states = kept.get(CHECKPOINT_KEY) if isinstance(kept, dict) else None
        for state in states.values() if isinstance(states, dict) else ():
            if not (isinstance(state, dict) and state.get("metric") == self.key):
                continue
            best, step = state.get("best"), state.get("step")
            if (
                state.get("less") == self.less
                and isinstance(best, float)
                and isinstance(step, int)
                and self.better(best)
            ):
                self.best, self.best_step = best, step

    def better(self, value: float) -> bool:
        """True when ``value`` beats the best so far (strictly; NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.less else value > self.best

    def on_validation_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        value = record.get(self.key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if not self.missing_noted:
                _note(
                    trainer,
                    f"best_checkpoint: no {self.key} in the validation record; no "
                    "best checkpoint is kept (see the validation notes above)",
                )
                self.missing_noted = True
            return
        if not self.better(float(value)):
            return
        from ganzoo.artifacts.checkpoint import write_checkpoint

        self.best, self.best_step = float(value), trainer.step
        write_checkpoint(trainer.checkpoint_state(), trainer.run.best_checkpoint)

    def state_dict(self) -> dict[str, Any]:
        if self.best is None:
            return {}
        return {"metric": self.key, "less": self.less, "best": self.best, "step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("metric") == self.key and state.get("less") == self.less:
            self.best, self.best_step = float(state["best"]), int(state["step"])


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
