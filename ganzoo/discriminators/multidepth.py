"""The shared-weight multi-depth discriminator of LinesToFacePhoto (CSAGAN).

One trunk of 4x4 stride-2 convs (``ndf`` without norm, ``2 ndf``, ``4 ndf``, each with
LeakyReLU 0.2) feeds heads of increasing depth, all ``8 ndf`` wide, every hidden conv followed
by norm and LeakyReLU; sizes at 256x256::

    trunk    conv s2 -> conv s2 -> conv s2                                  128, 64, 32
    head 1   conv s1 -> conv s1 (1)                           30x30 logits, 70x70 field
    head 2   conv s2 -> conv s1 -> conv s1 (1)                14x14 logits, 142x142 field
    head 3   conv s2 -> conv s2 -> conv s1 -> conv s1 (1)       6x6 logits, 286x286 field
    global   conv s2 until the map is 2 (or 3) high/wide, then one conv to a 1x1 logit

``branches`` picks the heads: 4 -> heads 1, 2, 3 and global (the authors' ``quadruple``),
3 -> 1, 2, global (``triple``), 2 -> 1, global (``double``). The global head is sized from
``image_size``: at 256x256 it has four stride-2 convs and a final 4x4 conv (padding 1) on the
2x2 map, as in the authors' code; in general the final conv's kernel is the map size + 2
(padding 1), so on non-square crops too its single logit sees the whole input.

The GAN losses of the branches are averaged (``branch_reduction = "mean"``), as both the
authors' ``main.py`` and ``test.py`` divide the summed branch losses by their number.

Followed from the authors' TensorFlow code (github.com/LiYuhangUSTC/Lines2Face, network.py):
widths, strides, depths, head order, and every branch's feature list starting with the shared
trunk's features. Their configuration is ``padding_mode: reflect``, ``hidden_bias: true`` and
``spectral_norm: true`` (34,265,284 parameters with 4 branches, ``ndf`` 64, batch norm);
the defaults differ: zero padding, hidden conv biases as pix2pix (only where the norm cannot
absorb one), spectral norm opt-in. Logits come without the sigmoid, and their batch norm
always normalises with the batch's statistics (ganzoo's uses running statistics in eval mode,
which a discriminator only meets outside training). Their ``double`` variant uses ``2 ndf``
widths throughout its heads; here every head is ``8 ndf`` as in ``triple`` and
``quadruple``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ganzoo.discriminators.layers import (
    FeatureStack,
    PaddingMode,
    conv4,
    sides,
    smallest_sides,
    stage,
)
from ganzoo.errors import RegistryError, SizeError
from ganzoo.nn import AttentionSlots, NormName, Width, conv_bias
from ganzoo.nn.receptive_field import ConvGeometry, conv_chain, output_side
from ganzoo.registry import Finish, register

#: Which heads each ``branches`` setting uses (1..3: patch heads by depth; 0: the global head).
HEADS = {2: (1, 0), 3: (1, 2, 0), 4: (1, 2, 3, 0)}


@register(
    "discriminator",
    "multidepth",
    paper="Li et al., LinesToFacePhoto: Face Photo Generation from Lines with Conditional "
    "Self-Attention GAN, ACM MM 2019 (multi-scale discriminator, shared weights)",
    finish=Finish(),
)
class MultiDepthDiscriminator(nn.Module):
    """Shared-trunk multi-depth discriminator (LinesToFacePhoto): 70/142/286 patches + global.

    ``forward(x)``: ``x`` is ``(N, in_channels, H, W)`` with ``H x W`` at least the sizes the
    global head was built for (``image_size``); returns one list per head, ``[trunk features
    (3), head features, logits]``. Attention: in the trunk (resolutions ``H/2, H/4, H/8``).
    ``hidden_bias``: a bias on every hidden conv (the authors' code), or only where the norm
    cannot absorb one (None, as pix2pix).
    """

    #: How the branches' GAN losses combine (Lines2Face averages them).
    branch_reduction = "mean"

    def __init__(
        self,
        in_channels: int,
        branches: Literal[2, 3, 4] = 4,
        ndf: Width = 64,
        norm: NormName = "batch",
        attention: AttentionSlots | None = None,
        image_size: int | tuple[int, int] = 256,
        padding_mode: PaddingMode = "zeros",
        hidden_bias: bool | None = None,
    ) -> None:
        super().__init__()
        if branches not in HEADS:
            raise RegistryError(f"branches must be 2, 3 or 4, got {branches}")
        bias = conv_bias(norm) if hidden_bias is None else hidden_bias
        wide = 8 * ndf

        def conv(c_in: int, c_out: int, stride: int, bias: bool = bias) -> nn.Conv2d:
            return conv4(c_in, c_out, stride, bias=bias, padding_mode=padding_mode)

        slots = attention or AttentionSlots(image_size=image_size)
        self.trunk = FeatureStack(
            [
                stage(conv(in_channels, ndf, 2, True), None, slots.at(2, ndf)),
                stage(conv(ndf, 2 * ndf, 2), norm, slots.at(4, 2 * ndf)),
                stage(conv(2 * ndf, 4 * ndf, 2), norm, slots.at(8, 4 * ndf)),
            ]
        )
        slots.finish(f"multidepth with branches={branches}")

        def head(strides: list[int], final: nn.Conv2d) -> FeatureStack:
            widths = [4 * ndf] + [wide] * len(strides)
            hidden = [stage(conv(widths[i], wide, s), norm) for i, s in enumerate(strides)]
            return FeatureStack([*hidden, final])

        height, width = sides(image_size)  # the global head halves the trunk's map to 2 or 3
        map_h = output_side(height, conv_chain(self.trunk, 0))
        map_w = output_side(width, conv_chain(self.trunk, 1))
        global_strides, down = [], ConvGeometry(4, 2, 1)
        while min(map_h, map_w) >= 4:
            global_strides.append(2)
            map_h, map_w = down.output_side(map_h), down.output_side(map_w)
        heads = []
        for depth in HEADS[branches]:
            if depth:
                heads.append(head([2] * (depth - 1) + [1], conv(wide, 1, 1, True)))
            else:
                c_in = wide if global_strides else 4 * ndf
                final = nn.Conv2d(
                    c_in, 1, (map_h + 2, map_w + 2), padding=1, padding_mode=padding_mode
                )
                heads.append(head(global_strides, final))
        self.heads = nn.ModuleList(heads)

        self.min_hw = smallest_sides([*self.trunk, *h] for h in self.heads)
        if height < self.min_hw[0] or width < self.min_hw[1]:
            raise SizeError(
                f"multidepth with branches={branches} needs image_size of at least "
                f"{self.min_hw[0]}x{self.min_hw[1]}, got {height}x{width}; use fewer branches "
                "or a larger data.crop_size"
            )
        self.image_size = (height, width)
        self.size_divisor = 1
        self.min_side = min(self.min_hw)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        height, width = x.shape[-2:]
        if height < self.min_hw[0] or width < self.min_hw[1]:
            raise SizeError(
                f"multidepth built for {self.image_size[0]}x{self.image_size[1]} inputs cannot "
                f"take {height}x{width} (at least {self.min_hw[0]}x{self.min_hw[1]}); set "
                "image_size to the crop size"
            )
        shared = self.trunk(x)
        return [[*shared, *head(shared[-1])] for head in self.heads]
