"""What the discriminator families share: 4x4 conv stages, a stack that returns every stage's
output (for feature matching), and the smallest input a stack takes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import nn

from ganzoo.nn import NormName, norm_layer
from ganzoo.nn.receptive_field import ConvGeometry, conv_chain, smallest_input_side

PaddingMode = Literal["zeros", "reflect"]

#: Negative slope of every LeakyReLU in the pix2pix-family discriminators.
LEAK = 0.2


def conv4(
    in_channels: int,
    out_channels: int,
    stride: int,
    *,
    bias: bool = True,
    padding: int = 1,
    padding_mode: PaddingMode = "zeros",
) -> nn.Conv2d:
    """The 4x4 conv of every PatchGAN-style discriminator."""
    return nn.Conv2d(
        in_channels, out_channels, 4, stride, padding, bias=bias, padding_mode=padding_mode
    )


def stage(
    conv: nn.Conv2d, norm: NormName | None, attention: nn.Module | None = None
) -> nn.Sequential:
    """``conv -> norm -> LeakyReLU(0.2) -> attention``; ``norm=None``: no norm layer (the first
    stage), ``attention=None``: no block (a block is called as ``block(x)``, condition None)."""
    layers = [conv]
    if norm is not None:
        layers.append(norm_layer(norm, conv.out_channels))
    layers.append(nn.LeakyReLU(LEAK))
    if attention is not None:
        layers.append(attention)
    return nn.Sequential(*layers)


class FeatureStack(nn.ModuleList):
    """Stages run in order; ``forward(x)`` returns the output of every stage, the last being the
    patch logits ``(N, 1, h, w)`` (no sigmoid)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        features = []
        for layer in self:
            x = layer(x)
            features.append(x)
        return features


def smallest_sides(chains: Iterable[Sequence[nn.Module]]) -> tuple[int, int]:
    """``(height, width)``: the smallest input sides for which every chain of modules (a
    branch, run in order) yields at least one logit, every map before it being at least 2
    pixels a side (instance norm needs more than one pixel)."""

    def smallest(chain: Sequence[nn.Module], axis: int) -> int:
        layers = conv_chain(chain, axis)
        hidden = [smallest_input_side([*layers[:i], ConvGeometry(2)]) for i in range(len(layers))]
        return max(smallest_input_side(layers), *hidden)

    chains = list(chains)
    return (
        max(smallest(chain, 0) for chain in chains),
        max(smallest(chain, 1) for chain in chains),
    )


def sides(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``image_size`` (an int or ``(height, width)``) as ``(height, width)``."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)
