"""The pix2pixHD multi-scale discriminator: ``num_d`` PatchGANs on an image pyramid.

As pix2pixHD's ``MultiscaleDiscriminator`` with ``getIntermFeat``: scale ``s`` sees the input
average-pooled ``s`` times by ``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``
(``H -> ceil(H / 2)``), and each scale is pix2pixHD's own ``NLayerDiscriminator``, which differs
from pix2pix's: 4x4 convs with padding 2, a bias on every conv, widths ``min(2^n * ndf, 512)``.
So at 256x256 with ``n_layers=3`` the logits are 35x35, 19x19 and 11x11 (pix2pix's padding-1
PatchGAN would give 30, 14 and 6).

The GAN losses of the scales are summed (``reduction="sum"``), as pix2pixHD's
``GANLoss.__call__`` adds every scale's loss; SPADE's ``GANLoss`` divides that sum by the number
of scales (``reduction="mean"``). Feature matching weighs each scale 1/num_d in both. Conv
biases keep PyTorch's default initialisation, as pix2pixHD's ``weights_init`` leaves them
(``zero_bias: true`` zeroes them, as SPADE's ``BaseNetwork.init_weights``).

SPADE's ``MultiscaleDiscriminator`` (``norm_D`` ``spectralinstance``) is this one with
``spectral_norm: hidden``, ``hidden_bias: false`` and ``zero_bias: true``: its
``get_nonspade_norm_layer`` wraps only the normalised convs in spectral norm and drops their
biases, its ``init_weights`` zeroes the others; its ``n_layers_D`` 4 is
``n_layers`` 3 here (it counts the stride-1 conv before the logits).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import torch
from torch import nn

from ganzoo.discriminators.layers import sides, smallest_sides
from ganzoo.discriminators.patchgan import patch_stack
from ganzoo.errors import RegistryError
from ganzoo.nn import AttentionSlots, Count, NormName, Width
from ganzoo.nn.receptive_field import ConvGeometry
from ganzoo.registry import Finish, register


@register(
    "discriminator",
    "multiscale",
    paper="Wang et al., High-Resolution Image Synthesis and Semantic Manipulation with "
    "Conditional GANs (pix2pixHD), CVPR 2018",
    finish=Finish(zero_bias=False, spectral_modes=("hidden",), options=("zero_bias",)),
)
class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale PatchGANs: num_d branches with features, full resolution first.

    ``forward(x)``: ``x`` is ``(N, in_channels, H, W)``; returns one list per scale,
    ``[f_1, ..., f_{n_layers+1}, logits]``. ``reduction``: how the scales' GAN losses combine
    (pix2pixHD: ``sum``; SPADE: ``mean``). ``spectral_norm``: every conv (True) or only the
    normalised ones (``hidden``, SPADE); ``hidden_bias``: biases on the normalised convs
    (pix2pixHD: true; SPADE: false); ``zero_bias``: conv biases start at 0 (SPADE's
    ``init_weights``) or keep PyTorch's default (pix2pixHD's ``weights_init``). Attention: a
    spec at resolution ``r`` goes into every scale that has a stride-2 stage producing
    ``r``-high maps (nominal heights ``ceil(H / 2^s) / 2^k``), and must fit at least one.
    """

    def __init__(
        self,
        in_channels: int,
        num_d: Count = 3,
        n_layers: Count = 3,
        ndf: Width = 64,
        norm: NormName = "instance",
        attention: AttentionSlots | None = None,
        image_size: int | tuple[int, int] = 256,
        reduction: Literal["sum", "mean"] = "sum",
        hidden_bias: bool = True,
    ) -> None:
        super().__init__()
        self.branch_reduction = reduction
        if num_d < 1:
            raise RegistryError(f"num_d must be at least 1, got {num_d}")
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        pool = ConvGeometry(3, 2, 1)
        height, width = sides(image_size)
        name = f"multiscale with num_d={num_d}, n_layers={n_layers}"
        whole = attention or AttentionSlots(image_size=image_size)
        scales, used, offered = [], set(), []
        for _ in range(num_d):
            slots = whole.at_size((height, width))
            scales.append(
                patch_stack(
                    in_channels,
                    ndf=ndf,
                    n_layers=n_layers,
                    norm=norm,
                    slots=slots,
                    style="pix2pixhd",
                    hidden_bias=hidden_bias,
                )
            )
            used |= slots.used
            offered += slots.offered
            height, width = pool.output_side(height), pool.output_side(width)
        self.scales = nn.ModuleList(scales)
        self.image_size = sides(image_size)
        whole.used, whole.offered = used, offered  # one error for specs no scale took
        whole.finish(name)
        chains = [[self.downsample] * s + list(stack) for s, stack in enumerate(scales)]
        self.size_divisor = 1
        self.min_side = max(smallest_sides(chains))

    def spectral_norm_modules(self, mode: bool | str) -> list[nn.Module]:
        """Everything (True), or the normalised hidden stages of every scale (``hidden``)."""
        if mode == "hidden":
            return [stage for stack in self.scales for stage in list(stack)[1:-1]]
        return [self]

    def weights_by_resolution(
        self, weights: dict[str, Any], image_size: tuple[int, int] | None
    ) -> dict[str, Any]:
        """``weights`` of another multi-scale D trained on ``image_size`` crops, each
        ``scales.{s}.`` renamed to the scale here that sees the same resolution; scales with no
        counterpart are dropped. With ``image_size`` unknown the scales pair from the coarsest
        end, as pix2pixHD's names ``scale{num_D-1-s}`` pair them in ``--load_pretrain``."""
        found = [re.match(r"scales\.(\d+)\.", k) for k in weights]
        theirs = 1 + max((int(m[1]) for m in found if m), default=-1)
        if not theirs:
            return weights
        ours = scale_sides(self.image_size, len(self.scales))
        if image_size is None:
            target = {s: s + len(ours) - theirs for s in range(theirs)}
        else:
            where = {hw: t for t, hw in enumerate(ours)}
            target = {s: where.get(hw, -1) for s, hw in enumerate(scale_sides(image_size, theirs))}
        out = {}
        for key, value in weights.items():
            m = re.match(r"scales\.(\d+)\.(.*)", key)
            if not m:
                out[key] = value
            elif target.get(int(m[1]), -1) >= 0:
                out[f"scales.{target[int(m[1])]}.{m[2]}"] = value
        return out

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for s, scale in enumerate(self.scales):
            if s:
                x = self.downsample(x)
            result.append(scale(x))
        return result


def scale_sides(image_size: tuple[int, int], num_d: int) -> list[tuple[int, int]]:
    """``(height, width)`` each of ``num_d`` scales sees for ``image_size`` inputs, full
    resolution first (each pooling: ``ceil(side / 2)``)."""
    pool = ConvGeometry(3, 2, 1)
    out = [tuple(image_size)]
    while len(out) < num_d:
        out.append(tuple(pool.output_side(side) for side in out[-1]))
    return out
