"""The pix2pix U-Net generator (Isola et al. 2017), layer for layer as the reference code.

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``UnetGenerator`` and
``UnetSkipConnectionBlock``. The module tree, and so the state-dict keys, are the reference's
(``model.model.1.model.1.weight`` ...), so its released checkpoints load when no attention is
inserted. Level ``l`` (1 = outermost) halves the side ``l`` times on the way down:

    down: [LeakyReLU(0.2)] -> Conv 4x4/2 -> [norm]             (outermost: no activation, no norm;
    up:   ReLU -> ConvTranspose 4x4/2 -> norm [-> Dropout(0.5)]  innermost: no down norm)
    outermost up: ReLU -> ConvTranspose 4x4/2 (with bias) -> tanh

with ``ngf * min(2**(l-1), 8)`` channels at level ``l``, a skip connection concatenating each
level's input to its up path's output, and dropout on the ngf*8 levels between level 4 and the
innermost. As in the reference, the down path's LeakyReLU is in place, so the skip carries the
activated features. ``num_downs`` >= 5 is the reference exactly; smaller values (handy for
tiny test images) keep the same width rule, where the reference would still build 5 levels.
Differences: with ``norm: none`` the convs get a bias (the reference leaves it out), and
``conv_bias`` treats ``syncbatch`` like ``batch``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.errors import RegistryError
from ganzoo.generators.common import (
    Attend,
    AttentionPath,
    Conditioned,
    LayerSequence,
    Site,
    place_attention,
    register_variant,
    with_attention,
)
from ganzoo.nn import AttentionSlots, Count, NormName, Width, conv_bias, norm_layer
from ganzoo.registry import Finish, register

PAPER = (
    "Isola et al., Image-to-Image Translation with Conditional Adversarial Networks, CVPR 2017 "
    "(arXiv:1611.07004); layers of junyanz/pytorch-CycleGAN-and-pix2pix UnetGenerator"
)


class UnetSkipBlock(Conditioned):
    """One U-Net level: ``cat([x, up(sub(down(x)))])``, (N, C, H, W) -> (N, C + outer, H, W).

    The outermost level returns ``up(sub(down(x)))`` alone, (N, out_channels, H, W) in [-1, 1].
    ``enc_attention`` goes after the down path, ``dec_attention`` after the up path.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        *,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: NormName = "batch",
        dropout: bool = False,
        enc_attention: Attend | None = None,
        dec_attention: Attend | None = None,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        downconv = nn.Conv2d(
            input_nc or outer_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias
        )
        if outermost:
            down = [downconv]
            up_in, up_bias = inner_nc * 2, True
        elif innermost:
            down = [nn.LeakyReLU(0.2, True), downconv]
            up_in, up_bias = inner_nc, bias
        else:
            down = [nn.LeakyReLU(0.2, True), downconv, norm_layer(norm, inner_nc)]
            up_in, up_bias = inner_nc * 2, bias
        upconv = nn.ConvTranspose2d(
            up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=up_bias
        )
        if outermost:
            up = [nn.ReLU(True), upconv, nn.Tanh()]
        else:
            up = [nn.ReLU(True), upconv, norm_layer(norm, outer_nc)]
            if dropout:
                up.append(nn.Dropout(0.5))
        middle = [] if submodule is None else [submodule]
        self.model = LayerSequence(
            *with_attention(down, enc_attention), *middle, *with_attention(up, dec_attention)
        )

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.outermost:
            return self.model(x, condition)
        # the in-place LeakyReLU of self.model has activated x by the time cat reads it
        return torch.cat([x, self.model(x, condition)], 1)


@register("generator", "unet", paper=PAPER, finish=Finish())
class UnetGenerator(nn.Module):
    """pix2pix U-Net with num_downs 4x4 stride-2 levels; (N, C, H, W) -> (N, C', H, W) in [-1, 1].

    Sides must be multiples of ``2**num_downs``. Attention: encoder sites are the down path of
    each level (``H/2 .. H/2**num_downs``), decoder sites the up path of levels 2..num_downs
    (``H/2**(num_downs-1) .. H/2``); at a resolution both produce the block goes on
    ``attention_path``, so the bottleneck ``H/2**num_downs`` is always on the encoder.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: Count = 8,
        ngf: Width = 64,
        norm: NormName = "batch",
        dropout: bool = True,
        attention_path: AttentionPath = "decoder",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise RegistryError(f"unet: num_downs must be at least 2, got {num_downs}")
        width = [0] + [ngf * min(2 ** (level - 1), 8) for level in range(1, num_downs + 1)]
        sites = [Site("encoder", 2**level, width[level]) for level in range(1, num_downs + 1)]
        sites += [
            Site("decoder", 2 ** (level - 1), width[level - 1]) for level in range(2, num_downs + 1)
        ]
        placed = place_attention(
            attention, sites, attention_path, f"unet with num_downs={num_downs}"
        )
        enc = dict(zip(range(1, num_downs + 1), placed[:num_downs], strict=True))
        dec = dict(zip(range(2, num_downs + 1), placed[num_downs:], strict=True))

        block: nn.Module | None = None
        for level in range(num_downs, 1, -1):  # innermost first, as the reference nests them
            block = UnetSkipBlock(
                width[level - 1],
                width[level],
                submodule=block,
                innermost=level == num_downs,
                norm=norm,
                dropout=dropout and 4 < level < num_downs,
                enc_attention=enc[level],
                dec_attention=dec[level],
            )
        self.model = UnetSkipBlock(
            out_channels,
            width[1],
            input_nc=in_channels,
            submodule=block,
            outermost=True,
            norm=norm,
            enc_attention=enc[1],
        )
        self.size_divisor = self.min_side = 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        return self.model(x, x)


UNET_128 = "pix2pix U-Net for 128x128 images: 7 downsamplings to a 1x1 bottleneck."
UNET_256 = "pix2pix U-Net for 256x256 images: 8 downsamplings to a 1x1 bottleneck (the default)."
unet_128 = register_variant(UnetGenerator, "unet_128", UNET_128, paper=PAPER, num_downs=7)
unet_256 = register_variant(UnetGenerator, "unet_256", UNET_256, paper=PAPER, num_downs=8)
