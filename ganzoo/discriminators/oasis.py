"""The OASIS discriminator (Sushko, Schönfeld et al., "You Only Need Adversarial Supervision for
Semantic Image Synthesis", ICLR 2021): a U-Net of residual blocks that segments the image into
the label map's K classes plus one "fake" class, at full resolution.

As boschresearch/OASIS ``models/discriminator.py`` (``OASIS_Discriminator``,
``residual_block_D``), with ``num_res_blocks`` 6 and widths ``[128, 128, 256, 256, 512, 512]``
(``ndf`` 64 here: ``[2, 2, 4, 4, 8, 8] * ndf``)::

    encoder  6 x down block: 3 -> 128 -> 128 -> 256 -> 256 -> 512 -> 512   256 .. 4 pixels
    decoder  up block 512 -> 512, then up blocks over cat(skip, x):
             1024 -> 256, 512 -> 256, 512 -> 128, 256 -> 128, 256 -> 64      8 .. 256 pixels
    conv 1x1 64 -> K + 1 logits (no spectral norm)                          256 x 256

A down block is ``[LeakyReLU] -> conv3x3 -> LeakyReLU -> conv3x3 -> AvgPool2d(2)`` plus a
shortcut ``conv1x1 -> AvgPool2d(2)`` (the first block: no leading LeakyReLU, and its shortcut
pools before the 1x1 conv); an up block is ``LeakyReLU -> Upsample(2, nearest) -> conv3x3 ->
LeakyReLU -> conv3x3`` plus ``Upsample -> conv1x1``; the 1x1 shortcut only where the width
changes, every conv biased, LeakyReLU 0.2, spectral norm on every conv but the last, Xavier
normal init with gain 0.02 and zero biases (``models.py`` ``init_networks``). State-dict keys
follow the source (``body_down.{i}.conv1.0``, ``body_up.{i}.conv1.2``, ``layer_up_last``).

OASIS' D sees the image only (its condition enters through the loss): here D's input is the
pair ``(condition, image)`` as for every ganzoo discriminator, and it keeps the last
``image_channels`` channels. Its loss (:class:`ganzoo.losses.oasis.OasisLoss`, class-balanced
N + 1 cross-entropy and LabelMix) replaces the recipe's objective and needs ``data.labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from ganzoo.discriminators.layers import LEAK
from ganzoo.errors import RecipeError, RegistryError
from ganzoo.losses.oasis import OasisLoss
from ganzoo.losses.terms import Term
from ganzoo.nn import Count, Width
from ganzoo.registry import Finish, register

OASIS = (
    "Sushko, Schönfeld et al., You Only Need Adversarial Supervision for Semantic Image "
    "Synthesis, ICLR 2021"
)
#: A class id of a label map (``data.labels`` ids are below 65,536: 8- or 16-bit maps).
ClassId = Annotated[int, Field(ge=0, le=65_535)]
#: Encoder widths in units of ``ndf`` (OASIS' ``channels[1:]`` = 128, 128, 256, 256, 512, 512).
WIDTHS = (2, 2, 4, 4, 8, 8)


class ResidualBlockD(nn.Module):
    """OASIS' ``residual_block_D``: ``direction`` -1 halves the side (average pooling), +1
    doubles it (nearest upsampling). ``first``: the encoder's first block (no activation
    before its first conv; its shortcut pools, then convolves)."""

    def __init__(self, fin: int, fout: int, direction: int, first: bool = False) -> None:
        super().__init__()
        self.direction, self.first = direction, first
        conv = nn.Conv2d(fin, fout, 3, 1, 1)
        if first:
            self.conv1 = nn.Sequential(conv)
        elif direction > 0:
            self.conv1 = nn.Sequential(nn.LeakyReLU(LEAK), nn.Upsample(scale_factor=2), conv)
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(LEAK), conv)
        self.conv2 = nn.Sequential(nn.LeakyReLU(LEAK), nn.Conv2d(fout, fout, 3, 1, 1))
        self.conv_s = nn.Conv2d(fin, fout, 1, 1, 0) if fin != fout else None
        self.sampling = nn.Upsample(scale_factor=2) if direction > 0 else nn.AvgPool2d(2)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.direction > 0 or self.first:
            x = self.sampling(x)
        if self.conv_s is not None:
            x = self.conv_s(x)
        if self.direction < 0 and not self.first:
            x = self.sampling(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv2(self.conv1(x))
        if self.direction < 0:
            dx = self.sampling(dx)
        return self.shortcut(x) + dx


@register(
    "discriminator",
    "oasis",
    paper=f"{OASIS} (OASIS_Discriminator)",
    finish=Finish(
        spectral_norm=True,
        init="xavier",
        init_gain=0.02,
        zero_bias=True,
        spectral_modes=("hidden",),
    ),
)
class OASISDiscriminator(nn.Module):
    """OASIS segmentation D: per-pixel logits over the K label classes + "fake", one branch.

    Needs ``data.labels``; its loss (class-balanced N + 1 cross-entropy and LabelMix) replaces
    ``loss.objective``.

    ``forward(x)``: ``x`` ``(N, in_channels, H, W)``, the condition then the image; D reads the
    last ``image_channels`` only (OASIS' D sees the image). Returns ``[[e_1..e_n, d_1..d_n,
    logits]]``: the encoder and decoder blocks' outputs, then ``(N, K + 1, H, W)`` logits
    (``K = label_channels``, default ``in_channels - image_channels``; ``logit_channels``
    holds ``K + 1``). Sides must be multiples of ``2^n_blocks``. ``labelmix``: LabelMix's
    weight (0: off); ``class_balance``: class-balanced cross-entropy; ``dontcare_class``: a
    class of weight 0 (OASIS' ``contain_dontcare_label``: ADE20K's unknown class 0); a
    ``data.labels.dontcare_channel`` weighs 0 too.
    """

    def __init__(
        self,
        in_channels: int,
        image_channels: Width = 3,
        label_channels: Width | None = None,
        ndf: Width = 64,
        n_blocks: Count = 6,
        labelmix: float = 10.0,
        class_balance: bool = True,
        dontcare_class: ClassId | None = None,
    ) -> None:
        super().__init__()
        if not 2 <= n_blocks <= len(WIDTHS):
            raise RegistryError(f"n_blocks must be 2..{len(WIDTHS)} (OASIS: 6), got {n_blocks}")
        if label_channels is None:
            label_channels = in_channels - image_channels
        if label_channels < 1:
            raise RegistryError(
                f"oasis: {in_channels} input channels leave no label-map channels before the "
                f"{image_channels} image channels; set discriminator.image_channels"
            )
        if not labelmix >= 0 or labelmix == float("inf"):
            raise RegistryError(f"labelmix must be a finite weight >= 0, got {labelmix}")
        self.image_channels, self.label_channels = image_channels, label_channels
        self.logit_channels = label_channels + 1
        self.labelmix, self.class_balance = labelmix, class_balance
        self.dontcare_class = dontcare_class
        widths = [image_channels] + [w * ndf for w in WIDTHS[:n_blocks]]
        self.body_down = nn.ModuleList(
            ResidualBlockD(widths[i], widths[i + 1], -1, first=i == 0) for i in range(n_blocks)
        )
        up = [ResidualBlockD(widths[-1], widths[-2], 1)]
        up += [
            ResidualBlockD(2 * widths[-1 - i], widths[-2 - i], 1) for i in range(1, n_blocks - 1)
        ]
        up.append(ResidualBlockD(2 * widths[1], ndf, 1))
        self.body_up = nn.ModuleList(up)
        self.layer_up_last = nn.Conv2d(ndf, self.logit_channels, 1, 1, 0)
        self.size_divisor = self.min_side = 2**n_blocks

    def spectral_norm_modules(self, mode: bool | str) -> Sequence[nn.Module]:
        """The residual blocks' convs, not the 1x1 logits conv (as OASIS), for ``True`` and
        ``hidden`` alike (so a SPADE recipe's ``spectral_norm: hidden`` carries over)."""
        return [self.body_down, self.body_up]

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        x = x[:, -self.image_channels :]
        encoder = []
        for block in self.body_down:
            x = block(x)
            encoder.append(x)
        decoder = [self.body_up[0](x)]
        for i in range(1, len(self.body_down)):
            decoder.append(self.body_up[i](torch.cat((encoder[-i - 1], decoder[-1]), 1)))
        return [[*encoder, *decoder, self.layer_up_last(decoder[-1])]]

    def terms(self, recipe: object) -> list[Term]:
        """The OASIS loss (:class:`OasisLoss`), checked against the recipe's label map."""
        data, optim = recipe.data, recipe.optim  # type: ignore[attr-defined]
        labels = data.labels
        dontcare = [] if self.dontcare_class is None else [self.dontcare_class]
        if labels is not None:
            k = labels.num_classes + int(labels.dontcare_channel)
            if self.label_channels != k or self.image_channels != data.out_channels:
                raise RecipeError(
                    f"discriminator oasis reads {self.label_channels} label and "
                    f"{self.image_channels} image channels but the recipe's label map has {k} "
                    f"(num_classes + dontcare_channel) and its images {data.out_channels}; set "
                    f"discriminator.label_channels: {k} and image_channels: {data.out_channels}"
                )
            if self.dontcare_class is not None and self.dontcare_class >= k:
                raise RecipeError(
                    f"discriminator.dontcare_class {self.dontcare_class} is not a class of the "
                    f"{k}-channel label map; use 0..{k - 1} or null"
                )
            if labels.dontcare_channel:
                dontcare.append(k - 1)
        if self.labelmix > 0 and optim.pool_size > 0:
            raise RecipeError(
                "discriminator oasis: LabelMix mixes a real and a generated image of the same "
                "label map, which a pooled fake is not; set optim.pool_size: 0 or "
                "discriminator.labelmix: 0"
            )
        return [OasisLoss(self.labelmix, self.class_balance, dontcare)]
