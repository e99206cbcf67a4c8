"""What the discriminators on a frozen pretrained network share (projected, vision-aided): the
split of the (condition, image) pair, the backbone's own input normalisation, the frozen
network kept in eval mode and out of ``parameters()`` / checkpoints, and the trainable heads
as the only part the builder initialises and spectral-normalises."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import RegistryError
from ganzoo.nn.frozen_backbone import freeze_into_buffers, normalisation

#: How the condition enters: ``heads`` -- resized to each head's input and concatenated to the
#: frozen features there (the backbone sees the image alone); ``none`` -- unconditional, as the
#: papers' class-free models (and pix2pix-turbo's CLIP discriminator).
ConditionMode = Literal["heads", "none"]


class FrozenFeatureDiscriminator(nn.Module):
    """Base: ``self.backbone`` frozen (non-persistent buffers, eval mode), ``self.heads``
    trainable. ``forward`` is the subclass's; it returns branches of features ending in logits.
    """

    backbone: nn.Module
    heads: nn.ModuleList
    #: The input is resized to the backbone's size: no receptive field in input pixels.
    has_receptive_field = False

    def setup_pair(
        self, in_channels: int, image_channels: int, condition: ConditionMode, who: str
    ) -> int:
        """Check the channel split; returns the number of condition channels the heads take."""
        if image_channels not in (1, 3):
            raise RegistryError(
                f"{who}: image_channels must be 1 or 3 (the backbone sees an RGB image), got "
                f"{image_channels}"
            )
        if in_channels < image_channels:
            raise RegistryError(
                f"{who}: in_channels {in_channels} is fewer than image_channels {image_channels}"
            )
        self.image_channels = image_channels
        self.condition = condition
        return in_channels - image_channels if condition == "heads" else 0

    def freeze(self, net: nn.Module) -> None:
        """Make ``net`` (set as ``self.backbone``) frozen: buffers that are never saved, its own
        normalisation as ``mean`` / ``std`` buffers, and DDP told not to broadcast them."""
        mean, std = normalisation(net)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.frozen_names = [
            "backbone." + n for n in freeze_into_buffers(self.backbone, persistent=False)
        ]
        self._ddp_params_and_buffers_to_ignore = [
            f"backbone.{n}" for n, _ in self.backbone.named_buffers()
        ]
        self.backbone.eval()

    def frozen_parameters(self) -> list[torch.Tensor]:
        """The frozen network's weights (they are buffers here): for parameter counts."""
        buffers = dict(self.named_buffers())
        return [buffers[n] for n in self.frozen_names if n in buffers]

    def init_modules(self) -> list[nn.Module]:
        """What the builder initialises: the heads only (never the pretrained network)."""
        return [self.heads]

    def spectral_norm_modules(self, mode: bool | str) -> list[nn.Module]:
        """What spectral norm wraps: every conv / linear of the heads (as both papers)."""
        return [self.heads]

    def train(self, mode: bool = True) -> FrozenFeatureDiscriminator:
        """The heads follow ``mode``; the frozen network stays in eval mode (its BatchNorm
        statistics and dropout are the pretrained ones), as both references keep it."""
        super().train(mode)
        self.backbone.eval()
        return self

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(condition or None, image)`` of ``(N, in_channels, H, W)`` pairs; the image is
        the last ``image_channels`` channels (condition and image concatenated)."""
        image = x[:, x.shape[1] - self.image_channels :]
        condition = x[:, : x.shape[1] - self.image_channels]
        if self.condition == "none" or condition.shape[1] == 0:
            return None, image
        return condition, image

    def normalise(
        self, image: torch.Tensor, size: tuple[int, int] | None, mode: str
    ) -> torch.Tensor:
        """``image`` in [-1, 1] -> the backbone's input: RGB (a gray image repeated), resized
        to ``size`` (None: kept) by ``mode``, then ``(x - mean) / std`` of its pretrained_cfg."""
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        if size is not None and tuple(image.shape[-2:]) != tuple(size):
            kwargs = {} if mode == "area" else {"align_corners": False}
            image = F.interpolate(image, size=size, mode=mode, **kwargs)
        mean, std = self.mean.to(image.dtype), self.std.to(image.dtype)
        return ((image + 1) / 2 - mean) / std


def with_condition(features: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    """``features`` with ``condition`` area-resized to their size concatenated (if any)."""
    if condition is None:
        return features
    resized = F.interpolate(condition.to(features.dtype), size=features.shape[-2:], mode="area")
    return torch.cat([features, resized], 1)
