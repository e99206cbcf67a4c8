"""A small residual generator, registered in ganzoo through the ``ganzoo.generators`` group.

It declares its architecture only: ganzoo's builder initialises its weights, applies spectral
norm and hands it the attention blocks a recipe asks for (``init``, ``init_gain``,
``spectral_norm``, ``attention`` and ``image_size`` are recipe keys it never sees).
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.nn import AttentionSlots, NormName, conv_bias, norm_layer


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: NormName) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SmallResnetGenerator(nn.Module):
    """Small residual generator: two stride-2 downsamplings, n_blocks residual blocks, tanh.

    (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]; H and W must be
    multiples of 4. Attention: after the residual blocks (resolution H/4).
    """

    size_divisor = 4
    min_side = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 32,
        n_blocks: int = 3,
        norm: NormName = "instance",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        slots = attention or AttentionSlots()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode="reflect", bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
            nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1, bias=bias),
            norm_layer(norm, 2 * ngf),
            nn.ReLU(True),
            nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1, bias=bias),
            norm_layer(norm, 4 * ngf),
            nn.ReLU(True),
        ]
        layers += [_Residual(4 * ngf, norm) for _ in range(n_blocks)]
        block = slots.at(4, 4 * ngf)  # None unless a recipe asks for attention at H/4
        slots.finish("example_resnet_small")
        layers += [] if block is None else [block]
        layers += [
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, 2 * ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
            nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode="reflect"),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
