"""The Projected GAN discriminator: small discriminators on the features of a frozen pretrained
EfficientNet-lite0, mixed by a frozen random projection.

As autonomousvision/projected-gan (``pg_modules/projector.py`` ``F_RandomProj``,
``pg_modules/discriminator.py`` ``MultiScaleD`` / ``ProjectedDiscriminator``, commits in
docs/faithfulness.md)::

    image [-1, 1] -> bilinear to 224 x 224 when the crop is smaller (``interp224``)
    frozen tf_efficientnet_lite0: conv_stem+bn1+blocks[0:2] | blocks[2] | blocks[3:5] |
        blocks[5:]  -> 24, 40, 112, 320 channels at 1/4 .. 1/32
    frozen random CCM (proj_type >= 1): 1x1 convs -> cout * (1, 2, 4, 8) (``expand``)
    frozen random CSM (proj_type 2): top-down add + bilinear x2 + 1x1 conv -> cout * (1, 1, 2,
        4) channels at 1/2 .. 1/16
    one trainable head per scale (``num_discs`` of the 4, finest first): DownBlocks (4x4 s2
        conv + BatchNorm + LeakyReLU 0.2; ``separable``: depthwise-separable 3x3 + avg pool)
        from the head's nominal resolution down to 8, then a 4x4 valid conv to the logits
        (5 x 5 at 256, 4 x 4 at 224), spectral norm on every head conv.

Nominal resolutions come from ``head_resolution`` (upstream fixes 256 whatever the data), head
widths from upstream's ``channel_dict`` (or ``ndf`` for all). At the defaults, unconditional,
the heads have 10,331,328 trainable parameters (a 3-channel condition adds 46,080), the frozen
random projection 376,768 (buffers, saved with D), the frozen EfficientNet layers 2,958,848
(never saved). Condition: ``heads`` (the backbone
sees the image; the condition is concatenated to each head's input) or ``none``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.discriminators.frozen_features import (
    ConditionMode,
    FrozenFeatureDiscriminator,
    with_condition,
)
from ganzoo.discriminators.layers import LEAK, FeatureStack
from ganzoo.errors import RegistryError
from ganzoo.nn import Width
from ganzoo.nn.frozen_backbone import backbone_grad, create_backbone, freeze_into_buffers
from ganzoo.registry import Finish, register

PAPER = (
    "Sauer, Chitta, Müller, Geiger, Projected GANs Converge Faster, NeurIPS 2021 "
    "(autonomousvision/projected-gan)"
)
BACKBONE = "tf_efficientnet_lite0"
#: Upstream's ``SingleDisc.channel_dict``: head width at each nominal resolution.
CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}
#: The smallest nominal resolution a head goes down to (upstream ``end_sz``).
END = 8


def down_block(c_in: int, c_out: int, separable: bool) -> nn.Sequential:
    """Upstream ``DownBlock``: halves the map; BatchNorm and LeakyReLU(0.2) after the conv."""
    if separable:
        return nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(LEAK),
            nn.AvgPool2d(2, 2),
        )
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(LEAK))


def head(channels: int, extra: int, start: int, ndf: int | None, separable: bool) -> FeatureStack:
    """Upstream ``SingleDisc``: DownBlocks from nominal resolution ``start`` to 8, then a 4x4
    valid conv (no bias) to one logit map; ``extra`` condition channels join the input."""
    widths = {k: ndf or v for k, v in CHANNELS.items()}
    widths[start] = channels
    stages, side, c_in = [], start, channels + extra
    while side > END:
        stages.append(down_block(c_in, widths[side // 2], separable))
        side //= 2
        c_in = widths[side]
    stages.append(nn.Conv2d(c_in, 1, 4, 1, 0, bias=False))
    return FeatureStack(stages)


class FusionBlock(nn.Module):
    """Upstream ``FeatureFusionBlock``: add the lateral map, bilinear x2 (align_corners), 1x1
    conv (halving the channels when ``expand``)."""

    def __init__(self, channels: int, expand: bool) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(channels, channels // 2 if expand else channels, 1)

    def forward(self, x: torch.Tensor, lateral: torch.Tensor | None = None) -> torch.Tensor:
        if lateral is not None:
            x = x + lateral
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class RandomProjection(nn.Module):
    """The frozen random CCM (1x1 convs per scale) and CSM (top-down fusion); ``proj_type`` 0:
    the backbone features as they are, 1: CCM, 2: CCM + CSM. PyTorch's default init, as
    upstream; frozen (persistent buffers: saved with D, so a resume reloads the same draw)."""

    def __init__(self, channels: list[int], cout: int, expand: bool, proj_type: int) -> None:
        super().__init__()
        self.proj_type = proj_type
        self.channels = list(channels)
        if proj_type >= 1:
            widths = [cout * 2**k for k in range(4)] if expand else [cout] * 4
            self.ccm = nn.ModuleList(nn.Conv2d(c, w, 1) for c, w in zip(channels, widths))
            self.channels = widths
        if proj_type == 2:
            # finest first; the coarsest is "lowest" (no lateral input)
            self.csm = nn.ModuleList(
                [FusionBlock(widths[0], False)]
                + [FusionBlock(widths[k], expand) for k in (1, 2, 3)]
            )
            self.channels = [cout, cout, cout * 2, cout * 4] if expand else [cout] * 4
        self.frozen_names = freeze_into_buffers(self, persistent=True)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.proj_type == 0:
            return features
        mixed = [conv(f) for conv, f in zip(self.ccm, features)]
        if self.proj_type == 1:
            return mixed
        out = [self.csm[3](mixed[3])]
        for k in (2, 1, 0):
            out.insert(0, self.csm[k](out[0], mixed[k]))
        return out


@register("discriminator", "projected", paper=PAPER, finish=Finish(spectral_norm=True))
class ProjectedDiscriminator(FrozenFeatureDiscriminator):
    """Projected GAN D: per-scale heads on frozen EfficientNet-lite0 features, randomly mixed.

    ``num_discs`` branches, finest first, each ``[stage outputs..., logits (N, 1, h, w)]``; the
    frozen random projection mixes channels (CCM) and scales (CSM) before the heads.

    ``pretrained``: ImageNet weights through timm's Hugging Face cache (``weights``: a local
    file instead); false: timm's random init drawn from ``seed`` (label such runs so).
    ``backbone_size``: the side the backbone sees (None: 224 when the crop is smaller, as
    upstream's ``interp224``, else the crop, a multiple of 32). ``head_resolution``: the image
    side the head depths are designed for (upstream: 256 always). ``ndf``: one width for every
    head layer (None: upstream's per-resolution widths). ``condition``: ``heads`` concatenates
    the area-resized condition to each head's input; ``none`` ignores it. Upstream's
    DiffAugment inside D is the recipe's augmentation here.
    """

    def __init__(
        self,
        in_channels: int,
        image_channels: int = 3,
        condition: ConditionMode = "heads",
        pretrained: bool = True,
        weights: str | None = None,
        seed: int = 0,
        proj_type: Literal[0, 1, 2] = 2,
        cout: Width = 64,
        expand: bool = True,
        num_discs: Literal[1, 2, 3, 4] = 4,
        ndf: Width | None = None,
        separable: bool = False,
        backbone_size: int | None = None,
        head_resolution: Literal[64, 128, 256, 512, 1024] = 256,
        image_size: int | tuple[int, int] = 256,
    ) -> None:
        super().__init__()
        who = "discriminator projected"
        extra = self.setup_pair(in_channels, image_channels, condition, who)
        side = max(image_size) if isinstance(image_size, tuple | list) else image_size
        if backbone_size is None:
            self.resize = (224, 224) if side < 224 else None
        else:
            if backbone_size < 64 or backbone_size % 32:
                raise RegistryError(
                    f"{who}: backbone_size must be a multiple of 32 and at least 64, got "
                    f"{backbone_size}"
                )
            self.resize = (backbone_size, backbone_size)
        self.size_divisor = 1 if self.resize is not None else 32
        self.min_side = 1 if self.resize is not None else 64
        net = create_backbone(BACKBONE, who=who, pretrained=pretrained, weights=weights, seed=seed)
        self.backbone = nn.ModuleList(
            [
                nn.Sequential(net.conv_stem, net.bn1, *net.blocks[0:2]),
                nn.Sequential(*net.blocks[2:3]),
                nn.Sequential(*net.blocks[3:5]),
                nn.Sequential(*net.blocks[5:]),
            ]
        )
        ends = {info["module"]: info["num_chs"] for info in net.feature_info}
        widths = [ends[f"blocks.{k}"] for k in (1, 2, 4, len(net.blocks) - 1)]
        self.freeze(net)
        self.projection = RandomProjection(widths, cout, expand, proj_type)
        self.frozen_names += ["projection." + n for n in self.projection.frozen_names]
        # nominal resolutions of the 4 feature maps: 1/4 .. 1/32, doubled by the CSM
        nominal = [head_resolution // 2 ** (k + 2) for k in range(4)]
        if proj_type == 2:
            nominal = [2 * r for r in nominal]
        if nominal[num_discs - 1] < END:
            raise RegistryError(
                f"{who}: head_resolution {head_resolution} is too small for {num_discs} heads "
                f"with proj_type {proj_type} (the coarsest starts below {END}); use a larger one"
            )
        self.heads = nn.ModuleList(
            head(c, extra, r, ndf, separable)
            for c, r in zip(self.projection.channels[:num_discs], nominal[:num_discs])
        )
        self.branch_reduction = "mean"  # upstream: one mean over all heads' logits

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The frozen projected features of ``image`` ([-1, 1]), finest first."""
        x = self.normalise(image, self.resize, "bilinear")
        with backbone_grad(image):
            out = []
            for stage in self.backbone:
                x = stage(x)
                out.append(x)
            return self.projection(out)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        condition, image = self.split(x)
        features = self.features(image)
        return [head(with_condition(f, condition)) for head, f in zip(self.heads, features)]
