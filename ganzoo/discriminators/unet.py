"""The U-Net discriminator of U-Net GAN (Schönfeld, Schiele & Khoreva, CVPR 2020).

A BigGAN residual encoder gives a per-image decision, a residual decoder with skip connections
gives a per-pixel one. Widths at ``depth`` 5 (the authors' 128x128 configuration; depth 6 is
their 256x256 one, with ``8 ndf`` repeated before the bottleneck)::

    encoder  down(in -> 1) down(1 -> 2) down(2 -> 4) down(4 -> 8) down(8 -> 16)   x ndf
             H/2 ... H/32; then ReLU, sum over the pixels, linear(16 ndf -> 1): (N, 1, 1, 1)
    decoder  up(16 -> 8) up(8+8 -> 4) up(4+4 -> 2) up(2+2 -> 1) up(1+1 -> 1)        x ndf
             H/16 ... H, each up block after the first taking the encoder's output of its
             resolution concatenated; then a 1x1 conv (no spectral norm): (N, 1, H, W)

Encoder widths are ``min(2^k, 8) ndf`` then ``16 ndf`` at the bottleneck; each decoder block
outputs the width of the encoder block one level up, the last ``ndf``. A down block is
BigGAN's ``DBlock`` (wide): ``[ReLU] conv3x3 -> ReLU -> conv3x3 -> avgpool 2`` plus a 1x1
shortcut (pooled first in the first block, which has no leading ReLU); an up block is the
authors' ``GBlock2``: ``ReLU -> nearest x2 -> conv3x3 -> ReLU -> conv3x3`` plus the upsampled
input through a 1x1 conv. Every conv has a bias; no norm layers; spectral norm on every conv
and linear except the final 1x1 conv; orthogonal init, biases kept at PyTorch's default.

Conditional here: the condition is concatenated to the image (``in_channels`` counts both),
as for PatchGAN. The two decisions are two branches, ``[encoder, decoder]``, summed by the
losses (``branch_reduction = "sum"``): D minimises ``d_scale * (L_enc + L_dec)``, G
``L_enc + L_dec`` (the authors' code halves G's sum; see docs/faithfulness.md).
``cutmix: true`` adds the CutMix augmentation and consistency losses
(:mod:`ganzoo.discriminators.cutmix`) as a step term.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ganzoo.discriminators.cutmix import CutMixMode, CutMixTerm
from ganzoo.errors import RegistryError
from ganzoo.losses.terms import Term
from ganzoo.nn import AttentionSlots, Width
from ganzoo.registry import Finish, register

#: The branch order of the output.
ENCODER, DECODER = 0, 1

Depth = Annotated[int, Field(ge=2, le=10)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Steps = Annotated[int, Field(ge=0)]
Weight = Annotated[float, Field(ge=0.0)]


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1)


class DownBlock(nn.Module):
    """BigGAN's wide ``DBlock``: ``(N, c_in, H, W) -> (N, c_out, H/2, W/2)``."""

    def __init__(self, c_in: int, c_out: int, preactivation: bool) -> None:
        super().__init__()
        self.preactivation = preactivation
        self.conv1, self.conv2 = conv3(c_in, c_out), conv3(c_out, c_out)
        self.conv_sc = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        if self.preactivation:
            return h + F.avg_pool2d(self.conv_sc(x), 2)
        return h + self.conv_sc(F.avg_pool2d(x, 2))


