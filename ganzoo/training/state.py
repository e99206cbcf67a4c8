"""Everything a checkpoint holds: G and D, their optimizers, schedules and gradient scalers, the
image pool, the EMA of G, the RNG streams and the position in the data.

:class:`TrainState` builds them from a recipe, wraps the networks for DDP / ``torch.compile``
(keeping the plain modules for saving), restores a checkpoint (a partial one too: a
``ganzoo import`` holds only weights), and applies the recipe's staged training
(``optim.train_only``) and ``train.init_from``.
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.artifacts.loading import first_mismatch
from ganzoo.artifacts.schema import checkpoint_header
from ganzoo.build import build_discriminator, build_generator, check_train_only
from ganzoo.errors import GanzooError, TrainingError
from ganzoo.nn.matmul_conv import small_convolutions_as_matmuls
from ganzoo.nn.norm_layouts import channels_last_norms
from ganzoo.recipe import Recipe, from_dict
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import nonfinite_entries
from ganzoo.training.dense_views import DenseViews
from ganzoo.training.distributed import DistInfo
from ganzoo.training.ema import build_ema
from ganzoo.training.image_pool import ImagePool
from ganzoo.training.master_adam import MasterAdam
from ganzoo.training.master_weights import MasterWeights
from ganzoo.training.rng import rng_state, set_rng_state
from ganzoo.training.schedule import build_scheduler


def _adam(
    params: Any,
    lr: float,
    recipe: Recipe,
    device: torch.device,
    masters: MasterWeights | None = None,
    views: bool = True,
) -> torch.optim.Adam:
    """Adam over ``params`` (the fp32 masters under bf16-master: on the CPU a
    :class:`MasterAdam`, its copies fused into the update); fused where asked and
    available, stepping channels_last weights through contiguous views (:mod:`dense_views`)
    unless ``views`` is False (fp16: the gradient scaler unscales the gradients it finds on
    the optimizer's tensors before the step, when the views have none yet)."""
    o = recipe.optim
    if masters is not None and device.type == "cpu":  # the copies fused into the update
        return MasterAdam(masters, lr, tuple(o.betas), o.weight_decay, compiled=o.fused)
    params = list(masters.parameters() if masters is not None else params)
    kwargs = dict(lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    opt = None
    if o.fused and device.type in ("cuda", "cpu"):
        dense = DenseViews(params if views else [])
        try:
            opt = torch.optim.Adam(dense.parameters() or params, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # no fused kernel for this device / build
            pass
    if opt is None:
        dense = DenseViews([])
        opt = torch.optim.Adam(params, **kwargs)
    if masters is not None:
        masters.attach(opt)  # first: the masters' gradients, then their views'
    dense.attach(opt)
    return opt


def _matches(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _image_size(tree: Any) -> tuple[int, int] | None:
    """``(height, width)`` a checkpoint's recipe trained on; None without a valid recipe."""
    try:
        return from_dict(tree).data.image_size if isinstance(tree, dict) else None
    except GanzooError:
        return None


class TrainState:
    """The networks and everything else a run checkpoints (see the module docstring).

    ``g_module`` / ``d_module`` are the plain networks (saved, EMA'd); ``G`` / ``D`` are what
    the step calls (DDP- or compile-wrapped when asked); ``d_for_g`` is D for the generator's
    update, unwrapped from DDP since D is not being updated then.
    """

    def __init__(
        self, recipe: Recipe, device: torch.device, dist: DistInfo, precision: str | None = None
    ) -> None:
        self.recipe = recipe
        self.device = device
        self.dist = dist
        t = recipe.train
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.g_module = build_generator(recipe).to(device, memory_format=self.memory_format)
        self.d_module = build_discriminator(recipe).to(device, memory_format=self.memory_format)
        if t.small_convs_as_matmuls and device.type == "cpu":
            small_convolutions_as_matmuls(self.g_module)
            small_convolutions_as_matmuls(self.d_module)
        if t.channels_last and device.type == "cpu":
            channels_last_norms(self.g_module)
            channels_last_norms(self.d_module)
        check_train_only(recipe, self.g_module, self.d_module)
        self.ema = None
        if recipe.optim.ema_decay is not None:  # before bf16-master: the copy stays fp32
            self.ema = build_ema(self.g_module, recipe.optim.ema_decay)
        self.masters: list[MasterWeights] = []
        if (precision or t.precision) == "bf16-master":
            self.masters = [MasterWeights(self.g_module), MasterWeights(self.d_module)]
        g_master, d_master = self.masters or (None, None)
        fp16 = t.precision == "fp16" and device.type == "cuda"
        g, d = self.g_module.parameters(), self.d_module.parameters()
        self.opt_g = _adam(g, recipe.optim.lr_g, recipe, device, g_master, views=not fp16)
        self.opt_d = _adam(d, recipe.optim.lr_d, recipe, device, d_master, views=not fp16)
        self.sched_g = build_scheduler(self.opt_g, recipe.schedule)
        self.sched_d = build_scheduler(self.opt_d, recipe.schedule)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.pool = ImagePool(recipe.optim.pool_size)
        self.step = 0
        self.epoch = 0
        self.samples_in_epoch = 0
        self.G: nn.Module = self.g_module
        self.D: nn.Module = self.d_module
        self.d_for_g: nn.Module = self.d_module
        if recipe.optim.train_only is not None and dist.enabled:
            raise TrainingError(
                "optim.train_only (staged training) is not supported with several processes; "
                "run that stage with --nproc 1"
            )
        if dist.enabled:
            self._wrap_distributed()
        if t.compile:
            self.G = torch.compile(self.G)
            self.D = torch.compile(self.D)
            self.d_for_g = torch.compile(self.d_module) if dist.enabled else self.D

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
                self.g_module = nn.SyncBatchNorm.convert_sync_batchnorm(self.g_module)
            if norms[1] == "syncbatch":
                self.d_module = nn.SyncBatchNorm.convert_sync_batchnorm(self.d_module)
            self.d_for_g = self.d_module
        self.G = DDP(self.g_module, device_ids=ids)
        self.D = DDP(self.d_module, device_ids=ids)

    # -- staged training ---------------------------------------------------------------------
    def in_restricted_phase(self, epoch: int) -> bool:
        only = self.recipe.optim.train_only
        return only is not None and (only.epochs is None or epoch < only.epochs)

    def d_trains(self) -> bool:
        """False while ``optim.train_only.discriminator`` is ``[]`` (D is not updated)."""
        only = self.recipe.optim.train_only
        return not (self.in_restricted_phase(self.epoch) and only.discriminator == [])

    def g_trains(self) -> bool:
        """False while no G parameter is trained (``optim.train_only.generator: []``)."""
        return any(p.requires_grad for p in self.g_module.parameters())

    def trainable_d(self) -> None:
        """``requires_grad`` on the D parameters the current phase trains."""
        only = self.recipe.optim.train_only
        patterns = only.discriminator if self.in_restricted_phase(self.epoch) else None
        for name, p in self.d_module.named_parameters():
            p.requires_grad_(_matches(name, patterns))

    def begin_epoch(self, epoch: int, fresh: bool) -> None:
        """Freeze what the phase of ``epoch`` freezes in G. When a restricted phase ends at the
        start of an epoch (``fresh``), G's optimizer restarts with empty moments over all
        parameters, as pix2pixHD's ``update_fixed_params`` builds a new Adam for G; D's
        optimizer keeps its moments and step count (pix2pixHD never rebuilds it)."""
        only = self.recipe.optim.train_only
        if only is None:
            return
        patterns = only.generator if self.in_restricted_phase(epoch) else None
        for name, p in self.g_module.named_parameters():
            p.requires_grad_(_matches(name, patterns))
        if fresh and only.epochs is not None and epoch == only.epochs:
            self.opt_g.state.clear()

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = checkpoint_header(
            self.recipe.to_dict(), self.step, self.epoch, self.samples_in_epoch
        )
        state |= {
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

    def load_state_dict(self, state: dict[str, Any]) -> list[str]:
        """Restore what ``state`` holds; returns the parts it lacked (an imported checkpoint
        holds weights only: the optimizers then start fresh, the RNG from the recipe's seed)."""
        missing = []
        self._load_net(self.g_module, state["generator"], "generator")
        if "discriminator" in state:
            self._load_net(self.d_module, state["discriminator"], "discriminator")
        else:
            missing.append("discriminator")
        parts = {
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
            "sched_g": self.sched_g,
            "sched_d": self.sched_d,
            "scaler_g": self.scaler_g,
            "scaler_d": self.scaler_d,
        }
        for key, obj in parts.items():
            if key in state:
                obj.load_state_dict(state[key])
            else:
                missing.append(key)
        self._apply_recipe_hyperparameters()
        if "pool" in state:
            self.pool.load_state_dict(state["pool"], self.device)
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])
            else:
                missing.append("ema")
        self.step = int(state.get("step", 0))
        self.epoch = int(state.get("epoch", 0))
        if "samples_in_epoch" in state:
            self.samples_in_epoch = int(state["samples_in_epoch"])
        else:  # checkpoints before the position was kept in samples
            old = state.get("recipe", {}).get("data", {}).get("batch_size", 1)
            self.samples_in_epoch = int(state.get("batch_in_epoch", 0)) * int(old)
        if "rng" in state:
            set_rng_state(state["rng"])
        return missing

    def _apply_recipe_hyperparameters(self) -> None:
        """After a restore: the recipe's learning rates (scaled by the schedule's current
        factor), betas and weight decay, which a resume may change. Unchanged values are left
        exactly as restored, so an uninterrupted and a resumed run stay bit-identical."""
        o = self.recipe.optim
        pairs = ((self.opt_g, self.sched_g, o.lr_g), (self.opt_d, self.sched_d, o.lr_d))
        for opt, sched, lr in pairs:
            base_lrs = getattr(sched, "base_lrs", None)
            for i, group in enumerate(opt.param_groups):
                group["betas"] = tuple(o.betas)
                group["weight_decay"] = o.weight_decay
                old_base = base_lrs[i] if base_lrs else group.get("initial_lr", lr)
                if old_base == lr:
                    continue
                group["lr"] = lr * (group["lr"] / old_base) if old_base else lr
                group["initial_lr"] = lr
                if base_lrs is not None:
                    base_lrs[i] = lr
            if base_lrs is not None:
                sched._last_lr = [g["lr"] for g in opt.param_groups]

    def _load_net(self, net: nn.Module, weights: dict[str, torch.Tensor], what: str) -> None:
        try:
            net.load_state_dict(weights)
        except RuntimeError as exc:
            raise TrainingError(
                f"the checkpoint's {what} does not fit the recipe's ({first_mismatch(exc)})"
            ) from None

    def init_from(self, source: str | Path) -> str:
        """Copy into G and D every tensor of the run directory or checkpoint ``source`` whose
        name and shape match (a multi-scale D's scales matched by the resolution they see);
        the rest keep their initialisation. Returns a one-line summary; a one-line error when
        nothing matches."""
        path = Path(source)
        ckpt = latest_checkpoint(RunDir(path).checkpoints) if path.is_dir() else path
        if ckpt is None or not Path(ckpt).is_file():
            raise TrainingError(f"train.init_from {source}: no checkpoint there")
        state = load_checkpoint(Path(ckpt))
        parts = []
        for what, net in (("generator", self.g_module), ("discriminator", self.d_module)):
            weights = state.get(what)
            if not isinstance(weights, dict):
                parts.append(f"{what}: none in the checkpoint")
                continue
            by_resolution = getattr(net, "weights_by_resolution", None)
            if by_resolution is not None:  # multi-scale D: each scale onto its resolution
                weights = by_resolution(weights, _image_size(state.get("recipe")))
            own = net.state_dict()
            taken = {
                k: v
                for k, v in weights.items()
                if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape
            }
            if what == "generator" and not taken:
                raise TrainingError(
                    f"train.init_from {ckpt}: none of its generator weights fit this generator "
                    "(other names or shapes)"
                )
            net.load_state_dict(taken, strict=False)
            parts.append(f"{what} {len(taken)}/{len(own)} tensors")
        return f"initialised from {ckpt}: " + ", ".join(parts)

    def nonfinite(self) -> list[str]:
        """Names of the state's tensors (weights, buffers, optimizer moments, EMA, pool) that
        hold a NaN or an infinity; one synchronisation per device."""
        state = {
            "generator": self.g_module.state_dict(),
            "discriminator": self.d_module.state_dict(),
            "opt_g": self.opt_g.state_dict()["state"],
            "opt_d": self.opt_d.state_dict()["state"],
            "pool": self.pool.images,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return nonfinite_entries(state)
