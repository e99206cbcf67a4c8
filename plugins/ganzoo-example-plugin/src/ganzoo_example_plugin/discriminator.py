"""A dilated patch discriminator, registered through the ``ganzoo.discriminators`` group.

No init code: ganzoo's builder initialises it and applies spectral norm when a recipe asks."""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.nn import NormName, conv_bias, norm_layer


class DilatedDiscriminator(nn.Module):
    """Patch discriminator with dilations 1, 2, 4 after one stride-2 conv: a wide receptive
    field at full resolution/2.

    (N, in_channels, H, W) -> ``[[feat_1, ..., logits (N, 1, H/2, W/2)]]`` (one branch).
    """

    size_divisor = 2
    min_side = 2

    def __init__(self, in_channels: int, ndf: int = 32, norm: NormName = "instance") -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.stages = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))]
        )
        for dilation in (1, 2, 4):
            self.stages.append(
                nn.Sequential(
                    nn.Conv2d(ndf, ndf, 3, padding=dilation, dilation=dilation, bias=bias),
                    norm_layer(norm, ndf),
                    nn.LeakyReLU(0.2, True),
                )
            )
        self.head = nn.Conv2d(ndf, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return [[*feats, self.head(x)]]
