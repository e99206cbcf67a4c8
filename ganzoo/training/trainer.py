"""The one trainer every recipe uses.

Per iteration (the pix2pix reference order): G forward; ``d_steps`` D updates on
(condition, real) vs (condition, fake.detach()) with the D loss halved; one G update with
GAN + l1*L1 (+ feature matching, + perceptual). A run directory holds::

    RUN_DIR/recipe.yaml        the resolved recipe
    RUN_DIR/metrics.jsonl      one JSON object per log / validation step
    RUN_DIR/samples/           grids: input | output | target
    RUN_DIR/checkpoints/       step_XXXXXXXX.pt, the newest ``train.keep_checkpoints``
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from ganzoo import losses
from ganzoo.build import build_discriminator, build_generator, build_objective
from ganzoo.data import build_dataset, epoch_batches, len_batches
from ganzoo.errors import TrainingError
from ganzoo.evaluation import metrics
from ganzoo.recipe import Recipe, from_dict
from ganzoo.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ganzoo.training.distributed import (
    DistInfo,
    any_rank,
    barrier,
    broadcast_float,
    init_distributed,
)
from ganzoo.training.image_pool import ImagePool
from ganzoo.training.precision import autocast_dtype, resolve_precision
from ganzoo.training.progress import ProgressReporter
from ganzoo.training.samples import save_grid
from ganzoo.training.schedule import build_scheduler, total_epochs

Outputs = list[list[torch.Tensor]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str, dist_info: DistInfo) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but no CUDA device is visible; use 'auto'")
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", dist_info.local_rank)
    return torch.device("cpu")


def _float(outputs: Outputs) -> Outputs:
    return [[f.float() for f in branch] for branch in outputs]


def _unwrap(module: nn.Module) -> nn.Module:
    module = getattr(module, "_orig_mod", module)  # torch.compile
    return getattr(module, "module", module)  # DistributedDataParallel


def _adam(params: Any, lr: float, recipe: Recipe, device: torch.device) -> torch.optim.Adam:
    o = recipe.optim
    params = list(params)
    kwargs = dict(lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    if o.fused and device.type in ("cuda", "cpu"):
        try:
            return torch.optim.Adam(params, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # no fused kernel for this device / build
            pass
    return torch.optim.Adam(params, **kwargs)


class Trainer:
    """Builds everything a recipe names and trains it; ``fit()`` runs to ``max_steps`` or the
    end of the schedule, ``request_stop()`` (signals) ends it after the current step with a
    checkpoint."""

    def __init__(
        self,
        recipe: Recipe,
        run_dir: Path,
        *,
        resume: bool = False,
        console: Console | None = None,
        progress: bool = True,
    ) -> None:
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        t = recipe.train
        self.dist = init_distributed(
            "cuda" if pick_device(t.device, DistInfo()).type == "cuda" else "cpu"
        )
        self.device = pick_device(t.device, self.dist)
        self.console = console or Console()
        self.show_progress = progress and self.dist.is_main
        self.precision = resolve_precision(t.precision, self.device)
        self.amp_dtype = autocast_dtype(self.precision)
        self.stop_requested: str | None = None

        seed_everything(recipe.seed)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.G = build_generator(recipe).to(self.device)
        self.D = build_discriminator(recipe).to(self.device)
        memory = torch.channels_last if t.channels_last else torch.contiguous_format
        self.memory_format = memory
        self.G.to(memory_format=memory)
        self.D.to(memory_format=memory)
        self.objective = build_objective(recipe)
        self.perceptual = (
            losses.PerceptualLoss().to(self.device) if recipe.loss.perceptual > 0 else None
        )

        self.opt_g = _adam(self.G.parameters(), recipe.optim.lr_g, recipe, self.device)
        self.opt_d = _adam(self.D.parameters(), recipe.optim.lr_d, recipe, self.device)
        self.sched_g = build_scheduler(self.opt_g, recipe.schedule)
        self.sched_d = build_scheduler(self.opt_d, recipe.schedule)
        fp16 = self.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.pool = ImagePool(recipe.optim.pool_size)
        self.ema = None
        if recipe.optim.ema_decay is not None:
            self.ema = torch.optim.swa_utils.AveragedModel(
                self.G,
                multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.optim.ema_decay),
                use_buffers=True,
            )

        self.g_module, self.d_module = self.G, self.D  # unwrapped, for the G step and saving
        if self.dist.enabled:
            self._wrap_distributed()
        if t.compile:
            self.G = torch.compile(self.G)
            self.D = torch.compile(self.D)
            self.d_for_g = torch.compile(self.d_module) if self.dist.enabled else self.D
        else:
            self.d_for_g = self.d_module

        self.train_set = build_dataset(
            recipe.data, recipe.data.train_split, train=True, seed=recipe.seed
        )
        self.val_set = build_dataset(
            recipe.data, recipe.data.val_split, train=False, seed=recipe.seed
        )
        self.batches_per_epoch = len_batches(
            self.train_set, recipe.data.batch_size, self.dist.world_size
        )
        epochs = total_epochs(recipe.schedule)
        self.total_steps = t.max_steps or max(1, epochs * self.batches_per_epoch)

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_checkpoint: Path | None = None
        self.running: dict[str, torch.Tensor] = {}
        self.last_losses: dict[str, torch.Tensor] | None = None
        self.running_count = 0
        if resume:
            self._resume()
        elif self.dist.is_main:
            self._init_run_dir()

    # -- set-up ------------------------------------------------------------------------------
    def _wrap_distributed(self) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        norms = (
            self.recipe.generator.params.get("norm"),
            self.recipe.discriminator.params.get("norm"),
        )
        ids = [self.device.index] if self.device.type == "cuda" else None
        if "syncbatch" in norms and self.device.type != "cuda":
            warnings.warn(
                "norm 'syncbatch' needs CUDA (PyTorch's SyncBatchNorm is GPU-only); "
                "each CPU process keeps its own BatchNorm statistics",
                stacklevel=2,
            )
        elif "syncbatch" in norms:
            if norms[0] == "syncbatch":
                self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            if norms[1] == "syncbatch":
                self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        self.g_module, self.d_module = self.G, self.D
        self.G = DDP(self.G, device_ids=ids)
        self.D = DDP(self.D, device_ids=ids)

    def _init_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "recipe.yaml").write_text(self.recipe.to_yaml())
        (self.run_dir / "samples").mkdir(exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)

    def _resume(self) -> None:
        path = latest_checkpoint(self.run_dir / "checkpoints")
        if path is None:
            raise TrainingError(
                f"{self.run_dir}: no checkpoint to resume from (checkpoints/ is empty); "
                "start a new run with `ganzoo train RECIPE --out DIR`"
            )
        self.load_state(load_checkpoint(path))
        self.last_checkpoint = path
        if self.show_progress:
            self.console.print(f"resuming {self.run_dir} from {path.name} (step {self.step})")

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "format": "ganzoo-checkpoint-1",
            "recipe": self.recipe.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "generator": self.g_module.state_dict(),
            "discriminator": self.d_module.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "pool": self.pool.state_dict(),
            "rng": rng_state(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.g_module.load_state_dict(state["generator"])
        self.d_module.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.pool.load_state_dict(state["pool"], self.device)
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        set_rng_state(state["rng"])

    def save(self) -> Path | None:
        """Checkpoint now (rank 0 only), never a state whose last losses were not finite;
        returns its path."""
        if self.last_losses is not None:
            self._check_finite(self.last_losses)
        if self.dist.is_main:
            self.last_checkpoint = save_checkpoint(
                self.state_dict(),
                self.run_dir / "checkpoints",
                self.step,
                self.recipe.train.keep_checkpoints,
            )
        barrier()
        return self.last_checkpoint

    # -- one iteration -----------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One G step with its D steps; returns detached losses (no host sync)."""
        rl = self.recipe.loss
        real_a, real_b = self._to_device(batch["A"]), self._to_device(batch["B"])
        with self._autocast():
            fake_b = self.G(real_a)

        # D update(s): (condition, real) vs (condition, fake.detach()), loss halved.
        self.d_module.requires_grad_(True)
        fake_for_d = self.pool.query(fake_b.detach())
        real_pair = torch.cat([real_a, real_b], 1)
        fake_pair = torch.cat([real_a, fake_for_d], 1)
        for _ in range(self.recipe.optim.d_steps):
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast():
                real_out = self.D(real_pair)
                fake_out = self.D(fake_pair)
            loss_d = losses.discriminator_loss(self.objective, _float(real_out), _float(fake_out))
            loss_d = loss_d * 0.5
            if self.objective.needs_penalty:
                loss_d = loss_d + self.objective.penalty(self.D, real_a, real_b, fake_for_d)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()

        # G update: D frozen, called unwrapped (no DDP sync for a module not being updated).
        self.d_module.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            fake_out = self.d_for_g(torch.cat([real_a, fake_b], 1))
            real_feats = None
            if rl.feature_matching > 0:
                with torch.no_grad():
                    real_feats = self.d_for_g(real_pair)
        out = {"d": loss_d.detach()}
        loss_g_gan = losses.generator_gan_loss(self.objective, _float(fake_out))
        loss_g = loss_g_gan
        out["g_gan"] = loss_g_gan.detach()
        if rl.l1 > 0:
            loss_l1 = F.l1_loss(fake_b.float(), real_b.float())
            loss_g = loss_g + rl.l1 * loss_l1
            out["g_l1"] = loss_l1.detach()
        if real_feats is not None:
            loss_fm = losses.feature_matching_loss(_float(real_feats), _float(fake_out))
            loss_g = loss_g + rl.feature_matching * loss_fm
            out["g_fm"] = loss_fm.detach()
        if self.perceptual is not None:
            loss_vgg = self.perceptual(fake_b.float(), real_b.float())
            loss_g = loss_g + rl.perceptual * loss_vgg
            out["g_vgg"] = loss_vgg.detach()
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.ema is not None:
            self.ema.update_parameters(self.g_module)
        return out

    # -- evaluation and samples -------------------------------------------------------------
    def eval_generator(self) -> nn.Module:
        """The generator used for evaluation: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.g_module

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """L1 and PSNR of the eval generator over the first ``train.val_batches`` val batches,
        and a sample grid of the first batch."""
        g = self.eval_generator()
        was_training = g.training
        g.eval()
        l1s, psnrs = [], []
        first = None
        try:
            batches = epoch_batches(
                self.val_set,
                batch_size=self.recipe.data.batch_size,
                shuffle=False,
                seed=self.recipe.seed,
                epoch=0,
                num_workers=0,
                pin_memory=False,
            )
            for i, batch in enumerate(batches):
                if i >= self.recipe.train.val_batches:
                    break
                a, b = self._to_device(batch["A"]), self._to_device(batch["B"])
                with self._autocast():
                    fake = g(a)
                fake = fake.float()
                l1s.append(metrics.l1(fake, b))
                psnrs.append(metrics.psnr(fake, b))
                if first is None:
                    first = (a[:4].float(), fake[:4], b[:4].float())
        finally:
            g.train(was_training)
        if first is not None:
            save_grid(self.run_dir / "samples" / f"step_{self.step:08d}.png", *first)
        return {
            "val_l1": torch.cat(l1s).mean().item() if l1s else math.nan,
            "val_psnr": torch.cat(psnrs).mean().item() if psnrs else math.nan,
        }

    # -- the loop ----------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        self.stop_requested = reason

    def _log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _check_finite(self, step_losses: dict[str, torch.Tensor]) -> None:
        values = torch.stack(list(step_losses.values()))
        if not bool(torch.isfinite(values).all()):
            bad = ", ".join(k for k, v in step_losses.items() if not torch.isfinite(v))
            where = (
                f"last good checkpoint: {self.last_checkpoint}"
                if self.last_checkpoint
                else "no checkpoint was written yet"
            )
            raise TrainingError(
                f"loss {bad} became NaN/inf at step {self.step}; {where} "
                "(lower the learning rates or use precision fp32, then --resume)"
            )

    def fit(self) -> dict[str, Any]:
        """Train to the end; returns the final record (step, losses, val metrics)."""
        t = self.recipe.train
        reporter = ProgressReporter(
            self.total_steps, self.step, self.console, enabled=self.show_progress
        )
        check_every = 1 if self.device.type == "cpu" else t.log_every
        final: dict[str, Any] = {"step": self.step}
        t_log = time.perf_counter()
        steps_since_log = 0
        try:
            while self.step < self.total_steps and self.stop_requested is None:
                self.train_set.set_epoch(self.epoch)
                batches = epoch_batches(
                    self.train_set,
                    batch_size=self.recipe.data.batch_size,
                    shuffle=True,
                    seed=self.recipe.seed,
                    epoch=self.epoch,
                    num_workers=self.recipe.data.num_workers,
                    pin_memory=self.device.type == "cuda",
                    rank=self.dist.rank,
                    world_size=self.dist.world_size,
                    start_batch=self.batch_in_epoch,
                )
                for batch in batches:
                    step_losses = self.last_losses = self.train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    steps_since_log += 1
                    for k, v in step_losses.items():
                        self.running[k] = self.running.get(k, 0.0) + v
                    self.running_count += 1
                    if self.step % check_every == 0:
                        self._check_finite(step_losses)
                    if self.dist.enabled:  # every rank must stop at the same step
                        if any_rank(self.stop_requested is not None, self.device):
                            self.stop_requested = self.stop_requested or "a signal on another rank"
                    reporter.advance(self.step, self.epoch)
                    if self.step % t.log_every == 0 or self.step == self.total_steps:
                        final.update(self._log_losses(reporter, t_log, steps_since_log))
                        t_log, steps_since_log = time.perf_counter(), 0
                    if self.step % t.sample_every == 0 or self.step == self.total_steps:
                        final.update(self._validate_and_log(reporter))
                    if self.step % t.checkpoint_every == 0 and self.step != self.total_steps:
                        self.save()
                    if self.step >= self.total_steps or self.stop_requested is not None:
                        break
                else:
                    self._end_epoch(final)
                    continue
                if self.batch_in_epoch >= self.batches_per_epoch:
                    self._end_epoch(final)
            self.save()
        finally:
            reporter.close()
        final["step"] = self.step
        final["checkpoint"] = str(self.last_checkpoint) if self.last_checkpoint else None
        if self.stop_requested is not None and self.show_progress:
            self.console.print(
                f"stopped by {self.stop_requested} at step {self.step}; checkpoint saved to "
                f"{self.last_checkpoint}; continue with `ganzoo train --resume {self.run_dir}`"
            )
        return final

    def _end_epoch(self, final: dict[str, Any]) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.recipe.schedule.name == "plateau":
            metric = final.get("val_l1")
            if metric is None or math.isnan(metric):
                metric = self.validate()["val_l1"] if self.dist.is_main else 0.0
            metric = broadcast_float(metric, self.device)
            self.sched_g.step(metric)
            self.sched_d.step(metric)
        else:
            self.sched_g.step()
            self.sched_d.step()

    def _log_losses(self, reporter: ProgressReporter, t0: float, steps: int) -> dict[str, Any]:
        n = max(self.running_count, 1)
        values = {k: float(v) / n for k, v in self.running.items()}
        self.running, self.running_count = {}, 0
        elapsed = time.perf_counter() - t0
        record = {
            "step": self.step,
            "epoch": self.epoch,
            **{f"loss_{k}": v for k, v in values.items()},
            "lr_g": self.opt_g.param_groups[0]["lr"],
            "lr_d": self.opt_d.param_groups[0]["lr"],
            "ms_per_step": 1000 * elapsed / max(steps, 1),
        }
        self._log(record)
        reporter.log(self.step, self.epoch, values)
        return record

    def _validate_and_log(self, reporter: ProgressReporter) -> dict[str, Any]:
        if not self.dist.is_main:
            return {}
        values = self.validate()
        record = {"step": self.step, "epoch": self.epoch, **values}
        self._log(record)
        reporter.message(
            f"step {self.step}: val L1 {values['val_l1']:.4f}, PSNR {values['val_psnr']:.2f} dB"
        )
        return record


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer):  # noqa: ANN201
    """SIGINT and SIGTERM end the run after the current step, with a checkpoint."""
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
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
    """``runs/<recipe name>``, or ``-2``, ``-3``... when that exists."""
    base = root / recipe.name
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def recipe_of_run(run_dir: Path, overrides: list[str] | None = None) -> Recipe:
    """The resolved recipe stored in a run directory, with optional overrides."""
    from ganzoo.recipe import apply_overrides, read_yaml

    path = Path(run_dir) / "recipe.yaml"
    if not path.is_file():
        raise TrainingError(f"{run_dir}: not a run directory (no recipe.yaml)")
    tree = apply_overrides(read_yaml(path), list(overrides or []))
    return from_dict(tree, source=str(path))


def train(
    recipe: Recipe | None = None,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    overrides: list[str] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> tuple[Trainer, dict[str, Any]]:
    """Train ``recipe`` into ``run_dir`` (or resume the run in ``run_dir``)."""
    if resume:
        if run_dir is None:
            raise TrainingError("--resume needs the run directory")
        recipe = recipe_of_run(run_dir, overrides)
    assert recipe is not None
    run_dir = run_dir or default_run_dir(recipe)
    trainer = Trainer(recipe, run_dir, resume=resume, console=console, progress=progress)
    with stop_on_signals(trainer):
        final = trainer.fit()
    return trainer, final
