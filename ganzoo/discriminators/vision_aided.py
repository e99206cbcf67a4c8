"""The Vision-aided GAN discriminator: trainable heads on a frozen pretrained vision model
(CLIP ViT-B/32, DINO ViT-B/16 or Swin-T), switched on after a warm-up.

As nupurkmr9/vision-aided-gan (``vision_aided_loss/cvmodel.py`` backbones,
``vision_aided_loss/cv_discriminator.py`` heads, ``cv_losses.py``; commits in
docs/faithfulness.md). The image is area-resized to 224 x 224 and normalised as the backbone's
own ``pretrained_cfg`` says, then (trainable counts unconditional):

- ``clip`` (``vit_base_patch32_clip_224.openai``), ``conv_multi_level``: the 7 x 7 tokens after
  blocks 4 and 8 (no norm), each into ``conv 3x3 s1 (768 -> 256) -> LeakyReLU -> blur ->
  conv 1x1 s2 (-> 1)`` (3 x 3 logits), and the 512-d projected CLS embedding into ``linear
  512 -> 256 -> LeakyReLU -> linear -> 1``: 3 branches, 3,671,555 trainable parameters.
- ``dino`` (``vit_base_patch16_224.dino``): the 14 x 14 tokens after blocks 5 and 9 (final norm
  applied, as DINO's ``get_intermediate_layers``), each into ``blur -> conv 3x3 s2 (768 ->
  128) -> LeakyReLU -> blur -> conv 1x1 s2`` (3 x 3 logits), and the normed CLS token into
  ``768 -> 128 -> 1``: 3 branches, 1,868,547 trainable parameters.
- ``swin`` (``swin_tiny_patch4_window7_224``): the normed 7 x 7 last-stage map into upstream's
  ``SimpleD`` (``blur -> conv 3x3 s2 (768 -> 256) -> LeakyReLU -> linear 2304 -> 256 ->
  LeakyReLU -> linear -> 1``): 1 branch, 2,360,065 trainable parameters.

Blur: antialiased-cnns' ``BlurPool`` with the [1, 3, 3, 1] filter, zero padding, stride 1.
Linear layers are 1x1 convs on ``(N, C, 1, 1)`` maps (and ``SimpleD``'s flattening linear a 3x3
conv over the whole 3 x 3 map): the same weights and maths, so every branch stays a list of
4-D maps. Spectral norm on every head layer, as upstream. Upstream sums the levels' losses
(``branch_reduction = "sum"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import pydantic
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
from ganzoo.losses.terms import Term
from ganzoo.losses.warmup import AdversarialWarmup
from ganzoo.nn.frozen_backbone import backbone_grad, create_backbone
from ganzoo.registry import Finish, register

PAPER = (
    "Kumari, Zhang, Shechtman, Zhu, Ensembling Off-the-shelf Models for GAN Training "
    "(Vision-aided GAN), CVPR 2022 (nupurkmr9/vision-aided-gan)"
)
#: The side every backbone sees (upstream: ``F.interpolate(..., size=(224, 224), mode='area')``).
SIDE = 224


@dataclass(frozen=True)
class Backbone:
    """A timm model and how upstream reads it: ``levels`` block indices (0-based) whose tokens
    feed conv heads (``norm``: through the final norm), then the pooled embedding; or, with
    ``levels`` empty, the final feature map into one ``SimpleD`` head."""

    model: str
    levels: tuple[int, ...] = ()
    norm: bool = False
    width: int = 256  # upstream out_ch
    down: int = 1  # upstream down: 2 adds a blur and a stride-2 3x3 conv


BACKBONES: dict[str, Backbone] = {
    "clip": Backbone("vit_base_patch32_clip_224.openai", (3, 7), False, 256, 1),
    "dino": Backbone("vit_base_patch16_224.dino", (4, 8), True, 128, 2),
    "swin": Backbone("swin_tiny_patch4_window7_224"),
}
BackboneName = Literal["clip", "dino", "swin"]


class Blur(nn.Module):
    """antialiased-cnns ``BlurPool`` at stride 1: zero padding ``pad`` on each side, then the
    normalised outer product of [1, 3, 3, 1] per channel (a fixed, unsaved filter)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 3.0, 3.0, 1.0])
        filt = a[:, None] * a[None, :]
        self.register_buffer("filt", (filt / filt.sum())[None, None], persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.filt.to(x.dtype).expand(channels, 1, 4, 4)
        return F.conv2d(F.pad(x, [self.pad] * 4), weight, groups=channels)


def level_head(channels: int, width: int, down: int) -> FeatureStack:
    """Upstream ``MultiLevelDViT`` spatial decoder: ``[act, logits]``."""
    if down > 1:
        first = [Blur(2), nn.Conv2d(channels, width, 3, 2, 0)]
    else:
        first = [nn.Conv2d(channels, width, 3, 1, 1)]
    return FeatureStack(
        [
            nn.Sequential(*first, nn.LeakyReLU(LEAK)),
            nn.Sequential(Blur(1), nn.Conv2d(width, 1, 1, 2)),
        ]
    )


def pooled_head(channels: int, width: int) -> FeatureStack:
    """Upstream's linear decoder on a pooled embedding (``(N, C, 1, 1)`` here)."""
    return FeatureStack(
        [nn.Sequential(nn.Conv2d(channels, width, 1), nn.LeakyReLU(LEAK)), nn.Conv2d(width, 1, 1)]
    )


def simple_head(channels: int, width: int = 256) -> FeatureStack:
    """Upstream ``SimpleD`` on a 7 x 7 map: blur, 3x3 s2 conv (-> 3 x 3), a linear over the
    flattened 3 x 3 map (a 3x3 conv), a linear to the logit."""
    return FeatureStack(
        [
            nn.Sequential(Blur(2), nn.Conv2d(channels, width, 3, 2, 0), nn.LeakyReLU(LEAK)),
            nn.Sequential(nn.Conv2d(width, width, 3), nn.LeakyReLU(LEAK)),
            nn.Conv2d(width, 1, 1),
        ]
    )


@register("discriminator", "vision_aided", paper=PAPER, finish=Finish(spectral_norm=True))
class VisionAidedDiscriminator(FrozenFeatureDiscriminator):
    """Vision-aided D: trainable heads on a frozen pretrained CLIP / DINO / Swin from timm.

    3 branches for the ViTs (two token levels, then the embedding), 1 for Swin, each
    ``[features..., logits]``.

    ``pretrained``: the backbone's weights through timm's Hugging Face cache (``weights``: a
    local file instead); false: timm's random init drawn from ``seed``. ``condition``:
    ``heads`` concatenates the area-resized condition to each spatial head's input (the
    embedding head stays unconditional); ``none`` ignores it. ``warmup_steps``: the step from
    which the D's GAN terms count (the :class:`~ganzoo.losses.warmup.AdversarialWarmup` term
    it declares; upstream: after 500k images from scratch).
    ``model``: another timm model read the same way (a ViT with at least 9 blocks for
    ``clip`` / ``dino``, a Swin for ``swin``), e.g. ``vit_tiny_patch16_224`` for fast tests.
    """

    def __init__(
        self,
        in_channels: int,
        backbone: BackboneName = "clip",
        image_channels: int = 3,
        condition: ConditionMode = "heads",
        pretrained: bool = True,
        weights: str | None = None,
        seed: int = 0,
        warmup_steps: Annotated[int, pydantic.Field(ge=0)] = 0,
        model: str | None = None,
    ) -> None:
        super().__init__()
        who = f"discriminator vision_aided ({backbone})"
        extra = self.setup_pair(in_channels, image_channels, condition, who)
        self.spec = spec = BACKBONES[backbone]
        self.warmup_steps = warmup_steps
        # the embedding: CLIP's projection is timm's head; DINO has none; a Swin's classifier
        # and another model's are unused (its normed pooled token is the embedding)
        keep_head = spec.levels and model is None
        head = {} if keep_head else {"num_classes": 0}
        net = create_backbone(
            model or spec.model, who=who, pretrained=pretrained, weights=weights, seed=seed, **head
        )
        self.backbone = net
        self.freeze(net)
        if spec.levels and len(getattr(net, "blocks", ())) <= max(spec.levels):
            raise RegistryError(
                f"{who}: model {model} is not a ViT with more than {max(spec.levels)} blocks; "
                "name one, or leave model unset"
            )
        if spec.levels:
            c = net.embed_dim
            pooled = net.num_classes or net.num_features  # CLIP: the 512-d projection
            self.heads = nn.ModuleList(
                [level_head(c + extra, spec.width, spec.down) for _ in spec.levels]
                + [pooled_head(pooled, spec.width)]
            )
        else:
            self.heads = nn.ModuleList([simple_head(net.num_features + extra)])
        self.branch_reduction = "sum"  # upstream multilevel losses add the levels

    def active(self, step: int) -> bool:
        """Whether this D's GAN terms count at training step ``step`` (0-based): False during
        the warm-up, where upstream multiplies them by 0."""
        return step >= self.warmup_steps

    def terms(self, recipe: object) -> list[Term]:
        """The step term of the warm-up (none without one): the objective's terms times 0
        before ``warmup_steps``."""
        if not self.warmup_steps:
            return []
        return [AdversarialWarmup(self.warmup_steps, self.branch_reduction)]

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The frozen backbone's maps for ``image`` ([-1, 1]): per level ``(N, C, h, w)``, then
        the embedding ``(N, C, 1, 1)`` (ViTs); or the last map ``(N, 768, 7, 7)`` (Swin)."""
        x = self.normalise(image, (SIDE, SIDE), "area")
        net, spec = self.backbone, self.spec
        with backbone_grad(image):
            if not spec.levels:
                return [net.forward_features(x).permute(0, 3, 1, 2)]
            final, levels = net.forward_intermediates(
                x, indices=list(spec.levels), norm=spec.norm, output_fmt="NCHW"
            )
            pooled = net.forward_head(final)
            return [*levels, pooled[:, :, None, None]]

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        condition, image = self.split(x)
        features = self.features(image)
        out = []
        for k, (head, f) in enumerate(zip(self.heads, features)):
            spatial = k < len(self.spec.levels) or not self.spec.levels
            out.append(head(with_condition(f, condition) if spatial else f))
        return out