class UpBlock(nn.Module):
    """The authors' ``GBlock2``: ``(N, c_in, H, W) -> (N, c_out, 2H, 2W)``, no norm."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv3(c_in, c_out), conv3(c_out, c_out)
        self.conv_sc = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(x), scale_factor=2, mode="nearest")
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv2(F.relu(self.conv1(h))) + self.conv_sc(x)


def encoder_widths(ndf: int, depth: int) -> list[int]:
    """Output widths of the down blocks: ``min(2^k, 8) ndf``, the bottleneck ``16 ndf``."""
    return [min(2**k, 8) * ndf for k in range(depth - 1)] + [16 * ndf]


@register(
    "discriminator",
    "unet",
    paper="Schönfeld, Schiele & Khoreva, A U-Net Based Discriminator for Generative "
    "Adversarial Networks, CVPR 2020 (arXiv:2002.12655)",
    finish=Finish(spectral_norm=True, init="orthogonal", init_gain=1.0, zero_bias=False),
)
class UNetDiscriminator(nn.Module):
    """U-Net GAN discriminator: a per-image (encoder) and a per-pixel (decoder) decision.

    BigGAN residual blocks, widths ``ndf x [1, 2, 4, 8, 16]`` down and ``[8, 4, 2, 1, 1]`` up
    at ``depth`` 5 (the authors' 128x128 D: 31,481,602 parameters at ``ndf`` 64 on RGB), skip
    connections, no norm layers. The branches' losses are summed: D minimises ``d_scale *
    (L_enc + L_dec)``, G ``L_enc + L_dec``.
    ``forward(x)``: ``x`` is ``(N, in_channels, H, W)``, sides multiples of ``2^depth``;
    returns ``[[e_1, ..., e_depth, (N, 1, 1, 1) logits], [d_1, ..., d_depth, (N, 1, H, W)
    logits]]``, the features being each residual block's output. Attention: after the encoder
    blocks (resolutions ``H/2 .. H/2^depth``; the authors' ``D_attn``). ``cutmix``: the CutMix
    term (``cutmix_mode`` ``replace``: the paper's schedule, a CutMix round with probability
    ``cutmix_prob`` reached linearly over ``cutmix_warmup`` steps; ``add``: every update).
    """

    #: L_enc + L_dec, as the paper's losses.
    branch_reduction = "sum"

    def __init__(
        self,
        in_channels: int,
        ndf: Width = 64,
        depth: Depth = 5,
        attention: AttentionSlots | None = None,
        cutmix: bool = False,
        cutmix_mode: CutMixMode = "replace",
        cutmix_prob: Probability = 0.5,
        cutmix_warmup: Steps = 0,
        cutmix_consistency: Weight = 1.0,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise RegistryError(f"depth must be at least 2, got {depth}")
        slots = attention or AttentionSlots()
        widths = encoder_widths(ndf, depth)
        blocks: list[nn.ModuleList] = []
        c_in = in_channels
        for k, c_out in enumerate(widths):
            layers: list[nn.Module] = [DownBlock(c_in, c_out, preactivation=k > 0)]
            block = slots.at(2 ** (k + 1), c_out)
            if block is not None:
                layers.append(block)
            blocks.append(nn.ModuleList(layers))
            c_in = c_out
        slots.finish(f"unet with depth={depth}")
        ups = [*widths[-2::-1], ndf]  # each level's width, the last ndf
        for j, c_out in enumerate(ups):
            skip = widths[depth - 1 - j] if j else 0
            blocks.append(nn.ModuleList([UpBlock(c_in + skip, c_out)]))
            c_in = c_out
        self.blocks = nn.ModuleList([*blocks, nn.Conv2d(ndf, 1, 1)])
        self.linear_middle = nn.Linear(widths[-1], 1)
        self.depth = depth
        self.size_divisor = self.min_side = 2**depth
        self.cutmix = dict(
            enabled=cutmix,
            mode=cutmix_mode,
            prob=cutmix_prob,
            warmup=cutmix_warmup,
            consistency=cutmix_consistency,
        )

    def spectral_norm_modules(self, mode: bool | str) -> list[nn.Module]:
        """Every block and the encoder's linear; not the final 1x1 conv (as the authors)."""
        return [*self.blocks[:-1], self.linear_middle]

    def terms(self, recipe: object) -> list[Term]:
        """The CutMix term when ``cutmix`` is on (seeded from the recipe's seed)."""
        c = self.cutmix
        if not c["enabled"]:
            return []
        return [
            CutMixTerm(
                mode=c["mode"],
                prob=c["prob"],
                warmup=c["warmup"],
                consistency=c["consistency"],
                encoder=ENCODER,
                decoder=DECODER,
                reduction=self.branch_reduction,
                seed=int(getattr(recipe, "seed", 0)),
            )
        ]

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        depth = self.depth
        encoder: list[torch.Tensor] = []
        h = x
        for layers in self.blocks[:depth]:
            for layer in layers:
                h = layer(h)
            encoder.append(h)
        pooled = F.relu(h).sum(dim=(2, 3))
        global_logit = self.linear_middle(pooled).view(-1, 1, 1, 1)
        decoder: list[torch.Tensor] = []
        for j, layers in enumerate(self.blocks[depth:-1]):
            if j:
                h = torch.cat([h, encoder[depth - 1 - j]], 1)
            for layer in layers:
                h = layer(h)
            decoder.append(h)
        pixel_logits = self.blocks[-1](h)
        return [[*encoder, global_logit], [*decoder, pixel_logits]]
