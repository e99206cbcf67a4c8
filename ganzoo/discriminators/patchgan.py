"""The pix2pix PatchGAN (``NLayerDiscriminator``) and PixelGAN (``PixelDiscriminator``).

PatchGAN with ``n_layers`` (all convs 4x4)::

    conv s2 (ndf, bias, no norm) -> LeakyReLU(0.2)                       128 x 128   (at 256)
    (n_layers - 1) x [conv s2 (min(2^n, 8) * ndf) -> norm -> LeakyReLU]   64, 32
    conv s1 (min(2^n_layers, 8) * ndf) -> norm -> LeakyReLU                31
    conv s1 (1, bias)                                                      30 x 30 logits

With ``n_layers=3``, 6 input channels, ``ndf=64`` and batch norm: 2,768,705 parameters and a
70x70 receptive field; ``n_layers`` 1..5 give fields of 16, 34, 70, 142, 286. Hidden convs carry
a bias only when the norm cannot absorb one (:func:`ganzoo.nn.conv_bias`), as in pix2pix.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ganzoo.discriminators.layers import FeatureStack, conv4, smallest_sides, stage
from ganzoo.errors import RegistryError
from ganzoo.nn import AttentionSlots, Count, NormName, Width, conv_bias
from ganzoo.registry import Finish, register

PIX2PIX = (
    "Isola et al., Image-to-Image Translation with Conditional Adversarial Networks, CVPR 2017"
)

#: ``pix2pix``: padding 1, widths ``min(2^n, 8) * ndf``, biases only where the norm needs one.
#: ``pix2pixhd``: padding 2, widths ``min(2^n * ndf, 512)``, a bias on every conv.
PatchStyle = Literal["pix2pix", "pix2pixhd"]


def patch_stack(
    in_channels: int,
    *,
    ndf: int,
    n_layers: int,
    norm: NormName,
    slots: AttentionSlots,
    style: PatchStyle = "pix2pix",
    hidden_bias: bool | None = None,
) -> FeatureStack:
    """The PatchGAN layers as ``n_layers + 2`` stages (the last: logits), attention offered
    after each stride-2 stage (feature height ``image / 2^k``; pix2pixhd's padding makes the
    actual map one pixel larger). ``hidden_bias`` None: the style's choice. Call
    ``slots.finish(name)`` after all stacks are built."""
    if n_layers < 1:
        raise RegistryError(
            f"n_layers must be at least 1, got {n_layers}; "
            "use discriminator 'pixel' for 1x1 patches"
        )
    hd = style == "pix2pixhd"
    padding = 2 if hd else 1
    if hidden_bias is None:
        hidden_bias = True if hd else conv_bias(norm)

    def width(n: int) -> int:
        return min(2**n * ndf, 512) if hd else min(2**n, 8) * ndf

    def conv(c_in: int, c_out: int, stride: int, bias: bool) -> nn.Conv2d:
        return conv4(c_in, c_out, stride, bias=bias, padding=padding)

    stages = [stage(conv(in_channels, ndf, 2, True), None, slots.at(2, ndf))]
    for n in range(1, n_layers):
        c_out = width(n)
        stages.append(
            stage(conv(width(n - 1), c_out, 2, hidden_bias), norm, slots.at(2 ** (n + 1), c_out))
        )
    stages.append(stage(conv(width(n_layers - 1), width(n_layers), 1, hidden_bias), norm))
    stages.append(conv(width(n_layers), 1, 1, True))
    return FeatureStack(stages)


@register("discriminator", "patchgan", paper=f"{PIX2PIX} (NLayerDiscriminator)", finish=Finish())
class PatchGAN(nn.Module):
    """pix2pix PatchGAN: n_layers=3 gives 30x30 logits of 70x70 patches at 256x256; one branch.

    ``forward(x)``: ``x`` is ``(N, in_channels, H, W)`` (condition and image concatenated);
    returns ``[[f_1, ..., f_{n_layers+1}, logits]]``, the features being each LeakyReLU stage's
    output. Attention: after the stride-2 stages (resolutions ``H/2 .. H/2^n_layers``).
    """

    def __init__(
        self,
        in_channels: int,
        n_layers: Count = 3,
        ndf: Width = 64,
        norm: NormName = "batch",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        slots = attention or AttentionSlots()
        self.model = patch_stack(in_channels, ndf=ndf, n_layers=n_layers, norm=norm, slots=slots)
        slots.finish(f"patchgan with n_layers={n_layers}")
        self.size_divisor = 1
        self.min_side = max(smallest_sides([self.model]))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [self.model(x)]


@register("discriminator", "pixel", paper=f"{PIX2PIX} (PixelDiscriminator)", finish=Finish())
class PixelDiscriminator(nn.Module):
    """pix2pix PixelGAN: 1x1 convs, one logit per pixel (H x W logits); one branch.

    ``conv 1x1 (ndf, bias) -> LeakyReLU -> conv 1x1 (2 ndf) -> norm -> LeakyReLU -> conv 1x1
    (1)``, the last two convs with a bias only when the norm cannot absorb one (the reference's
    ``bias=use_bias``): 9,024 parameters with 6 input channels, ``ndf=64`` and batch norm.
    ``forward(x)`` returns ``[[f_1, f_2, logits]]``. Attention: after the first stage
    (resolution ``H``; mind the ``(H*W)^2`` attention matrix).
    """

    def __init__(
        self,
        in_channels: int,
        ndf: Width = 64,
        norm: NormName = "batch",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        slots = attention or AttentionSlots()
        self.model = FeatureStack(
            [
                stage(nn.Conv2d(in_channels, ndf, 1), None, slots.at(1, ndf)),
                stage(nn.Conv2d(ndf, 2 * ndf, 1, bias=conv_bias(norm)), norm),
                nn.Conv2d(2 * ndf, 1, 1, bias=conv_bias(norm)),
            ]
        )
        slots.finish("pixel")
        self.size_divisor = 1
        self.min_side = max(smallest_sides([self.model]))  # 2: instance norm needs 2+ pixels

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [self.model(x)]
