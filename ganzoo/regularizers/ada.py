"""ADA: augmentations of every input of D applied with a probability ``p`` that adapts to D's
overfitting.

Karras et al., Training Generative Adversarial Networks with Limited Data, NeurIPS 2020
(arXiv:2006.06676), as NVlabs/stylegan2-ada-pytorch (commit 375a436) does it:

- ``training_loop.py``: every ``interval`` (4) D updates, ``r_t = E[sign(D(real))]`` over those
  updates, and ``p <- max(0, p + sign(r_t - target) * (batch * interval) / (kimg * 1000))``
  with ``target`` 0.6 and ``kimg`` 500 (p can go from 0 to 1 in 500k images); ``p`` starts at 0.
  Here ``r_t`` averages the sign of every patch logit of every branch, summed over the ranks
  of a distributed run, and ``batch * interval`` counts the real pairs D saw (all ranks).
- ``augment.py``: each operation is applied to a sample with probability ``p``, drawn per
  sample and per operation. The pipeline here is a differentiable subset of its ``bgc``
  default, in its order: ``xflip`` (a left-right flip with probability ``p / 2``), ``xint``
  (an integer translation of up to 1/8 of each side, reflect-padded), ``brightness`` (``+N(0,
  0.2)``), ``contrast`` (``x 2^N(0, 0.5)``), ``saturation`` (``x 2^N(0, 1)`` around the luma
  axis, i.e. the channel mean), and, when listed, ``cutout`` (a zeroed square of half each
  side, as the paper's ``bgcfnc``). Left out: rotate90, the general geometric group (scale,
  rotation, anisotropy, fractional translation, which resample through wavelet filters),
  lumaflip, hue, image-space filtering and noise.

Geometric operations move the condition and image of a pair together; colour ones change the
image only (:mod:`ganzoo.regularizers.pairs`). ``p`` and the interval's statistics are the
term's state (saved in the checkpoint) and ``p`` is logged as ``ada_p``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ganzoo import records
from ganzoo.errors import RegistryError
from ganzoo.losses.objectives import branch_logits
from ganzoo.losses.terms import DView
from ganzoo.registry import register
from ganzoo.regularizers.diffaugment import cutout_mask
from ganzoo.regularizers.pairs import PairTerm

OPS = ("xflip", "xint", "brightness", "contrast", "saturation", "cutout")
DEFAULT_OPS = "xflip,xint,brightness,contrast,saturation"


def _reflect(index: Tensor, size: int) -> Tensor:
    """Indices reflected into ``[0, size)`` (no edge repeat, as ``F.pad(mode='reflect')``)."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def translate_reflect(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """``out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]]`` with reflection at the borders;
    ``|dy| < H``, ``|dx| < W``; differentiable in ``x``."""
    n, c, h, w = x.shape
    rows = _reflect(torch.arange(h, device=x.device) - dy[:, None], h)  # (N, H)
    cols = _reflect(torch.arange(w, device=x.device) - dx[:, None], w)  # (N, W)
    out = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


@register(
    "regularizer",
    "ada",
    paper="Karras et al., Training Generative Adversarial Networks with Limited Data, "
    "NeurIPS 2020 (arXiv:2006.06676)",
)
class ADA(PairTerm):
    """Adaptive augmentation of every D input, p steered so that E[sign(D(real))] = target.

    Every ``interval`` D updates ``p += sign(r_t - target) * batch * interval / (kimg *
    1000)``, floored at 0; ``p`` is logged as ``ada_p``. ``ops``: comma-separated, from
    xflip, xint, brightness, contrast, saturation, cutout (default: all but cutout).
    ``p``: the starting probability (0 upstream).
    """

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        p: float = 0.0,
        ops: str = DEFAULT_OPS,
    ) -> None:
        self.ops = [o.strip() for o in ops.split(",") if o.strip()]
        unknown = [o for o in self.ops if o not in OPS]
        if unknown or not self.ops:
            raise RegistryError(
                f"ada.ops: {ops!r} is not a list of {', '.join(OPS)} (comma-separated)"
            )
        if interval < 1 or not kimg > 0 or p < 0:
            raise RegistryError(
                f"ada: interval must be >= 1, kimg > 0 and p >= 0, got {interval}, {kimg}, {p}"
            )
        self.target, self.interval, self.kimg = float(target), int(interval), float(kimg)
        self.p = torch.tensor(float(p))
        #: this interval's sum of sign(D(real)), its number of logits, its real pairs
        self.stats = torch.zeros(3)
        self.updates = 0

    # -- the pipeline ---------------------------------------------------------------------
    def augment(self, pairs: Tensor, step: int) -> Tensor:
        n, _, h, w = pairs.shape
        dev = pairs.device
        p = self.p.to(dev)

        def chosen(*shape: int) -> Tensor:
            return torch.rand(n, *shape, device=dev) < p

        if "xflip" in self.ops:
            flip = (torch.rand(n, device=dev) < 0.5) & chosen()
            pairs = torch.where(flip[:, None, None, None], pairs.flip(-1), pairs)
        if "xint" in self.ops:
            t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125
            t = torch.where(chosen(1), t, torch.zeros_like(t))
            dx, dy = (t[:, 0] * w).round().long(), (t[:, 1] * h).round().long()
            pairs = translate_reflect(pairs, dy, dx)
        if any(o in self.ops for o in ("brightness", "contrast", "saturation")):
            pairs = self.on_image(pairs, lambda image: self._colour(image, chosen))
        if "cutout" in self.ops:
            mask = cutout_mask(n, h, w, dev)
            keep = chosen()[:, None, None, None]
            pairs = pairs * torch.where(keep, mask, torch.ones_like(mask)).to(pairs.dtype)
        return pairs

    def _colour(self, image: Tensor, chosen: Any) -> Tensor:
        n, dev = image.shape[0], image.device

        def draw(std: float, neutral: float, log2: bool) -> Tensor:
            v = torch.randn(n, device=dev) * std
            v = torch.exp2(v) if log2 else v
            v = torch.where(chosen(), v, torch.full_like(v, neutral))
            return v[:, None, None, None].to(image.dtype)

        if "brightness" in self.ops:
            image = image + draw(0.2, 0.0, log2=False)
        if "contrast" in self.ops:
            image = image * draw(0.5, 1.0, log2=True)
        if "saturation" in self.ops and image.shape[1] > 1:
            mean = image.mean(dim=1, keepdim=True)
            image = mean + (image - mean) * draw(1.0, 1.0, log2=True)
        return image

    # -- the heuristic --------------------------------------------------------------------
    def after_d_step(self, view: DView) -> None:
        logits = torch.cat([b.detach().float().flatten() for b in branch_logits(view.real_out)])
        counts = torch.tensor(
            [logits.numel(), view.real_pairs.shape[0]], dtype=torch.float32, device=logits.device
        )
        now = torch.cat([logits.sign().sum()[None], counts])
        self.stats = self.stats.to(logits.device) + now
        self.updates += 1
        if self.updates % self.interval == 0:
            self.adjust(self.stats)
            self.stats = torch.zeros_like(self.stats)

    def adjust(self, stats: Tensor) -> None:
        """One update of ``p`` from an interval's ``[sum of signs, logits, real pairs]``
        (summed over the ranks of a distributed run first)."""
        if dist.is_available() and dist.is_initialized():
            stats = stats.clone()
            dist.all_reduce(stats)
        r_t = stats[0] / stats[1]
        step = torch.sign(r_t - self.target) * stats[2] / (self.kimg * 1000)
        self.p = (self.p.to(stats.device) + step).clamp_min(0)

    def diagnostics(self) -> dict[str, Tensor]:
        return {records.ADA_P: self.p.detach().clone()}

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.cpu(), "stats": self.stats.cpu(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = state["p"].clone().float()
        self.stats = state["stats"].clone().float()
        self.updates = int(state["updates"])

    def describe(self) -> str:
        return (
            f"ada: {','.join(self.ops)} with adaptive p (now {float(self.p):.3f}), target "
            f"{self.target}, updated every {self.interval} D updates by at most 1 per "
            f"{self.kimg:g}k real pairs"
        )

    def __repr__(self) -> str:
        return f"ADA(target={self.target}, interval={self.interval}, kimg={self.kimg})"
