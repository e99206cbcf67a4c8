"""The one trainer every recipe uses: the loop and its cadence.

``Trainer`` puts the pieces together: the run directory (:mod:`ganzoo.run_dir`, locked while
training), the state a checkpoint holds (:mod:`ganzoo.training.state`), the update of one
iteration (:mod:`ganzoo.training.step`), the batches (:mod:`ganzoo.training.batches`) and the
records (:mod:`ganzoo.training.logs`). What happens around the step -- logging, validation and
sample sheets, periodic checkpoints, progress, the training monitor, the learning-rate schedule
-- are the callbacks of ``train.callbacks`` (:mod:`ganzoo.training.callbacks`, the built-ins in
:mod:`ganzoo.training.observers`), told of each event in order. The trainer itself checks the
losses for NaN every ``train.check_every`` steps, asks the step for gradient norms every
``train.grad_norm_every``, checkpoints at the end and stops on a signal after the current step
with a checkpoint. A checkpoint is only written when every tensor it holds is finite; a NaN
loss or state stops the run with one line naming the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ganzoo import records
from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ganzoo.data import build_dataset
from ganzoo.device import resolve_device
from ganzoo.errors import StorageError, TrainingError
from ganzoo.inference_mode import generator_in_mode, resolve_mode
from ganzoo.losses.terms import CHECKPOINT_KEY as TERMS_KEY
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import check_inside
from ganzoo.samples import save_grid
from ganzoo.scoring.metric_set import MetricSet, build_metric_set
from ganzoo.training.allocator import keep_freed_memory
from ganzoo.training.batches import BatchSource, DatasetBatches, loader_workers
from ganzoo.training.calibration import calibrate_generator
from ganzoo.training.callbacks import CHECKPOINT_KEY, build_callbacks
from ganzoo.training.distributed import any_rank, barrier, init_distributed
from ganzoo.training.logs import RunLogs
from ganzoo.training.observers import TrainingWarning
from ganzoo.training.precision import autocast_dtype, resolve_precision
from ganzoo.training.schedule import total_epochs
from ganzoo.training.state import TrainState
from ganzoo.training.step import UpdateStep

__all__ = [
    "Trainer",
    "TrainingWarning",  # raised by the monitor callback, importable from here as before
    "default_run_dir",
    "seed_everything",
    "stop_on_signals",
    "train",
]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Builds everything a recipe names and trains it into ``run_dir``.

    ``fit()`` runs to ``train.max_steps`` or the end of the schedule; ``request_stop()``
    (signals) ends it after the current step with a checkpoint; ``close()`` releases the run
    directory and the loader workers (``with Trainer(...) as t`` does it). ``train_batches``
    / ``val_batches`` replace the recipe's dataset (see :class:`~ganzoo.training.batches.
    GivenBatches`). A new run refuses a directory holding files unless ``overwrite``.
    ``callbacks`` are the built ``train.callbacks``; they write records with :meth:`log_record`.
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        console: Console | None = None,
        progress: bool = True,
        train_batches: BatchSource | None = None,
        val_batches: BatchSource | None = None,
    ) -> None:
        self.recipe = recipe
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        t = recipe.train
        self.dist = init_distributed(resolve_device(t.device, setting="train.device").type)
        self.device = resolve_device(t.device, index=self.dist.local_rank, setting="train.device")
        self.console = console or Console()
        self.show_progress = progress and self.dist.is_main
        self.stop_requested: str | None = None
        self.last_checkpoint: Path | None = None
        created: bool | None = None  # a new run: whether its folder was absent (else empty)
        try:
            if resume and self.dist.is_main:
                self.run.acquire()
                # a link planted in place of samples/ would make the run write elsewhere
                check_inside(self.run.samples, self.run.path)
                self.run.clean_stale_files()
            # everything that can be refused is built before a new run's folder is made
            self._build(recipe, train_batches, val_batches)
            if not resume and t.init_from is not None:
                note = self.state.init_from(t.init_from)
                if self.show_progress:
                    self.console.print(note, highlight=False)
            if not resume and self.dist.is_main:
                fresh = not self.run.contents()
                absent = not self.run_dir.exists()
                moved = self.run.start_new(self.recipe, overwrite=overwrite)
                created = absent if fresh else None
                if moved is not None and self.show_progress:
                    self.console.print(f"moved the previous contents of {self.run_dir} to {moved}")
            self.logs = RunLogs(recipe, self.run_dir, enabled=self.dist.is_main)
            self.resumed = resume
            if resume:
                self._resume()
        except BaseException:
            self.close()
            if created is not None:
                self._remove_failed_start(created)
            raise

    def _remove_failed_start(self, created: bool) -> None:
        """Undo a new run's folder after a failed start: the folder when this start made it,
        else what it put in the empty folder it was given."""
        if created:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return
        for p in list(self.run_dir.iterdir()) if self.run_dir.is_dir() else []:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def _build(
        self,
        recipe: Recipe,
        train_batches: BatchSource | None,
        val_batches: BatchSource | None,
    ) -> None:
        t = recipe.train
        self.precision = resolve_precision(t.precision, self.device)
        self.amp_dtype = autocast_dtype(self.precision)
        seed_everything(recipe.seed)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for each step's large buffers
        self.state = TrainState(recipe, self.device, self.dist, self.precision)
        self.update = UpdateStep(recipe, self.state, self.amp_dtype)
        self.terms = self.update.terms  # their state goes into every checkpoint
        self.train_batches = train_batches or self._dataset_batches(train=True)
        self.val_batches = val_batches or self._dataset_batches(train=False)
        epochs = total_epochs(recipe.schedule)
        self.total_steps = t.max_steps or max(1, epochs * self.train_batches.batches_per_epoch)
        self.callbacks = build_callbacks(t.callbacks)
        self.val_mode = resolve_mode(self.eval_generator(), recipe)
        if self.show_progress and self.val_mode.name != "eval":
            self.console.print(f"validation: {self.val_mode.describe()}", highlight=False)
        self.last_losses: dict[str, torch.Tensor] | None = None
        self.final: dict[str, Any] = {}

    def _dataset_batches(self, train: bool) -> DatasetBatches:
        r = self.recipe
        split = r.data.train_split if train else r.data.val_split
        ds = build_dataset(r.data, split, train=train, seed=r.seed)
        workers = loader_workers(r.data.num_workers, self.device, r.data.cache) if train else 0
        return DatasetBatches(
            ds,
            r.data.batch_size,
            seed=r.seed,
            shuffle=train,
            num_workers=workers,
            pin_memory=train and self.device.type == "cuda",
            rank=self.dist.rank if train else 0,
            world_size=self.dist.world_size if train else 1,
        )

    def _resume(self) -> None:
        path = latest_checkpoint(self.run.checkpoints)
        if path is None:
            raise TrainingError(
                f"{self.run_dir}: no checkpoint to resume from (checkpoints/ is empty); "
                "start a new run with `ganzoo train RECIPE --out DIR`"
            )
        checkpoint = load_checkpoint(path)
        missing = self.state.load_state_dict(checkpoint)
        self.callbacks.load_state_dict(checkpoint.get(CHECKPOINT_KEY) or {})
        self.terms.load_state_dict(checkpoint.get(TERMS_KEY) or [])
        self.last_checkpoint = path
        if self.dist.is_main:
            self.run.drop_records_after(self.state.step)
            self.run.write_recipe(self.recipe)  # with the overrides this resume took
        if self.show_progress:
            fresh = f"; fresh: {', '.join(missing)}" if missing else ""
            self.console.print(
                f"resuming {self.run_dir} from {path.name} (step {self.state.step}{fresh})",
                highlight=False,
            )

    # -- convenient views of the state ---------------------------------------------------------
    @property
    def step(self) -> int:
        return self.state.step

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def g_module(self) -> nn.Module:
        return self.state.g_module

    @property
    def d_module(self) -> nn.Module:
        return self.state.d_module

    @property
    def ema(self) -> torch.optim.swa_utils.AveragedModel | None:
        return self.state.ema

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One G update with its D updates; returns detached losses (no host sync)."""
        return self.update(batch)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Checkpoint now (rank 0 writes). Refused, with the one-line error naming the last good
        checkpoint, when the last losses or any tensor of the state are not finite."""
        if self.last_losses is not None:
            self._check_finite(self.last_losses)
        bad = self.state.nonfinite()
        if any_rank(bool(bad), self.device):
            what = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise TrainingError(
                f"the training state holds NaN/inf at step {self.step} ({what or 'another rank'})"
                f"; not saved; {self._last_good()} (lower the learning rates or use precision "
                f"fp32, then {self._retry()})"
            )
        if self.dist.is_main:
            self.last_checkpoint = save_checkpoint(
                self.checkpoint_state(),
                self.run.checkpoints,
                self.step,
                self.recipe.train.keep_checkpoints,
            )
        barrier()
        self.callbacks.emit("on_checkpoint", self, self.last_checkpoint)
        return self.last_checkpoint

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint of this step holds: the training state and the callbacks' states
        (no collective call: any rank may build it)."""
        state = self.state.state_dict()
        callbacks = self.callbacks.state_dict()
        if callbacks:  # left out when empty: the checkpoint of a default recipe as before
            state[CHECKPOINT_KEY] = callbacks
        if self.terms:
            state[TERMS_KEY] = self.terms.state_dict()
        return state

    def log_record(self, record: dict[str, Any], event: str | None = None) -> None:
        """Write ``record`` to metrics.jsonl and the loggers (rank 0), keep it in the final
        record, and tell the callbacks ``event`` (e.g. ``on_log``) with it."""
        self.logs.write(record)
        self.final.update(record)
        if event is not None:
            self.callbacks.emit(event, self, record)

    def _retry(self) -> str:
        """How to train again after a refusal: resume from the last good checkpoint, or (none
        was written, so a resume has nothing to continue) start the run again in place."""
        if self.last_checkpoint:
            return "--resume"
        return f"start again with --out {self.run_dir} --overwrite"

    def _last_good(self) -> str:
        if self.last_checkpoint:
            return f"last good checkpoint: {self.last_checkpoint}"
        return "no checkpoint was written yet"

    def _check_finite(self, step_losses: dict[str, torch.Tensor]) -> None:
        losses = {
            k: v for k, v in step_losses.items() if not k.startswith(("d_out", "d_acc", "grad_"))
        }
        values = torch.stack(list(losses.values()))
        if not bool(torch.isfinite(values).all()):
            bad = ", ".join(k for k, v in losses.items() if not torch.isfinite(v))
            raise TrainingError(
                f"loss {bad} became NaN/inf at step {self.step}; {self._last_good()} "
                f"(lower the learning rates or use precision fp32, then {self._retry()})"
            )

    # -- evaluation and samples ---------------------------------------------------------------
    def eval_generator(self) -> nn.Module:
        """The generator used for evaluation: the EMA copy when there is one."""
        return self.state.ema.module if self.state.ema is not None else self.state.g_module

    @torch.no_grad()
    def validate(self, metric_set: MetricSet | None = None) -> dict[str, float]:
        """``val_<metric>`` of the eval generator over the first ``train.val_batches`` val
        batches for each metric of ``metric_set`` (default L1 and PSNR), and a sample grid of
        the first batch; G runs in the test-time mode ``auto`` chooses
        (:func:`~ganzoo.inference_mode.resolve_mode`), as ``ganzoo eval`` runs it."""
        net = self.eval_generator()
        scores = metric_set or build_metric_set(("l1", "psnr"))
        scores.reset()
        first = None
        with generator_in_mode(net, self.val_mode, self.recipe.seed) as g:
            for i, batch in enumerate(self.val_batches.epoch(0, 0)):
                if i >= self.recipe.train.val_batches:
                    break
                a, b = self.update.to_device(batch["A"]), self.update.to_device(batch["B"])
                with self.update.autocast():
                    fake = g(a)
                fake = fake.float()
                scores.update(fake, b.float())
                if first is None:
                    first = (a[:4].float(), fake[:4], b[:4].float())
        if first is not None:
            save_grid(self.run.samples / f"step_{self.step:08d}.png", *first, within=self.run.path)
        values = scores.compute() if scores.n else {}
        return {
            records.VAL_PREFIX + name: values.get(name, math.nan)
            for name in (*scores.names, *(["kid_std"] if "kid" in scores.names else []))
        }

    def _calibrate_bn(self) -> None:
        """``train.calibrate_bn``: G's (and its EMA's) BatchNorm statistics recomputed over
        that many training images (:mod:`ganzoo.training.calibration`), before the last save."""
        images = self.recipe.train.calibrate_bn
        if images == 0 or not self.dist.is_main:
            return
        nets = [self.state.g_module] + ([self.state.ema.module] if self.state.ema else [])
        used = [calibrate_generator(net, self.recipe, images) for net in nets]
        if used[0] and self.show_progress:
            self.console.print(
                f"recomputed G's BatchNorm statistics over {used[0]} training images "
                "(train.calibrate_bn)",
                highlight=False,
            )

    # -- the loop ------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Stop after the current step, with a checkpoint; the first reason given is kept."""
        self.stop_requested = self.stop_requested or reason

    def fit(self) -> dict[str, Any]:
        """Train to the end; returns the final record (step, losses, val metrics, checkpoint).
        A failing disk ends the run with one line naming the last good checkpoint."""
        if self.show_progress:
            for line in self.startup_lines():
                self.console.print(line, highlight=False)
        if self.resumed and self.step >= self.total_steps:
            if self.show_progress:
                self.console.print(
                    f"nothing to do: the run is already at step {self.step} of "
                    f"{self.total_steps}; raise it, e.g. `ganzoo train --resume {self.run_dir} "
                    f"--set train.max_steps={2 * self.total_steps}`",
                    highlight=False,
                )
            return {"step": self.step, "checkpoint": str(self.last_checkpoint)}
        self.final = {"step": self.step}
        self.logs.start(self.device, self.step, self.resumed, precision=self.precision)
        try:
            try:
                self.callbacks.emit("on_fit_start", self)
                self._loop()
                if self.step >= self.total_steps:
                    self._calibrate_bn()
                self.save()
                self.callbacks.emit("on_fit_end", self, self._final_record())
            except BaseException as exc:
                self.callbacks.emit("on_exception", self, exc)
                raise
        except OSError as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            raise StorageError(
                f"writing the run failed ({exc.strerror or exc}{where}); {self._last_good()}; "
                "fix it and continue with --resume"
            ) from None
        finally:
            self.logs.finish({k: v for k, v in self.final.items() if k.startswith(records.CURVES)})
        final = self._final_record()
        if self.stop_requested is not None and self.show_progress:
            self.console.print(
                f"stopped by {self.stop_requested} at step {self.step}; checkpoint saved to "
                f"{self.last_checkpoint}; continue with `ganzoo train --resume {self.run_dir}`"
            )
        return final

    def _final_record(self) -> dict[str, Any]:
        """The last loss and validation records merged, with the step and checkpoint."""
        checkpoint = str(self.last_checkpoint) if self.last_checkpoint else None
        return {**self.final, "step": self.step, "checkpoint": checkpoint}

    def startup_lines(self) -> list[str]:
        """What the run is about to do, printed before the first step (as pix2pix's network
        and dataset summary): run folder, device, precision used, G/D size, data, steps."""
        r, t = self.recipe, self.recipe.train
        asked = "" if t.precision == self.precision else f" (train.precision {t.precision})"
        threads = (
            f", {torch.get_num_threads()} torch thread(s)" if self.device.type == "cpu" else ""
        )
        procs = f", {self.dist.world_size} processes" if self.dist.enabled else ""

        def count(net: nn.Module) -> str:
            return f"{sum(p.numel() for p in net.parameters()) / 1e6:.3f} M parameters"

        def size(source: BatchSource) -> str:
            dataset = getattr(source, "dataset", None)
            return str(len(dataset)) if dataset is not None else str(source.samples_per_epoch)

        lines = [
            f"run folder: {self.run_dir} ({r.name})",
            f"device: {self.device}{threads}{procs}; precision: {self.precision}{asked}",
            f"generator {r.generator.name}: {count(self.g_module)}; discriminator "
            f"{r.discriminator.name}: {count(self.d_module)}",
            f"data: {size(self.train_batches)} train / {size(self.val_batches)} val pairs "
            f"from {r.data.root} ({r.data.train_split}/, {r.data.val_split}/), "
            f"{r.data.crop_size}px, batch {r.data.batch_size}, "
            f"{self.train_batches.batches_per_epoch} steps per epoch",
            f"steps: {self.step} -> {self.total_steps}; samples every {t.sample_every}, "
            f"checkpoints every {t.checkpoint_every} into {self.run.checkpoints}",
        ]
        return lines

    def _loop(self) -> None:
        """Steps to ``total_steps`` or a stop request; the callbacks do the rest."""
        t, s, source = self.recipe.train, self.state, self.train_batches
        check_every = t.check_every or (1 if self.device.type == "cpu" else t.log_every)
        measure_every = t.grad_norm_every or t.log_every
        while self.step < self.total_steps and not self._stop_agreed():
            s.begin_epoch(s.epoch, fresh=s.samples_in_epoch == 0)
            for batch in source.epoch(s.epoch, s.samples_in_epoch):
                measure = (self.step + 1) % measure_every == 0
                step_losses = self.last_losses = self.update(batch, measure=measure)
                s.step += 1
                s.samples_in_epoch += source.samples_per_batch
                if self.step % check_every == 0:
                    self._check_finite(step_losses)
                self.callbacks.emit("on_step_end", self, step_losses)
                if self.step >= self.total_steps or self._stop_agreed():
                    break
            else:
                self._end_epoch()
                continue
            if s.samples_in_epoch >= source.samples_per_epoch:
                self._end_epoch()

    def _stop_agreed(self) -> bool:
        """Whether the loop ends here: a stop was requested (a signal, a callback) on this
        rank or, under torchrun, on any. Ranks decide on the value they exchanged, never on
        the flag itself, which a signal handler may set on one rank between the exchange and
        the test: that rank would leave the loop a step early and both would wait for each
        other's collectives (tests/test_distributed.py)."""
        if not self.dist.enabled:
            return self.stop_requested is not None
        if not any_rank(self.stop_requested is not None, self.device):
            return False
        self.stop_requested = self.stop_requested or "a signal on another rank"
        return True

    def _end_epoch(self) -> None:
        s = self.state
        s.epoch += 1
        s.samples_in_epoch = 0
        self.callbacks.emit("on_epoch_end", self)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the run directory's lock and stop loader workers (idempotent)."""
        for source in (getattr(self, "train_batches", None), getattr(self, "val_batches", None)):
            close = getattr(source, "close", None)
            if close is not None:
                close()
        self.run.release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer):  # noqa: ANN201
    """SIGINT and SIGTERM end the run after the current step, with a checkpoint. A second Ctrl-C
    stops a single-process run at once, without one; under torchrun it does not, since the
    launcher forwards the group's Ctrl-C, so every rank sees it twice (torchrun itself ends
    ranks still busy after its grace period)."""
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        second = trainer.stop_requested is not None and signum == signal.SIGINT
        if second and not trainer.dist.enabled:
            raise KeyboardInterrupt  # stop now, without a checkpoint
        trainer.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield trainer
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def default_run_dir(recipe: Recipe, root: Path = Path("runs")) -> Path:
    """``runs/<recipe name>`` when absent or empty, else the first ``-2``, ``-3``... that is
    (the start-up block and the CLI's last lines print which)."""
    base = root / recipe.name
    candidate, n = base, 1
    while candidate.exists() and RunDir(candidate).contents():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def train(
    recipe: Recipe | None = None,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    overrides: list[str] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> tuple[Trainer, dict[str, Any]]:
    """Train ``recipe`` into ``run_dir`` (or resume the run in ``run_dir``, taking only the
    overrides a resume may take: :data:`ganzoo.run_dir.RESUMABLE`)."""
    if resume:
        if run_dir is None:
            raise TrainingError("--resume needs the run directory")
        recipe = RunDir(run_dir).resume_recipe(overrides)
    if recipe is None:
        raise TrainingError("give a recipe to train, or resume a run directory")
    if run_dir is None:
        run_dir = default_run_dir(recipe)
        if run_dir.name != recipe.name and progress and console is not None:
            console.print(
                f"{run_dir.with_name(recipe.name)} holds another run; this one goes to "
                f"{run_dir} (--out DIR names the folder)",
                highlight=False,
            )
    with (
        Trainer(
            recipe, run_dir, resume=resume, overwrite=overwrite, console=console, progress=progress
        ) as trainer,
        stop_on_signals(trainer),
    ):
        final = trainer.fit()
    return trainer, final
