"""DiffAugment: the same differentiable augmentation of every input of D, real and fake.

Zhao et al., Differentiable Augmentation for Data-Efficient GAN Training, NeurIPS 2020
(arXiv:2006.10738); the operations and their ranges follow ``DiffAugment_pytorch.py`` of
mit-han-lab/data-efficient-gans (commit 297dc8c): ``color`` (brightness ``+U(-0.5, 0.5)``,
saturation ``x U(0, 2)`` around the per-pixel channel mean, contrast ``x U(0.5, 1.5)`` around
the image mean), ``translation`` (an integer shift of up to 1/8 of each side, zero-filled),
``cutout`` (one zeroed square of half each side, centred anywhere). Every draw is per sample.

In a paired D the geometric operations (translation, cutout) move the condition and the image
of a pair together and the colour operations change the image only (see
:mod:`ganzoo.regularizers.pairs`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.errors import RegistryError
from ganzoo.registry import register
from ganzoo.regularizers.pairs import PairTerm

POLICIES = ("color", "translation", "cutout")


def _per_sample(x: Tensor) -> Tensor:
    """``U(0, 1)`` of shape ``(N, 1, 1, 1)``."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def brightness(image: Tensor) -> Tensor:
    return image + (_per_sample(image) - 0.5)


def saturation(image: Tensor) -> Tensor:
    mean = image.mean(dim=1, keepdim=True)
    return (image - mean) * (_per_sample(image) * 2) + mean


def contrast(image: Tensor) -> Tensor:
    mean = image.mean(dim=(1, 2, 3), keepdim=True)
    return (image - mean) * (_per_sample(image) + 0.5) + mean


def color(image: Tensor) -> Tensor:
    """Brightness, then saturation, then contrast, as the upstream's ``color`` policy."""
    return contrast(saturation(brightness(image)))


def shift(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """``out[n, :, i, j] = x[n, :, i + dy[n], j + dx[n]]``, zero outside: ``dy``, ``dx`` are
    ``(N,)`` integer shifts; differentiable in ``x``."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    rows = (torch.arange(h, device=x.device) + dy[:, None] + 1).clamp(0, h + 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) + dx[:, None] + 1).clamp(0, w + 1)  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def translation(x: Tensor) -> Tensor:
    """Shift each sample by up to ``H // 8`` rows and ``W // 8`` columns, either way."""
    n, _, h, w = x.shape
    dy = torch.randint(-(h // 8), h // 8 + 1, (n,), device=x.device)
    dx = torch.randint(-(w // 8), w // 8 + 1, (n,), device=x.device)
    return shift(x, dy, dx)


def cutout_mask(n: int, h: int, w: int, device: torch.device) -> Tensor:
    """``(N, 1, H, W)``: 0 inside one ``(H // 2) x (W // 2)`` square per sample, 1 elsewhere;
    the square's centre is uniform over the image (clipped at the borders)."""
    size_y, size_x = h // 2, w // 2
    cy = torch.randint(0, h + (1 - size_y % 2), (n, 1), device=device) - size_y // 2
    cx = torch.randint(0, w + (1 - size_x % 2), (n, 1), device=device) - size_x // 2
    ys, xs = torch.arange(h, device=device), torch.arange(w, device=device)
    inside_y = (ys >= cy) & (ys < cy + size_y)  # (N, H)
    inside_x = (xs >= cx) & (xs < cx + size_x)  # (N, W)
    return (~(inside_y[:, :, None] & inside_x[:, None, :]))[:, None]


def cutout(x: Tensor) -> Tensor:
    n, _, h, w = x.shape
    return x * cutout_mask(n, h, w, x.device).to(x.dtype)


@register(
    "regularizer",
    "diffaugment",
    paper="Zhao et al., Differentiable Augmentation for Data-Efficient GAN Training, "
    "NeurIPS 2020 (arXiv:2006.10738)",
)
class DiffAugment(PairTerm):
    """DiffAugment on every input of D (real and fake, D and G updates), one draw per sample.

    ``policy``: comma-separated operations applied in order, from ``color`` (image channels
    only), ``translation`` and ``cutout`` (the whole pair); the authors' choice for their
    low-data results is ``color,translation,cutout``.
    """

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        self.policy = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in self.policy if p not in POLICIES]
        if unknown or not self.policy:
            raise RegistryError(
                f"diffaugment.policy: {policy!r} is not a list of {', '.join(POLICIES)} "
                "(comma-separated, e.g. 'color,translation,cutout')"
            )

    def augment(self, pairs: Tensor, step: int) -> Tensor:
        for op in self.policy:
            if op == "color":
                pairs = self.on_image(pairs, color)
            elif op == "translation":
                pairs = translation(pairs)
            else:
                pairs = cutout(pairs)
        return pairs

    def describe(self) -> str:
        return f"diffaugment: {','.join(self.policy)} on every D input, real and fake"

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r})"
