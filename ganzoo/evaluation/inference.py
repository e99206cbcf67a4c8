"""Running a trained G on images: the test-time mode, and images of any size.

The test-time mode is decided in one place, :func:`resolve_mode`, for every caller (translate,
eval, ``ganzoo.load``, the trainer's validation and so the report's curves and ablation scores):

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

Sizes: a generator declares ``size_divisor`` and ``min_side``; an image is either padded
(reflect) to the next size G accepts and the output cropped back, or resized.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torchvision.transforms import InterpolationMode

from ganzoo.errors import GanzooError, SizeError
from ganzoo.nn.sizes import check_image_size
from ganzoo.recipe import MAX_SIDE, Recipe

Mode = Literal["auto", "eval", "train"]
T = TypeVar("T")
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


def parse_size(text: str | int | tuple[int, int] | None) -> tuple[int, int] | None:
    """'256' -> (256, 256); '256x512' (height x width) -> (256, 512); None stays None.
    Sides must be 1 .. :data:`ganzoo.recipe.MAX_SIDE` (one-line GanzooError otherwise)."""
    if text is None:
        return None
    if isinstance(text, int):
        text = (text, text)
    if isinstance(text, tuple):
        h, w = int(text[0]), int(text[1])
    else:
        m = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX]\s*(\d{1,9}))?\s*", str(text))
        if not m:
            raise GanzooError(
                f"size '{str(text)[:40]}': expected N or HxW with positive integers, e.g. 256x512"
            )
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) is not None else h
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise GanzooError(f"size {h}x{w}: each side must be between 1 and {MAX_SIDE}")
    return (h, w)


def valid_size(net: nn.Module, h: int, w: int) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) that ``net`` accepts (its size_divisor, min_side)."""
    divisor = int(getattr(net, "size_divisor", 1))
    min_side = int(getattr(net, "min_side", 1))

    def side(s: int) -> int:
        return -(-max(s, min_side) // divisor) * divisor

    return side(h), side(w)


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, h, w) to (N, C, H, W), centred, by reflection (replication where the image is
    too small to reflect); returns the padded batch and the (top, left) offset of the image."""
    h, w = x.shape[-2:]
    ph, pw = size[0] - h, size[1] - w
    if ph == 0 and pw == 0:
        return x, (0, 0)
    top, left = ph // 2, pw // 2
    pads = (left, pw - left, top, ph - top)
    reflectable = max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h
    return F.pad(x, pads, mode="reflect" if reflectable else "replicate"), (top, left)


def resize_uint8(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, h, w) -> uint8 (C, H, W): bicubic with antialias, as the data pipeline."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return TF.resize(image, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 (..., C, H, W) in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1, as training)."""
    return image.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (..., C, H, W) in [-1, 1] -> uint8 in [0, 255] (rounded, clamped)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


@torch.no_grad()
def translate_batch(net: nn.Module, x: torch.Tensor, *, pad: bool = True) -> torch.Tensor:
    """G on a batch of one size: (N, C, h, w) in [-1, 1] -> (N, C', h, w) in [-1, 1].

    With ``pad`` the batch is reflect-padded to the next size G accepts and the output is
    cropped back; without it the size must already be valid (else a one-line SizeError).
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if not pad:
        check_image_size(net, "the generator", h, w)
        return net(x)
    padded, (top, left) = pad_to(x, valid_size(net, h, w))
    return net(padded)[..., top : top + h, left : left + w]


def check_resize_size(
    net: nn.Module, size: tuple[int, int], advice: str = "pass --size accordingly, or --pad"
) -> None:
    """A one-line SizeError, ending with ``advice``, when G cannot take ``size`` (h, w)."""
    try:
        check_image_size(net, "the generator", *size)
    except SizeError as exc:
        raise SizeError(
            str(exc).replace("(set data.crop_size accordingly)", f"({advice})")
        ) from None


#: Pixels (height x width, summed over a batch) G is run on at once: eight 512x512 images; a
#: larger image goes alone, so eight 4000x3000 photos never share a batch.
PIXEL_BUDGET = 8 * 512 * 512


def same_size_batches(
    items: Iterable[tuple[T, torch.Tensor]], batch_size: int, pixel_budget: int = PIXEL_BUDGET
) -> Iterator[list[tuple[T, torch.Tensor]]]:
    """Group consecutive (key, image) items whose images have one shape: at most
    ``batch_size`` of them and at most ``pixel_budget`` pixels together (an image larger than
    the budget makes a batch of one)."""
    batch: list[tuple[T, torch.Tensor]] = []
    for item in items:
        pixels = int(item[1].shape[-1]) * int(item[1].shape[-2])
        if batch and (
            len(batch) == batch_size
            or item[1].shape != batch[0][1].shape
            or (len(batch) + 1) * pixels > pixel_budget
        ):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch
