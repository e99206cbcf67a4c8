"""D's inputs as (condition, image) pairs: the channel split every regulariser works with.

A discriminator sees ``(N, C_A + C_B, H, W)``: the ``C_A = data.in_channels`` condition channels
(an RGB label rendering, a one-hot label map, an edge map) and then the ``C_B`` image channels.
Geometric transforms (translation, flips, cutout) move the whole tensor, so a pair stays
aligned; colour transforms change the image channels only: a colour jitter of a one-hot map or
of an edge map is not a plausible condition, and the condition of a real and of a generated pair
is the same tensor, so jittering it would teach D nothing about the image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ganzoo.errors import TrainingError
from ganzoo.losses.terms import Term


class PairTerm(Term):
    """A term that needs the channel split: :meth:`bind` reads ``data.in_channels``."""

    condition_channels: int | None = None

    def bind(self, recipe: Any) -> None:
        self.condition_channels = int(recipe.data.in_channels)

    def split(self, pairs: Tensor) -> int:
        """The number of condition channels of ``pairs``: the image is ``pairs[:, split:]``."""
        if self.condition_channels is None:
            raise TrainingError(
                f"{type(self).__name__} is not bound to a recipe: build it through "
                "loss.regularizers (or call bind(recipe) first)"
            )
        if not 0 <= self.condition_channels < pairs.shape[1]:
            raise TrainingError(
                f"{type(self).__name__}: D's input has {pairs.shape[1]} channels, fewer than the "
                f"recipe's {self.condition_channels} condition channels plus an image"
            )
        return self.condition_channels

    def on_image(self, pairs: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """``pairs`` with ``fn`` applied to its image channels, the condition untouched."""
        k = self.split(pairs)
        return torch.cat([pairs[:, :k], fn(pairs[:, k:])], 1)
