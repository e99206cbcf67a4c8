"""The ResNet generator of pix2pix / CycleGAN (Johnson et al. 2016 style), as the reference code.

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``ResnetGenerator`` and ``ResnetBlock``:

    ReflectionPad(3) -> Conv 7x7 (ngf) -> norm -> ReLU
    2 x [Conv 3x3/2 (channels x2) -> norm -> ReLU]
    n_blocks x ResnetBlock(ngf*4)
    2 x [ConvTranspose 3x3/2, padding 1, output_padding 1 (channels /2) -> norm -> ReLU]
    ReflectionPad(3) -> Conv 7x7 (out_channels, with bias) -> tanh

The module tree (``model.N``, ``model.N.conv_block.M``) and so the state-dict keys are the
reference's. :class:`ResnetStack` also builds pix2pixHD's GlobalGenerator, which has the same
layout with more downsamplings and a bias on every conv. One difference: with ``norm: none``
the convs get a bias (:func:`ganzoo.nn.conv_bias`; the reference leaves it out).
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.generators.common import (
    AttentionPath,
    LayerSequence,
    Site,
    place_attention,
    register_variant,
    with_attention,
)
from ganzoo.nn import AttentionSlots, Count, NormName, Width, conv_bias, norm_layer
from ganzoo.registry import Finish, register

PAPER = (
    "Johnson et al., Perceptual Losses for Real-Time Style Transfer, ECCV 2016; as used by "
    "Isola et al. 2017 and Zhu et al. 2017, layers of junyanz/pytorch-CycleGAN-and-pix2pix "
    "ResnetGenerator"
)


class ResnetBlock(nn.Module):
    """``x + F(x)``, F = [pad, conv 3x3, norm, ReLU, (dropout 0.5), pad, conv 3x3, norm].

    (N, dim, H, W) -> (N, dim, H, W), reflection padding.
    """

    def __init__(self, dim: int, norm: NormName, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=bias),
            norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=bias),
            norm_layer(norm, dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetStack(nn.Module):
    """Encoder, residual trunk, decoder: the layout shared by the pix2pix ResNet generator and
    pix2pixHD's GlobalGenerator. (N, C, H, W) -> (N, C', H, W) in [-1, 1].

    ``bias``: the bias of the convs that feed a norm layer (the last conv always has one).
    Attention sites: the encoder's stem (H) and downsamplings (H/2 .. H/2**n_down); the
    decoder's residual-trunk output (H/2**n_down) and upsamplings (.. H/2, H); at a resolution
    both produce the block goes on ``attention_path``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        name: str,
        ngf: int,
        n_downsampling: int,
        n_blocks: int,
        norm: NormName,
        dropout: bool,
        bias: bool,
        attention_path: AttentionPath,
        attention: AttentionSlots | None,
    ) -> None:
        super().__init__()
        n = n_downsampling
        sites = [Site("encoder", 2**i, ngf * 2**i) for i in range(n + 1)]
        sites += [Site("decoder", 2 ** (n - i), ngf * 2 ** (n - i)) for i in range(n + 1)]
        placed = place_attention(attention, sites, attention_path, name)
        encoder, decoder = placed[: n + 1], placed[n + 1 :]

        def conv_norm_relu(conv: nn.Module, channels: int) -> list[nn.Module]:
            return [conv, norm_layer(norm, channels), nn.ReLU(True)]

        stem = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias)]
        layers = with_attention(stem + [norm_layer(norm, ngf), nn.ReLU(True)], encoder[0])
        for i in range(n):
            c = ngf * 2**i
            down = nn.Conv2d(c, c * 2, kernel_size=3, stride=2, padding=1, bias=bias)
            layers += with_attention(conv_norm_relu(down, c * 2), encoder[i + 1])
        trunk = [ResnetBlock(ngf * 2**n, norm, dropout, bias) for _ in range(n_blocks)]
        layers += with_attention(trunk, decoder[0])
        for i in range(n):
            c = ngf * 2 ** (n - i)
            up = nn.ConvTranspose2d(
                c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
            )
            layers += with_attention(conv_norm_relu(up, c // 2), decoder[i + 1])
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7), nn.Tanh()]
        self.model = LayerSequence(*layers)
        # reflection padding needs sides > pad: 3 at the input, 1 in the trunk (H/2**n >= 2)
        self.size_divisor = 2**n
        self.min_side = max(4, 2 ** (n + 1) if n_blocks else 2**n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        return self.model(x, x)


@register("generator", "resnet", paper=PAPER, finish=Finish())
class ResnetGenerator(ResnetStack):
    """pix2pix/CycleGAN ResNet generator: 2 stride-2 downsamplings, n_blocks residual blocks.

    (N, C, H, W) -> (N, C', H, W) in [-1, 1]; sides must be multiples of 4 and at least 8.
    Convs feeding a norm
    carry a bias only for instance/none norm. Attention sites: see :class:`ResnetStack`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_blocks: Count = 9,
        ngf: Width = 64,
        norm: NormName = "batch",
        dropout: bool = False,
        attention_path: AttentionPath = "decoder",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            name=f"resnet with {n_blocks} blocks",
            ngf=ngf,
            n_downsampling=2,
            n_blocks=n_blocks,
            norm=norm,
            dropout=dropout,
            bias=conv_bias(norm),
            attention_path=attention_path,
            attention=attention,
        )


RESNET_6 = "pix2pix/CycleGAN ResNet generator with 6 residual blocks (for 128x128 images)."
RESNET_9 = "pix2pix/CycleGAN ResNet generator with 9 residual blocks (for 256x256 images)."
resnet_6blocks = register_variant(
    ResnetGenerator, "resnet_6blocks", RESNET_6, paper=PAPER, n_blocks=6
)
resnet_9blocks = register_variant(
    ResnetGenerator, "resnet_9blocks", RESNET_9, paper=PAPER, n_blocks=9
)
