"""How a trained G runs at test time: the mode, decided in one place (:func:`resolve_mode`) for
every caller (translate, eval, ``ganzoo.load``, the trainer's validation and so the report's
curves and ablation scores):

* ``"eval"``: BatchNorm uses its running statistics, dropout is off (deterministic).
* ``"train"``: what the reference's ``test.py`` does unless ``--eval``: BatchNorm normalises
  with the statistics of the batch and dropout stays on. It runs on a copy of G, so G's running
  statistics (and spectral-norm vectors) are never updated; the dropout draws come from
  ``seed``, so the outputs are reproducible.
* ``"auto"`` (the default): a G whose BatchNorm learned per-sample statistics (trained at batch
  size 1, not synchronised across processes) runs *per-sample*: on a copy of G in eval mode
  whose BatchNorm layers normalise each image by its own statistics (the images of a batch go
  through one by one, so an output depends only on its input), dropout as
  :data:`AUTO_DROPOUT`; every other G runs in eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from ganzoo.errors import GanzooError
from ganzoo.recipe import Recipe

MODES = ("auto", "eval", "train")
#: Dropout in ``auto``'s per-sample mode: off (deterministic; measured equal or better than the
#: paper's dropout-on on facades and edges2shoes, docs/inference.md).
AUTO_DROPOUT = False


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise GanzooError(
            f"mode '{mode}' is unknown; use auto, eval or train (see docs/inference.md)"
        )


@dataclass(frozen=True)
class InferenceMode:
    """How G runs at test time: ``name`` is ``eval``, ``train`` or ``per-sample`` (see the
    module docstring); ``requested`` the mode asked for; ``reason`` why ``auto`` chose it."""

    requested: str
    name: str
    dropout: bool
    reason: str = ""

    def describe(self) -> str:
        """One line, e.g. 'per-sample BatchNorm statistics, dropout off (auto: ...)'."""
        what = {
            "eval": "eval (BatchNorm running statistics, dropout off)",
            "train": "train (BatchNorm statistics of each batch, dropout on)",
            "per-sample": "per-sample BatchNorm statistics, dropout "
            + ("on" if self.dropout else "off"),
        }[self.name]
        return f"{what} ({self.reason})" if self.reason else what


def batchnorm_trained_per_sample(net: nn.Module, recipe: Recipe) -> tuple[bool, str]:
    """(whether G's BatchNorm learned per-sample statistics, why in a few words)."""
    if not any(isinstance(m, _BatchNorm) and m.track_running_stats for m in net.modules()):
        return False, "G has no BatchNorm"
    if recipe.generator.params.get("norm") == "syncbatch":
        return False, "G's BatchNorm is synchronised across processes, as SPADE tests it"
    if recipe.data.batch_size != 1:
        return False, f"G's BatchNorm was trained on batches of {recipe.data.batch_size}"
    return True, "G's BatchNorm was trained at batch size 1, on per-sample statistics"


def resolve_mode(net: nn.Module, recipe: Recipe | None, mode: str = "auto") -> InferenceMode:
    """The one decision of how ``net`` (trained by ``recipe``) runs for ``mode``."""
    check_mode(mode)
    if mode != "auto":
        return InferenceMode(mode, mode, dropout=mode == "train")
    if recipe is None:
        raise GanzooError("mode auto needs the generator's recipe; pass eval or train")
    per_sample, why = batchnorm_trained_per_sample(net, recipe)
    if per_sample:
        return InferenceMode("auto", "per-sample", AUTO_DROPOUT, f"auto: {why}")
    return InferenceMode("auto", "eval", False, f"auto: {why}")


def default_batch_size(mode: str) -> int:
    """1 in train mode (batch statistics then depend on one image, as in the reference
    test.py), 8 otherwise (where the batch size does not change the outputs)."""
    return 1 if mode == "train" else 8


def resolve_batch_size(batch_size: int | None, mode: str) -> int:
    """``batch_size``, or the default of mode ``mode`` (a :class:`InferenceMode` name) when None;
    a one-line error below 1."""
    if batch_size is None:
        return default_batch_size(mode)
    if batch_size < 1:
        raise GanzooError(f"--batch-size {batch_size}: must be at least 1")
    return batch_size


class PerSample(nn.Module):
    """Runs ``net`` on each image of a batch alone: (N, C, H, W) -> N outputs concatenated."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.size_divisor = getattr(net, "size_divisor", 1)
        self.min_side = getattr(net, "min_side", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(x[i : i + 1]) for i in range(x.shape[0])])


@contextmanager
def generator_in_mode(
    net: nn.Module, mode: InferenceMode | str, seed: int = 0
) -> Iterator[nn.Module]:
    """The module to call for ``mode`` (an :class:`InferenceMode`, or ``eval`` / ``train``):
    ``net`` itself in eval mode; otherwise a copy (whose buffer updates are thrown away), with the
    torch RNG seeded and restored around it."""
    if isinstance(mode, str):
        mode = resolve_mode(net, None, mode)
    if mode.name == "eval":
        was_training = net.training
        net.eval()
        try:
            yield net
        finally:
            net.train(was_training)
        return
    working = copy.deepcopy(net).train(mode.name == "train")
    if mode.name == "per-sample":
        for m in working.modules():
            if isinstance(m, _BatchNorm) or (mode.dropout and isinstance(m, _DropoutNd)):
                m.train()
        working = PerSample(working)
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield working
